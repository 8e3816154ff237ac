// Package executor calls inngestgo functions over HTTP exactly as the
// Inngest executor does, so that tests can run a function, see the opcode it
// answers with, and replay it with memoized steps: no dev server needed.
//
// The wire format is that of github.com/inngest/inngest's
// pkg/execution/driver.SDKRequest as built by driver.MarshalV1, and of the
// SDK's opcode answers, written out here.
package executor

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/inngest/inngestgo"
)

// Request is the executor's call of one function run.
type Request struct {
	Event   map[string]any             `json:"event"`
	Events  []map[string]any           `json:"events"`
	Steps   map[string]json.RawMessage `json:"steps"` // hashed step id -> {"data": …} or {"error": …}
	Defers  map[string]any             `json:"defers"`
	Ctx     Ctx                        `json:"ctx"`
	Version int                        `json:"version"`
	UseAPI  bool                       `json:"use_api"`
}

// Ctx is the run's context in a Request.
type Ctx struct {
	FunctionID                string `json:"fn_id"`
	RunID                     string `json:"run_id"`
	Env                       string `json:"env"`
	StepID                    string `json:"step_id"`
	Attempt                   int    `json:"attempt"`
	MaxAttempts               int    `json:"max_attempts"`
	Stack                     Stack  `json:"stack"`
	QueueItemRef              string `json:"qi_id"`
	DisableImmediateExecution bool   `json:"disable_immediate_execution"`
	UseAPI                    bool   `json:"use_api"`
}

// Stack lists the hashed ids of the steps that completed, in order; Current
// is the stack pointer when the call was scheduled.
type Stack struct {
	Stack   []string `json:"stack"`
	Current int      `json:"current"`
}

// Opcode is one step the SDK reports in a 206 answer.
type Opcode struct {
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
	runID  = "01JZ8Q3V7K2M4N6P8R0T2V4X6Z"
	fnUUID = "6f0e7a8b-1c2d-4e3f-9a0b-1c2d3e4f5a6b"
)

// Serve serves client's functions on a test server and returns the URL the
// executor calls for fn (its fnId, step=step and the entry edge's stepId).
// The client must be in dev mode: the executor's calls here are unsigned.
func Serve(t testing.TB, client inngestgo.Client, fn inngestgo.ServableFunction) string {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle("/api/inngest", client.Serve())
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return FunctionURL(srv.URL+"/api/inngest", fn)
}

// FunctionURL is the URL the executor calls for fn when the app serves its
// functions at handlerURL.
func FunctionURL(handlerURL string, fn inngestgo.ServableFunction) string {
	q := url.Values{"fnId": {fn.FullyQualifiedID()}, "step": {"step"}, "stepId": {"step"}}
	return handlerURL + "?" + q.Encode()
}

// NewRun returns the executor's first call of a run triggered by an event
// named name with data: no memoized steps.
func NewRun(t testing.TB, name string, data any) Request {
	t.Helper()
	run, err := Start(name, data)
	if err != nil {
		t.Fatal(err)
	}
	return run
}

// Start is NewRun for programs.
func Start(name string, data any) (Request, error) {
	// Round-trip through JSON so the event is what the executor loads.
	b, err := json.Marshal(map[string]any{"id": "01JZ8Q3TZQ0000000000000000", "name": name, "data": data, "ts": 1735689600000, "user": map[string]any{}})
	if err != nil {
		return Request{}, err
	}
	var evt map[string]any
	if err := json.Unmarshal(b, &evt); err != nil {
		return Request{}, err
	}
	return Request{
		Event:   evt,
		Events:  []map[string]any{evt},
		Steps:   map[string]json.RawMessage{},
		Defers:  map[string]any{},
		Version: 2,
		Ctx:     Ctx{FunctionID: fnUUID, RunID: runID, StepID: "step", MaxAttempts: 4, Stack: Stack{Stack: []string{}}},
	}, nil
}

// Replay returns the call that follows run once ops completed: each op's
// output memoized as {"data": …} and its id pushed on the stack.
func Replay(t testing.TB, run Request, ops ...Opcode) Request {
	t.Helper()
	next, err := replay(run, ops...)
	if err != nil {
		t.Fatal(err)
	}
	return next
}

func replay(run Request, ops ...Opcode) (Request, error) {
	next := run
	next.Steps = make(map[string]json.RawMessage, len(run.Steps)+len(ops))
	for id, v := range run.Steps {
		next.Steps[id] = v
	}
	next.Ctx.Stack.Stack = append([]string(nil), run.Ctx.Stack.Stack...)
	for _, op := range ops {
		b, err := json.Marshal(map[string]json.RawMessage{"data": op.Data})
		if err != nil {
			return Request{}, err
		}
		next.Steps[op.ID] = b
		next.Ctx.Stack.Stack = append(next.Ctx.Stack.Stack, op.ID)
	}
	next.Ctx.Stack.Current = len(next.Ctx.Stack.Stack)
	return next, nil
}

// Call POSTs req to the function as the executor does and returns the
// status, headers and body of the answer.
func Call(t testing.TB, fnURL string, req Request) (int, http.Header, []byte) {
	t.Helper()
	status, h, body, err := Do(http.DefaultClient, fnURL, req)
	if err != nil {
		t.Fatal(err)
	}
	return status, h, body
}

// Do is Call for programs: it returns an error instead of failing a test.
func Do(client *http.Client, fnURL string, req Request) (int, http.Header, []byte, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return 0, nil, nil, err
	}
	hr, err := http.NewRequest(http.MethodPost, fnURL, bytes.NewReader(body))
	if err != nil {
		return 0, nil, nil, err
	}
	hr.Header.Set("Content-Type", "application/json")
	hr.Header.Set("X-Inngest-Server-Kind", "dev")
	resp, err := client.Do(hr)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, out, err
}

// OnlyOpcode decodes a 206 answer, which must carry exactly one opcode.
func OnlyOpcode(t testing.TB, status int, body []byte) Opcode {
	t.Helper()
	op, err := DecodeOpcode(status, body)
	if err != nil {
		t.Fatal(err)
	}
	return op
}

// DecodeOpcode is OnlyOpcode for programs.
func DecodeOpcode(status int, body []byte) (Opcode, error) {
	if status != http.StatusPartialContent {
		return Opcode{}, fmt.Errorf("status = %d, want 206 (an opcode); body: %s", status, body)
	}
	var ops []Opcode
	if err := json.Unmarshal(body, &ops); err != nil {
		return Opcode{}, fmt.Errorf("decoding opcodes: %w; body: %s", err, body)
	}
	if len(ops) != 1 {
		return Opcode{}, fmt.Errorf("got %d opcodes, want 1: %s", len(ops), body)
	}
	return ops[0], nil
}

// Complete runs a function to its end as the executor does: it calls it,
// memoizes every step it reports and calls again, until the run answers
// with anything but a StepRun opcode. It returns that last answer and every
// opcode seen.
func Complete(t testing.TB, fnURL string, run Request) (status int, body []byte, ops []Opcode) {
	t.Helper()
	status, body, ops, err := RunToEnd(http.DefaultClient, fnURL, run)
	if err != nil {
		t.Fatal(err)
	}
	return status, body, ops
}

// RunToEnd is Complete for programs.
func RunToEnd(client *http.Client, fnURL string, run Request) (status int, body []byte, ops []Opcode, err error) {
	for range 50 {
		status, _, body, err = Do(client, fnURL, run)
		if err != nil || status != http.StatusPartialContent {
			return status, body, ops, err
		}
		op, err := DecodeOpcode(status, body)
		if err != nil {
			return status, body, ops, err
		}
		ops = append(ops, op)
		if op.Op != "StepRun" {
			return status, body, ops, nil
		}
		run, err = replay(run, op)
		if err != nil {
			return status, body, ops, err
		}
	}
	return status, body, ops, fmt.Errorf("run did not complete after 50 calls; opcodes %+v", ops)
}
