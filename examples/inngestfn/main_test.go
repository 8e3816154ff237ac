package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/inngest/inngestgo"
	inngesterrors "github.com/inngest/inngestgo/errors"

	"github.com/coursebuilder/realtime-go/realtime"
	"github.com/coursebuilder/realtime-go/realtime/realtimetest"
)

// The types below are the wire format of the Inngest executor's call to an
// SDK (github.com/inngest/inngest pkg/execution/driver.SDKRequest, as built
// by driver.MarshalV1) and of the SDK's answer (opcode.Step), written out
// here so the test speaks JSON to the handler exactly as the executor does.

type executorRequest struct {
	Event   map[string]any             `json:"event"`
	Events  []map[string]any           `json:"events"`
	Steps   map[string]json.RawMessage `json:"steps"` // hashed step id -> {"data": …} or {"error": …}
	Defers  map[string]any             `json:"defers"`
	Ctx     executorCtx                `json:"ctx"`
	Version int                        `json:"version"`
	UseAPI  bool                       `json:"use_api"`
}

type executorCtx struct {
	FunctionID                string        `json:"fn_id"`
	RunID                     string        `json:"run_id"`
	Env                       string        `json:"env"`
	StepID                    string        `json:"step_id"`
	Attempt                   int           `json:"attempt"`
	MaxAttempts               int           `json:"max_attempts"`
	Stack                     executorStack `json:"stack"`
	QueueItemRef              string        `json:"qi_id"`
	DisableImmediateExecution bool          `json:"disable_immediate_execution"`
	UseAPI                    bool          `json:"use_api"`
}

// executorStack lists the hashed ids of the steps that completed, in order;
// Current is the stack pointer when this call was scheduled.
type executorStack struct {
	Stack   []string `json:"stack"`
	Current int      `json:"current"`
}

type sdkOpcode struct {
	Op    string          `json:"op"`
	ID    string          `json:"id"`
	Name  string          `json:"name"`
	Data  json.RawMessage `json:"data"`
	Error *struct {
		Name    string `json:"name"`
		Message string `json:"message"`
	} `json:"error"`
}

const (
	testRunID   = "01JZ8Q3V7K2M4N6P8R0T2V4X6Z"
	testFnUUID  = "6f0e7a8b-1c2d-4e3f-9a0b-1c2d3e4f5a6b"
	testVideoID = "vid_123"
)

var testData = VideoReady{VideoResourceID: testVideoID, MuxPlaybackID: "pb_123", Duration: 93.4}

// serve registers the video-ready function on a dev-mode client (the
// executor's calls are unsigned, as the dev server's are) and serves it at
// /api/inngest. A nil provider builds the client without realtime.Middleware.
func serve(t *testing.T, p realtime.Provider) (fnURL string) {
	t.Helper()
	opts := inngestgo.ClientOpts{AppID: appID}
	if p != nil {
		opts = clientOpts(p)
	}
	opts.Dev = inngestgo.BoolPtr(true)
	opts.Logger = slog.New(slog.DiscardHandler)
	client, err := inngestgo.NewClient(opts)
	if err != nil {
		t.Fatal(err)
	}
	fn, err := newVideoReady(client)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/api/inngest", client.Serve())
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	// The URL the SDK registers for the function (fnId and step=step), plus
	// the stepId the executor adds for a function's entry edge.
	q := url.Values{"fnId": {fn.FullyQualifiedID()}, "step": {"step"}, "stepId": {"step"}}
	return srv.URL + "/api/inngest?" + q.Encode()
}

// newRun returns the executor's first call of a run: no memoized steps.
func newRun(t *testing.T) executorRequest {
	t.Helper()
	evt := map[string]any{
		"id":   "01JZ8Q3TZQ0000000000000000",
		"name": eventName,
		"data": testData,
		"ts":   1735689600000,
		"user": map[string]any{},
	}
	// Round-trip through JSON so the event is what the executor loads from state.
	b, err := json.Marshal(evt)
	if err != nil {
		t.Fatal(err)
	}
	var loaded map[string]any
	if err := json.Unmarshal(b, &loaded); err != nil {
		t.Fatal(err)
	}
	return executorRequest{
		Event:   loaded,
		Events:  []map[string]any{loaded},
		Steps:   map[string]json.RawMessage{},
		Defers:  map[string]any{},
		Version: 2,
		Ctx: executorCtx{
			FunctionID:  testFnUUID,
			RunID:       testRunID,
			StepID:      "step",
			MaxAttempts: 4,
			Stack:       executorStack{Stack: []string{}, Current: 0},
		},
	}
}

// call POSTs req to the function as the executor does and returns the status,
// headers and body.
func call(t *testing.T, fnURL string, req executorRequest) (int, http.Header, []byte) {
	t.Helper()
	body, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	hr, err := http.NewRequestWithContext(t.Context(), http.MethodPost, fnURL, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	hr.Header.Set("Content-Type", "application/json")
	hr.Header.Set("X-Inngest-Server-Kind", "dev")
	resp, err := http.DefaultClient.Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, out
}

// onlyOpcode decodes a 206 answer, which must carry exactly one opcode.
func onlyOpcode(t *testing.T, status int, body []byte) sdkOpcode {
	t.Helper()
	if status != http.StatusPartialContent {
		t.Fatalf("status = %d, want 206 (an opcode); body: %s", status, body)
	}
	var ops []sdkOpcode
	if err := json.Unmarshal(body, &ops); err != nil {
		t.Fatalf("decoding opcodes: %v; body: %s", err, body)
	}
	if len(ops) != 1 {
		t.Fatalf("got %d opcodes, want 1: %s", len(ops), body)
	}
	return ops[0]
}

func TestVideoReadyPublishesOnceAcrossReplay(t *testing.T) {
	rec := realtimetest.NewRecorder()
	fnURL := serve(t, rec)

	// 1. First call: nothing memoized, so the step runs and publishes.
	status, _, out := call(t, fnURL, newRun(t))
	op := onlyOpcode(t, status, out)
	if op.Op != "StepRun" || op.Name != stepID || op.ID == "" || op.Error != nil {
		t.Fatalf("opcode = %+v, want a successful StepRun %q with an id", op, stepID)
	}
	var got Notified
	if err := json.Unmarshal(op.Data, &got); err != nil {
		t.Fatalf("step data %s: %v", op.Data, err)
	}
	if want := (Notified{Room: testVideoID, Name: messageName}); got != want {
		t.Fatalf("step data = %+v, want %+v", got, want)
	}

	recs := rec.Records()
	if len(recs) != 1 {
		t.Fatalf("after the first call the recorder has %d messages, want 1", len(recs))
	}
	msg := recs[0].Message
	if msg.Room != testVideoID || msg.Name != messageName || msg.RequestID != testVideoID {
		t.Fatalf("published %q/%q request %q, want %q/%q request %q",
			msg.Room, msg.Name, msg.RequestID, testVideoID, messageName, testVideoID)
	}
	// What a browser receives: the envelope, with the event data as body.
	decoded, err := realtime.DecodeEnvelope(recs[0].Envelope)
	if err != nil {
		t.Fatal(err)
	}
	var body VideoReady
	if raw, err := json.Marshal(decoded.Body); err != nil {
		t.Fatal(err)
	} else if err := json.Unmarshal(raw, &body); err != nil {
		t.Fatalf("envelope body: %v; envelope: %s", err, recs[0].Envelope)
	}
	if body != testData || decoded.Name != messageName || decoded.RequestID != testVideoID {
		t.Fatalf("envelope = %s, want body %+v, name %q, requestId %q", recs[0].Envelope, testData, messageName, testVideoID)
	}

	// 2. The executor saves the step's output wrapped as {"data": …}, pushes
	// its id on the stack and calls the function again. The step is replayed
	// from memo: the function completes with the memoized value and nothing
	// is published again.
	replay := newRun(t)
	replay.Steps = map[string]json.RawMessage{op.ID: mustJSON(t, map[string]json.RawMessage{"data": op.Data})}
	replay.Ctx.Stack = executorStack{Stack: []string{op.ID}, Current: 1}
	status, _, out = call(t, fnURL, replay)
	if status != http.StatusOK {
		t.Fatalf("replay status = %d, want 200 (the run completed); body: %s", status, out)
	}
	var result Notified
	if err := json.Unmarshal(out, &result); err != nil || result != got {
		t.Fatalf("replay result = %s (%v), want the memoized %+v", out, err, got)
	}
	if n := rec.Len(); n != 1 {
		t.Fatalf("after the replay the recorder has %d messages, want still 1: the replay published again", n)
	}
}

func TestVideoReadyWithoutProviderFailsTheStepPermanently(t *testing.T) {
	fnURL := serve(t, nil) // client without realtime.Middleware: FromContext reports false

	status, hdr, body := call(t, fnURL, newRun(t))
	op := onlyOpcode(t, status, body)
	if op.Op != "StepFailed" || op.Name != stepID || op.Error == nil {
		t.Fatalf("opcode = %+v, want StepFailed %q with an error (not a panic, not a retry)", op, stepID)
	}
	if !strings.Contains(op.Error.Message, errNoProvider.Error()) {
		t.Fatalf("step error = %q, want it to contain %q", op.Error.Message, errNoProvider)
	}
	if got := hdr.Get("X-Inngest-No-Retry"); got != "true" {
		t.Fatalf("X-Inngest-No-Retry = %q, want true", got)
	}
}

func TestClassify(t *testing.T) {
	invalid := realtime.Message{Name: messageName}.Validate() // empty room
	if invalid == nil {
		t.Fatal("a message without a room validated")
	}
	for _, tc := range []struct {
		name    string
		err     error
		noRetry bool
	}{
		{"invalid message", invalid, true},
		{"rejected", realtime.NewStatusError("inngest", http.StatusBadRequest, "", 0), true},
		{"unavailable", realtime.NewStatusError("inngest", http.StatusServiceUnavailable, "", 0), false},
		{"unauthorized", realtime.NewStatusError("inngest", http.StatusUnauthorized, "", 0), false},
	} {
		got := classify(tc.err)
		if noRetry := inngesterrors.IsNoRetryError(got); noRetry != tc.noRetry {
			t.Errorf("%s: classify(%v) no-retry = %v, want %v", tc.name, tc.err, noRetry, tc.noRetry)
		}
		if !errors.Is(got, tc.err) {
			t.Errorf("%s: classify(%v) = %v, which no longer matches the original error", tc.name, tc.err, got)
		}
	}
}

func mustJSON(t *testing.T, v any) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
