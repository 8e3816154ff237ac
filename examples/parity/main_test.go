package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/coursebuilder/realtime-go/broadcast"
	"github.com/coursebuilder/realtime-go/examples/internal/flagsource"
	"github.com/coursebuilder/realtime-go/examples/internal/testlog"
	"github.com/coursebuilder/realtime-go/flags"
	"github.com/coursebuilder/realtime-go/harness/inngestrt"
	"github.com/coursebuilder/realtime-go/harness/partykit"
	"github.com/coursebuilder/realtime-go/realtime"
	"github.com/coursebuilder/realtime-go/realtime/realtimetest"
)

// One PartyKit dev server for the test binary: it takes seconds to start.
var shared partykit.Shared

func TestMain(m *testing.M) {
	// Only the flags a test sets count, not the shell's.
	for _, k := range flags.EnvVariables() {
		_ = os.Unsetenv(k)
	}
	code := m.Run()
	if err := shared.Close(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		code = 1
	}
	if code == 0 {
		opts := inngestrt.LeakOptions()
		if err := goleak.Find(opts...); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// partyKit returns the shared PartyKit dev server. Parity needs it: the
// test is skipped when it cannot run here, and fails instead when CI is
// set, as partykit.NewTest.
func partyKit(t *testing.T) *partykit.Server {
	t.Helper()
	return shared.Get(t)
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// tamper forwards the publish of requestID to the Inngest endpoint copies
// times (0: answers 200 without forwarding it, so Inngest "accepts" a
// message nobody receives); every other request passes untouched. It
// counts the publishes it tampered with.
func tamper(requestID string, copies int, n *atomic.Int32) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodPost || r.URL.Path != "/v1/realtime/publish" {
				next.ServeHTTP(w, r)
				return
			}
			body, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(body))
			if m, err := realtime.DecodeEnvelope(body); err != nil || m.RequestID != requestID {
				next.ServeHTTP(w, r)
				return
			}
			n.Add(1)
			if copies == 0 {
				w.WriteHeader(http.StatusOK)
				return
			}
			for range copies - 1 {
				extra := r.Clone(r.Context())
				extra.Body = io.NopCloser(bytes.NewReader(body))
				next.ServeHTTP(discard{}, extra)
			}
			next.ServeHTTP(w, r)
		})
	}
}

type discard struct{}

func (discard) Header() http.Header         { return http.Header{} }
func (discard) Write(b []byte) (int, error) { return len(b), nil }
func (discard) WriteHeader(int)             {}

func loadRecorded(t *testing.T) []Event {
	t.Helper()
	events, err := LoadEvents(bytes.NewReader(recorded))
	if err != nil {
		t.Fatal(err)
	}
	return events
}

// replay runs Replay over the recording against a fresh Inngest endpoint
// (with wrap) and the shared PartyKit server.
func replay(t *testing.T, wrap func(http.Handler) http.Handler) *Report {
	t.Helper()
	key := inngestrt.NewSigningKey()
	srv := inngestrt.NewTest(t, inngestrt.Options{SigningKeys: []string{key}, Wrap: wrap})
	rep, err := Replay(ctxT(t), Config{Events: loadRecorded(t), Inngest: srv, SigningKey: key, PartyKit: partyKit(t), Wait: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	rep.Print(testlog.New(t))
	return rep
}

func TestRecordingCoversThePipeline(t *testing.T) {
	events := loadRecorded(t)
	if len(events) < 18 || len(events) > 25 {
		t.Errorf("%d events, want about 20", len(events))
	}
	names, rooms := map[string]int{}, map[string]bool{}
	var all strings.Builder
	for _, e := range events {
		names[e.Name]++
		rooms[e.Room] = true
		all.Write(e.Body)
	}
	for _, n := range []string{"videoResource.created", "video.asset.ready", "video.asset.errored", "transcript.ready"} {
		if names[n] == 0 {
			t.Errorf("no %s event", n)
		}
	}
	if len(rooms) < 3 {
		t.Errorf("%d rooms, want several", len(rooms))
	}
	body := all.String()
	for what, s := range map[string]string{
		"HTML characters": "<Suspense", "an ampersand": " & ", "CJK": "字幕", "an emoji": "🎬", "an escaped surrogate pair": `\ud83c\udfac`,
		"U+2028": `\u2028`, "a null": "null", "a nested array": "[[", "an exponent": "1e3", "a trailing zero": "93.40", "-0": ":-0,",
		"an integer beyond 2^53": "9007199254740993", "integer-like keys": `{"90":`,
	} {
		if !strings.Contains(body, s) {
			t.Errorf("no body with %s (%q)", what, s)
		}
	}
}

func TestLoadEventsRejects(t *testing.T) {
	for name, in := range map[string]string{
		"duplicate request id": `{"room":"a","name":"n","requestId":"x","body":1}` + "\n" + `{"room":"b","name":"n","requestId":"x","body":2}`,
		"no request id":        `{"room":"a","name":"n","body":1}`,
		"not JSON":             `{"room":"a",`,
		"unknown field":        `{"room":"a","name":"n","requestId":"x","bdy":1}`,
		"invalid room":         `{"room":"","name":"n","requestId":"x","body":1}`,
		"empty":                "# nothing\n\n",
	} {
		if _, err := LoadEvents(strings.NewReader(in)); err == nil {
			t.Errorf("%s: loaded", name)
		}
	}
	events, err := LoadEvents(strings.NewReader("# comment\n\n" + `{"room":"a","name":"n","requestId":"x"}` + "\n"))
	if err != nil || len(events) != 1 {
		t.Fatalf("%v, %v", events, err)
	}
	if b, _ := events[0].Message().Encode(); !bytes.Contains(b, []byte(`"body":null`)) {
		t.Errorf("a missing body encodes as %s, want null", b)
	}
}

// TestRunCleanReplay is go run ./parity: no mismatch, exit status 0.
func TestRunCleanReplay(t *testing.T) {
	pk := partyKit(t)
	out, errOut := testlog.New(t), testlog.New(t)
	if code := run(ctxT(t), nil, environment{Stdout: out, Stderr: errOut, PartyKit: pk}); code != exitParity {
		t.Fatalf("exit %d, want %d", code, exitParity)
	}
	for _, want := range []string{"40/40 deliveries; 0 missing, 0 duplicated, 0 late (> 1s), 0 differing, 0 unexpected", "PASS"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q", want)
		}
	}
}

// TestReplayClean checks the clean replay's report in detail: every event
// delivered once by both transports, Inngest byte for byte, PartyKit
// re-spelled for some (which is why payloads are compared parsed).
func TestReplayClean(t *testing.T) {
	rep := replay(t, nil)
	if !rep.OK() {
		t.Fatalf("mismatches: %v", rep.Mismatches())
	}
	respelled := 0
	for _, rr := range rep.Rooms {
		for _, tr := range transports {
			if s := rr.Stats[tr]; s.Delivered != rr.Events {
				t.Errorf("room %s: %s delivered %d/%d", rr.Room, tr, s.Delivered, rr.Events)
			}
		}
		if s := rr.Stats[broadcast.TransportInngest]; s.SameBytes != rr.Events {
			t.Errorf("room %s: Inngest delivered %d/%d byte for byte", rr.Room, s.SameBytes, rr.Events)
		}
		respelled += rr.Events - rr.Stats[broadcast.TransportPartyKit].SameBytes
	}
	if respelled == 0 {
		t.Error("PartyKit re-spelled nothing: the recording no longer exercises the JSON comparison")
	}
}

// TestRunInngestDropsOne: the Inngest endpoint answers 200 to one publish
// without forwarding it. The replay reports exactly that event missing on
// Inngest, in its room, and exits 1.
func TestRunInngestDropsOne(t *testing.T) {
	const room, id = "vid_01hv3p5r9w", "req_01hv3p5r9w_errored"
	var n atomic.Int32
	out, errOut := testlog.New(t), testlog.New(t)
	code := run(ctxT(t), []string{"-wait", "1s"}, environment{Stdout: out, Stderr: errOut, PartyKit: partyKit(t), Wrap: tamper(id, 0, &n)})
	if code != exitMismatch {
		t.Fatalf("exit %d, want %d", code, exitMismatch)
	}
	if n.Load() != 1 {
		t.Fatalf("tampered with %d publishes, want 1", n.Load())
	}
	want := "MISSING    inngest  room=" + room + " requestId=" + id + " name=video.asset.errored"
	if !strings.Contains(out.String(), want) {
		t.Errorf("output lacks %q", want)
	}
	if !strings.Contains(out.String(), "39/40 deliveries; 1 missing, 0 duplicated") || !strings.Contains(out.String(), "FAIL") {
		t.Error("the summary does not count one missing delivery")
	}

	// The same through Replay: one mismatch, the right one.
	n.Store(0)
	rep := replay(t, tamper(id, 0, &n))
	checkOnly(t, rep, Mismatch{Kind: Missing, Transport: broadcast.TransportInngest, Room: room, RequestID: id, Name: "video.asset.errored"})
}

// TestReplayInngestDuplicatesOne: the Inngest endpoint forwards one
// publish twice. The replay reports exactly that event duplicated on
// Inngest, in its room.
func TestReplayInngestDuplicatesOne(t *testing.T) {
	const room, id = "vid_01hv3m2z7p", "req_01hv3m2z7p_transcript"
	var n atomic.Int32
	rep := replay(t, tamper(id, 2, &n))
	if n.Load() != 1 {
		t.Fatalf("tampered with %d publishes, want 1", n.Load())
	}
	checkOnly(t, rep, Mismatch{Kind: Duplicated, Transport: broadcast.TransportInngest, Room: room, RequestID: id, Name: "transcript.ready", Detail: "2 copies"})
	w := testlog.New(t)
	rep.Print(w)
	if !strings.Contains(w.String(), "DUPLICATED inngest  room="+room+" requestId="+id) {
		t.Error("the report does not name the duplicate")
	}
}

// checkOnly asserts that the report's only mismatch is want (Detail is
// compared only when want has one).
func checkOnly(t *testing.T, rep *Report, want Mismatch) {
	t.Helper()
	got := rep.Mismatches()
	if len(got) != 1 {
		t.Fatalf("mismatches %v, want only %v", got, want)
	}
	if want.Detail == "" {
		got[0].Detail = ""
	}
	if got[0] != want {
		t.Fatalf("mismatch %+v, want %+v", got[0], want)
	}
	if rep.OK() {
		t.Error("OK with a mismatch")
	}
}

// TestRunWithoutPartyKit: parity needs both transports, so without the
// PartyKit dev server the command says so and exits non-zero.
func TestRunWithoutPartyKit(t *testing.T) {
	out, errOut := testlog.New(t), testlog.New(t)
	code := run(ctxT(t), []string{"-partykit-dir", t.TempDir()}, environment{Stdout: out, Stderr: errOut})
	if code != exitCannot {
		t.Fatalf("exit %d, want %d", code, exitCannot)
	}
	for _, want := range []string{"PartyKit dev server is not installed", "needs both", "npm ci --prefix harness/partykit/server"} {
		if !strings.Contains(errOut.String(), want) {
			t.Errorf("stderr lacks %q", want)
		}
	}
	if out.String() != "" {
		t.Errorf("printed a report without PartyKit: %s", out.String())
	}
}

func TestRunUsage(t *testing.T) {
	bad := t.TempDir() + "/bad.jsonl"
	if err := os.WriteFile(bad, []byte(`{"room":"a","name":"n"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"-late", "0"}, {"extra"}, {"-events", bad}, {"-events", bad + ".missing"}, {"-nope"}} {
		errOut := testlog.New(t)
		if code := run(ctxT(t), args, environment{Stdout: io.Discard, Stderr: errOut}); code != exitCannot {
			t.Errorf("%q: exit %d, want %d", args, code, exitCannot)
		}
	}
}

// TestAnalyze covers late and differing deliveries, and deliveries of
// nothing that was published, without servers.
func TestAnalyze(t *testing.T) {
	events := []Event{
		{Room: "r1", Name: "video.asset.ready", RequestID: "a", Body: []byte(`{"title":"<b>","n":1.50,"k":{"2":1,"1":2}}`)},
		{Room: "r1", Name: "transcript.ready", RequestID: "b", Body: []byte(`{"t":"x"}`)},
	}
	env := func(e Event) []byte { b, _ := e.Message().Encode(); return b }
	t0 := time.Now()
	starts := map[string]time.Time{"a": t0, "b": t0}
	const pk, in = broadcast.TransportPartyKit, broadcast.TransportInngest
	rc := func(tr, id string, data []byte, after time.Duration) receipt {
		return receipt{transport: tr, room: "r1", requestID: id, data: data, at: t0.Add(after)}
	}
	receipts := []receipt{
		rc(pk, "a", realtimetest.JSSpelling(bytes.Replace(env(events[0]), []byte("1.50"), []byte("1.5"), 1)), time.Millisecond), // re-spelled: equal
		rc(in, "a", env(events[0]), 2*time.Second), // late
		rc(pk, "b", env(events[1]), time.Millisecond),
		rc(in, "b", bytes.Replace(env(events[1]), []byte(`"x"`), []byte(`"y"`), 1), time.Millisecond),      // differs
		rc(in, "zzz", []byte(`{"body":1,"requestId":"zzz","name":"video.asset.ready"}`), time.Millisecond), // unexpected
	}
	rec := map[string]*recording{pk: {errs: map[string]error{}}, in: {errs: map[string]error{}}}
	rep := analyze(groupByRoom(events), map[string]string{"r1": "r1"}, starts, map[string]flags.Mode{"a": flags.Shadow, "b": flags.Shadow}, receipts, rec, time.Second)
	var got []string
	for _, m := range rep.Mismatches() {
		got = append(got, m.String())
	}
	want := []string{
		"LATE       inngest  room=r1 requestId=a name=video.asset.ready: delivered after 2s",
		`DIFFERS    inngest  room=r1 requestId=b name=transcript.ready: copy 1: $.body.t: want "x", got "y"`,
		"UNEXPECTED inngest  room=r1 requestId=zzz name=video.asset.ready: no event of this room has this request id",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("mismatches:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if s := rep.Rooms[0].Stats[pk]; s.Delivered != 2 || s.SameBytes != 1 {
		t.Errorf("partykit stats %+v, want 2 delivered, 1 byte for byte", s)
	}
}

func TestJSONDiff(t *testing.T) {
	for _, c := range []struct{ want, got, diff string }{
		{`{"a":1,"b":"<&>"}`, `{"b":"<&>","a":1.0}`, ""},
		{`{"n":1e3,"z":-0,"big":9007199254740993}`, `{"n":1000,"z":0,"big":9007199254740992}`, ""},
		{`{"a":[1,{"b":null}]}`, `{"a":[1,{"b":0}]}`, "$.a[1].b: want null, got 0"},
		{`{"a":[1,2]}`, `{"a":[1]}`, "$.a: want 2 elements, got 1"},
		{`{"a":1}`, `{}`, "$.a: missing"},
		{`{}`, `{"a":1}`, "$.a: unexpected 1"},
		{`{"a":{}}`, `{"a":[]}`, "$.a: want an object, got []"},
		{`{"a":1}`, `nope`, `not JSON: "nope"`},
	} {
		if d := jsonDiff([]byte(c.want), []byte(c.got)); d != c.diff {
			t.Errorf("jsonDiff(%s, %s) = %q, want %q", c.want, c.got, d, c.diff)
		}
	}
}

// writeFlagsFile replaces a flags file atomically, as an operator's
// temp-file-and-mv does.
func writeFlagsFile(t *testing.T, path, content string) {
	t.Helper()
	if err := flagsource.WriteFile(path, content); err != nil {
		t.Fatal(err)
	}
}

// TestRunFollowsFlagsFile: parity reads the app's flags file, publishes
// each event in its scope's mode and checks each transport against that
// mode; after a flip (the kill switch) the next run follows it.
func TestRunFollowsFlagsFile(t *testing.T) {
	pk := partyKit(t)
	path := filepath.Join(t.TempDir(), "app.flags")
	// 6 video.asset.ready events (legacy: PartyKit only), 5 transcript.ready
	// (realtime: Inngest only), 9 others (shadow: both) = 15 + 14.
	writeFlagsFile(t, path, "REALTIME_DEFAULT_MODE=shadow\nREALTIME_VIDEO_READY_MODE=legacy\nREALTIME_TRANSCRIPT_MODE=realtime\n")
	out := testlog.New(t)
	if code := run(ctxT(t), []string{"-flags", path}, environment{Stdout: out, Stderr: testlog.New(t), PartyKit: pk}); code != exitParity {
		t.Fatalf("exit %d, want %d", code, exitParity)
	}
	for _, want := range []string{"flags: flags file " + path,
		"modes video-upload=shadow video-ready=legacy transcript=realtime",
		"29/29 deliveries; 0 missing, 0 duplicated", "0 unexpected", "PASS"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q", want)
		}
	}

	writeFlagsFile(t, path, "REALTIME_DEFAULT_MODE=shadow\nREALTIME_VIDEO_READY_MODE=legacy\nREALTIME_TRANSCRIPT_MODE=realtime\nREALTIME_KILL_SWITCH=true\n")
	out = testlog.New(t)
	if code := run(ctxT(t), []string{"-flags", path}, environment{Stdout: out, Stderr: testlog.New(t), PartyKit: pk}); code != exitParity {
		t.Fatalf("kill switch: exit %d, want %d", code, exitParity)
	}
	for _, want := range []string{"modes video-upload=legacy video-ready=legacy transcript=legacy",
		"20/20 deliveries", "inngest   not published to in these modes", "PASS"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("after the kill switch, output lacks %q", want)
		}
	}
}

// TestAnalyzeAgainstMode: an event delivered on a transport its mode does
// not publish to is unexpected; one its mode does publish to and that did
// not arrive is missing.
func TestAnalyzeAgainstMode(t *testing.T) {
	events := []Event{{Room: "r1", Name: "video.asset.ready", RequestID: "a", Body: []byte(`1`)}}
	env, _ := events[0].Message().Encode()
	t0 := time.Now()
	const pk, in = broadcast.TransportPartyKit, broadcast.TransportInngest
	rec := map[string]*recording{pk: {errs: map[string]error{}}, in: {errs: map[string]error{}}}
	receipts := []receipt{{transport: in, room: "r1", requestID: "a", data: env, at: t0.Add(time.Millisecond)}}
	rep := analyze(groupByRoom(events), map[string]string{"r1": "r1"}, map[string]time.Time{"a": t0}, map[string]flags.Mode{"a": flags.Legacy}, receipts, rec, time.Second)
	var got []string
	for _, m := range rep.Mismatches() {
		got = append(got, m.String())
	}
	want := []string{
		"MISSING    partykit room=r1 requestId=a name=video.asset.ready",
		"UNEXPECTED inngest  room=r1 requestId=a name=video.asset.ready: delivered 1 times although legacy mode does not publish to inngest",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("mismatches:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
