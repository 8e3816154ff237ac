package main

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/inngest/inngestgo"
	inngesterrors "github.com/inngest/inngestgo/errors"

	"github.com/coursebuilder/realtime-go/examples/internal/executor"
	"github.com/coursebuilder/realtime-go/realtime"
	"github.com/coursebuilder/realtime-go/realtime/realtimetest"
)

const testVideoID = "vid_123"

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
	return executor.Serve(t, client, fn)
}

func TestVideoReadyPublishesOnceAcrossReplay(t *testing.T) {
	rec := realtimetest.NewRecorder()
	fnURL := serve(t, rec)

	// 1. First call: nothing memoized, so the step runs and publishes.
	status, _, out := executor.Call(t, fnURL, executor.NewRun(t, eventName, testData))
	op := executor.OnlyOpcode(t, status, out)
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
	replay := executor.Replay(t, executor.NewRun(t, eventName, testData), op)
	status, _, out = executor.Call(t, fnURL, replay)
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

	status, hdr, body := executor.Call(t, fnURL, executor.NewRun(t, eventName, testData))
	op := executor.OnlyOpcode(t, status, body)
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
		{"rejected", &realtime.PublishError{Transport: "inngest", StatusCode: http.StatusBadRequest, Err: realtime.ErrRejected}, true},
		{"unavailable", &realtime.PublishError{Transport: "inngest", StatusCode: http.StatusServiceUnavailable, Err: realtime.ErrUnavailable}, false},
		{"unauthorized", &realtime.PublishError{Transport: "inngest", StatusCode: http.StatusUnauthorized, Err: realtime.ErrUnauthorized}, false},
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
