package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/open-feature/go-sdk/openfeature"
	"github.com/open-feature/go-sdk/openfeature/memprovider"
	"go.uber.org/goleak"

	"github.com/coursebuilder/realtime-go/broadcast"
	"github.com/coursebuilder/realtime-go/examples/internal/flagsource"
	"github.com/coursebuilder/realtime-go/examples/internal/testlog"
	"github.com/coursebuilder/realtime-go/flags"
	"github.com/coursebuilder/realtime-go/harness/inngestrt"
	"github.com/coursebuilder/realtime-go/harness/partykit"
	"github.com/coursebuilder/realtime-go/legacyparty"
	"github.com/coursebuilder/realtime-go/realtime"
	"github.com/coursebuilder/realtime-go/realtime/inngest"
	"github.com/coursebuilder/realtime-go/realtime/realtimetest"
)

// One PartyKit dev server for the test binary: it takes seconds to start.
var shared partykit.Shared

func TestMain(m *testing.M) {
	clearEnv()
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

// partyKit returns the shared PartyKit dev server, or nil when it cannot
// run here; with CI set that fails the test instead, as partykit.NewTest.
func partyKit(t *testing.T) *partykit.Server {
	t.Helper()
	if err := partykit.Available(""); err != nil && os.Getenv("CI") == "" {
		t.Logf("PartyKit not available (%v): Inngest alone", err)
		return nil
	}
	return shared.Get(t)
}

// servers starts an Inngest endpoint for the test (with wrap around its
// handler) and returns a canary configuration over it and the shared
// PartyKit server, with the local readiness hook.
func servers(t *testing.T, wrap func(http.Handler) http.Handler) (Config, *inngestrt.Server) {
	t.Helper()
	key := inngestrt.NewSigningKey()
	srv := inngestrt.NewTest(t, inngestrt.Options{SigningKeys: []string{key}, Wrap: wrap})
	in, err := inngest.New(&inngest.Options{BaseURL: srv.URL(), SigningKey: key, ChannelSecret: rand.Text() + rand.Text()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = in.Close() })
	l := &local{inngest: srv, Inngest: in, subs: map[[2]string]int{}}
	if pk := partyKit(t); pk != nil {
		lp, err := legacyparty.New(&legacyparty.Options{BaseURL: pk.URL()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = lp.Close() })
		l.PartyKit = lp
	}
	return l.config(), srv
}

// dropPublishes answers every publish 200 without forwarding it: Inngest
// "accepts" the message and nobody receives it. It counts what it drops.
func dropPublishes(n *atomic.Int32) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPost && r.URL.Path == "/v1/realtime/publish" {
				_, _ = io.Copy(io.Discard, r.Body)
				n.Add(1)
				w.WriteHeader(http.StatusOK)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// doublePublishes forwards every publish twice.
func doublePublishes(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v1/realtime/publish" {
			next.ServeHTTP(w, r)
			return
		}
		body, _ := io.ReadAll(r.Body)
		first := r.Clone(r.Context())
		first.Body = io.NopCloser(bytes.NewReader(body))
		next.ServeHTTP(discard{}, first)
		r.Body = io.NopCloser(bytes.NewReader(body))
		next.ServeHTTP(w, r)
	})
}

type discard struct{}

func (discard) Header() http.Header         { return http.Header{} }
func (discard) Write(b []byte) (int, error) { return len(b), nil }
func (discard) WriteHeader(int)             {}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// clearEnv removes from the process environment every variable the canary
// or its providers read (INNGEST_*, the flags' REALTIME_* and
// ENABLE_REALTIME_*, NEXT_PUBLIC_PARTY_KIT_URL), so that a developer's or
// CI's values do not reach the tests.
func clearEnv() {
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "INNGEST_") || strings.HasPrefix(k, "REALTIME_") || strings.HasPrefix(k, "ENABLE_REALTIME_") || k == "NEXT_PUBLIC_PARTY_KIT_URL" {
			_ = os.Unsetenv(k)
		}
	}
}

// setEnv sets m in the process environment for the rest of t.
func setEnv(t *testing.T, m map[string]string) {
	t.Helper()
	for k, v := range m {
		t.Setenv(k, v)
	}
}

func transport(t *testing.T, rep *Report, name string) TransportResult {
	t.Helper()
	for _, tr := range rep.Transports {
		if tr.Name == name {
			return tr
		}
	}
	t.Fatalf("no %s in the report", name)
	return TransportResult{}
}

// checkDelivered asserts that transport received the canary event intact
// and once.
func checkDelivered(t *testing.T, rep *Report, name string) {
	t.Helper()
	tr := transport(t, rep, name)
	if !tr.Enabled || tr.SubscribeErr != nil || tr.Copies != 1 || !tr.PayloadEqual || tr.PublishErr != nil || !tr.Published {
		t.Errorf("%s: %+v, want enabled, published, received once and equal", name, tr)
	}
	if tr.DeliveryLatency <= 0 || tr.DeliveryLatency > DefaultDeadline {
		t.Errorf("%s: delivery latency %v", name, tr.DeliveryLatency)
	}
}

// TestRunLocal is what a reviewer runs: go run ./canary -local, with both
// local servers when PartyKit is installed. It passes and says so.
func TestRunLocal(t *testing.T) {
	if testing.Short() && partykit.Available("") == nil {
		t.Skip("starts its own PartyKit dev server")
	}
	out, errOut := testlog.New(t), testlog.New(t)
	code := run(ctxT(t), []string{"-local"}, environment{Stdout: out, Stderr: errOut})
	if code != exitPass {
		t.Fatalf("exit %d, want %d", code, exitPass)
	}
	for _, want := range []string{"mode:    flags=shadow effective=shadow", "PASS", "canary passed"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if partykit.Available("") == nil && !strings.Contains(out.String(), "partykit   yes") {
		t.Errorf("PartyKit is installed but did not deliver")
	}
	if !strings.Contains(out.String(), "inngest    yes       yes (same bytes)") {
		t.Errorf("Inngest did not deliver the envelope's bytes")
	}
}

// TestRunLocalDroppedPublishFails: an Inngest endpoint that answers 200 to
// publishes without forwarding them. The publish "succeeds", nothing
// arrives: the canary must fail with exit status 1 and say which transport.
func TestRunLocalDroppedPublishFails(t *testing.T) {
	var dropped atomic.Int32
	out, errOut := testlog.New(t), testlog.New(t)
	code := run(ctxT(t), []string{"-local", "-no-partykit", "-deadline", "1s"},
		environment{Stdout: out, Stderr: errOut, Wrap: dropPublishes(&dropped)})
	if code != exitFail {
		t.Fatalf("exit %d, want %d", code, exitFail)
	}
	if dropped.Load() != 1 {
		t.Errorf("%d publishes dropped, want 1", dropped.Load())
	}
	for _, want := range []string{"inngest    no", "FAIL", "inngest: not received"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q", want)
		}
	}
}

// TestCheckShadow publishes in shadow mode to both local servers.
func TestCheckShadow(t *testing.T) {
	cfg, _ := servers(t, nil)
	cfg.Resolver = flags.Fixed(flags.Shadow)
	rep, err := Check(ctxT(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	rep.Print(testlog.New(t))
	if !rep.OK() {
		t.Fatal("canary failed")
	}
	checkDelivered(t, rep, broadcast.TransportInngest)
	in := transport(t, rep, broadcast.TransportInngest)
	if !in.SameBytes {
		t.Errorf("Inngest delivered %s, want the envelope's bytes %s", in.Payload, rep.Envelope)
	}
	if cfg.PartyKit != nil {
		checkDelivered(t, rep, broadcast.TransportPartyKit)
		pk := transport(t, rep, broadcast.TransportPartyKit)
		// The title has <, > and &: the party re-spells them.
		if pk.SameBytes || !bytes.Equal(pk.Payload, realtimetest.JSSpelling(rep.Envelope)) {
			t.Errorf("PartyKit delivered %s, want JSSpelling(envelope) %s", pk.Payload, realtimetest.JSSpelling(rep.Envelope))
		}
	}
}

// TestCheckShadowDroppedPublish is the failure the canary exists for: in
// shadow mode the Broadcast succeeds (PartyKit counts) while Inngest
// silently loses the message.
func TestCheckShadowDroppedPublish(t *testing.T) {
	var dropped atomic.Int32
	cfg, _ := servers(t, dropPublishes(&dropped))
	cfg.Resolver = flags.Fixed(flags.Shadow)
	cfg.Deadline = time.Second
	rep, err := Check(ctxT(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	w := testlog.New(t)
	rep.Print(w)
	if rep.OK() {
		t.Fatal("canary passed although Inngest dropped the event")
	}
	in := transport(t, rep, broadcast.TransportInngest)
	if in.Received() || in.PublishErr != nil || !in.Published {
		t.Errorf("inngest: %+v, want published without error and not received", in)
	}
	if rep.PublishErr != nil {
		t.Errorf("Broadcast.Publish: %v, want nil (shadow mode: PartyKit counts)", rep.PublishErr)
	}
	if cfg.PartyKit != nil {
		checkDelivered(t, rep, broadcast.TransportPartyKit)
	}
	if !strings.Contains(w.String(), "inngest: not received") {
		t.Error("the report does not say that Inngest did not deliver")
	}
}

// TestCheckDuplicateFails: a transport that delivers the event twice fails
// the canary.
func TestCheckDuplicateFails(t *testing.T) {
	cfg, _ := servers(t, doublePublishes)
	cfg.PartyKit = nil
	cfg.Resolver = flags.Fixed(flags.Realtime)
	rep, err := Check(ctxT(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	w := testlog.New(t)
	rep.Print(w)
	if in := transport(t, rep, broadcast.TransportInngest); rep.OK() || in.Copies != 2 {
		t.Fatalf("OK=%v copies=%d, want a failure with 2 copies", rep.OK(), in.Copies)
	}
	if !strings.Contains(w.String(), "inngest: received 2 times") {
		t.Error("the report does not name the duplicate")
	}
}

// TestCheckProbes runs the readiness of remote mode (no server hook:
// probes) against the local servers.
func TestCheckProbes(t *testing.T) {
	cfg, srv := servers(t, nil)
	cfg.WaitSubscribed = nil
	cfg.Resolver = flags.Fixed(flags.Primary)
	cfg.Room = "canary-probes"
	rep, err := Check(ctxT(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	rep.Print(testlog.New(t))
	if !rep.OK() {
		t.Fatal("canary failed")
	}
	checkDelivered(t, rep, broadcast.TransportInngest)
	if cfg.PartyKit != nil {
		checkDelivered(t, rep, broadcast.TransportPartyKit)
	}
	if n := srv.Subscriptions(mustChannel(t, cfg.Inngest, cfg.Room), EventName); n != 1 {
		t.Errorf("%d subscriptions, want 1 (the first probe came through)", n)
	}
}

// TestCheckProbesResubscribe: when no probe comes through, the canary
// subscribes again, ProbeAttempts times, then fails that transport without
// publishing the event.
func TestCheckProbesResubscribe(t *testing.T) {
	var dropped atomic.Int32
	cfg, srv := servers(t, dropPublishes(&dropped))
	cfg.PartyKit = nil
	cfg.WaitSubscribed = nil
	cfg.Resolver = flags.Fixed(flags.Realtime)
	cfg.Room = "canary-resubscribe"
	cfg.ProbeInterval, cfg.ProbeWindow, cfg.ProbeAttempts = 50*time.Millisecond, 300*time.Millisecond, 2
	rep, err := Check(ctxT(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	w := testlog.New(t)
	rep.Print(w)
	in := transport(t, rep, broadcast.TransportInngest)
	if rep.OK() || in.SubscribeErr == nil || !strings.Contains(in.SubscribeErr.Error(), "subscribed 2 times but no probe came through") {
		t.Fatalf("OK=%v subscribe error %v, want a failure after 2 attempts", rep.OK(), in.SubscribeErr)
	}
	if n := srv.Subscriptions(mustChannel(t, cfg.Inngest, cfg.Room), EventName); n != 2 {
		t.Errorf("%d subscriptions, want 2", n)
	}
	if in.Published || rep.Published {
		t.Error("the event was published although no subscriber was ready")
	}
	if strings.Contains(w.String(), "(ok)") || !strings.Contains(w.String(), "publish: not attempted") {
		t.Errorf("the report must say the event was not published, not that the publish was ok:\n%s", w.String())
	}
	if !strings.Contains(w.String(), "FAIL") {
		t.Error("no FAIL in the report")
	}
}

// TestRunFromEnvironment: without -local, the endpoints and the mode come
// from the environment, as in staging. Here the "remote" endpoints are the
// local servers, reached through the variables only, so readiness is
// probed.
func TestRunFromEnvironment(t *testing.T) {
	key := inngestrt.NewSigningKey()
	srv := inngestrt.NewTest(t, inngestrt.Options{SigningKeys: []string{key}})
	env := map[string]string{
		"INNGEST_BASE_URL":          srv.URL(),
		"INNGEST_SIGNING_KEY":       key,
		"REALTIME_VIDEO_READY_MODE": "primary",
		"REALTIME_CHANNEL_SECRET":   rand.Text() + rand.Text(),
	}
	want := []string{"flags=primary effective=primary", "inngest    yes", "PASS"}
	if pk := partyKit(t); pk != nil {
		env["NEXT_PUBLIC_PARTY_KIT_URL"] = strings.TrimPrefix(pk.URL(), "http://") // a bare host, as apps set it
		want = append(want, "partykit   yes")
	} else {
		want[0] = "flags=primary effective=realtime"
	}
	out, errOut := testlog.New(t), testlog.New(t)
	setEnv(t, env)
	if code := run(ctxT(t), nil, environment{Stdout: out, Stderr: errOut}); code != exitPass {
		t.Fatalf("exit %d, want %d", code, exitPass)
	}
	for _, w := range want {
		if !strings.Contains(out.String(), w) {
			t.Errorf("output lacks %q", w)
		}
	}
	if strings.Contains(out.String(), "local:") {
		t.Error("started local servers although the environment names endpoints")
	}

	// Legacy from the environment: Inngest is configured but not published to.
	env["REALTIME_VIDEO_READY_MODE"] = "legacy"
	if _, ok := env["NEXT_PUBLIC_PARTY_KIT_URL"]; ok {
		out = testlog.New(t)
		setEnv(t, env)
		if code := run(ctxT(t), nil, environment{Stdout: out, Stderr: errOut}); code != exitPass {
			t.Fatalf("legacy: exit %d, want %d", code, exitPass)
		}
		if !strings.Contains(out.String(), "(not published to in legacy mode)") {
			t.Error("legacy mode: Inngest not shown as left out")
		}
	}
}

func TestRunUsage(t *testing.T) {
	for _, args := range [][]string{{"-mode", "sideways", "-local", "-no-partykit"}, {"-deadline", "0", "-local", "-no-partykit"}, {"extra"}, {"-nope"}} {
		errOut := testlog.New(t)
		if code := run(ctxT(t), args, environment{Stdout: io.Discard, Stderr: errOut}); code != exitUsage {
			t.Errorf("%q: exit %d, want %d", args, code, exitUsage)
		}
	}
	// A configuration inngest.New refuses.
	errOut := testlog.New(t)
	setEnv(t, map[string]string{"INNGEST_SIGNING_KEY": "not-a-key"})
	code := run(ctxT(t), nil, environment{Stdout: io.Discard, Stderr: errOut})
	if code != exitUsage || !strings.Contains(errOut.String(), "signing key") {
		t.Errorf("bad key: exit %d (%s), want %d naming the key", code, errOut.String(), exitUsage)
	}
	if strings.Contains(errOut.String(), "not-a-key") {
		t.Error("the error shows the key")
	}
}

func TestJSONEqual(t *testing.T) {
	env, err := Event("canary-x", "canary-y", time.Unix(1700000000, 0)).Encode()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(env, []byte(`\u003cvideo\u003e \u0026`)) {
		t.Fatalf("the canary title is not HTML-escaped by Encode: %s", env)
	}
	js := realtimetest.JSSpelling(env)
	if bytes.Equal(js, env) || !jsonEqual(js, env) {
		t.Errorf("JS spelling should differ in bytes and parse equal")
	}
	for _, b := range []string{`{"body":1,"requestId":"x","name":"y"}`, `not json`, strings.Replace(string(env), "93.4", "93.5", 1)} {
		if jsonEqual([]byte(b), env) {
			t.Errorf("%s parses equal to the envelope", b)
		}
	}
	if !jsonEqual([]byte(`{"a":1.0,"b":[1e2]}`), []byte(`{"b":[100],"a":1}`)) {
		t.Error("numbers and key order should not matter")
	}
}

func TestCheckNothingConfigured(t *testing.T) {
	if _, err := Check(ctxT(t), Config{}); err == nil || errors.Is(err, context.Canceled) {
		t.Errorf("Check without providers: %v, want an error", err)
	}
}

// TestPartyKitSubscribedOnHandshake backs the local mode's assumption that
// a PartyKit websocket is in its room once the handshake completed: a
// message published right after it is delivered, every time.
func TestPartyKitSubscribedOnHandshake(t *testing.T) {
	pk := partyKit(t)
	if pk == nil {
		t.Skip("PartyKit not available")
	}
	lp, err := legacyparty.New(&legacyparty.Options{BaseURL: pk.URL()})
	if err != nil {
		t.Fatal(err)
	}
	defer lp.Close()
	const n = 20
	col := newCollector()
	var subs []*partySub
	defer func() { // concurrently: each close waits for workerd, which never answers
		var wg sync.WaitGroup
		for _, s := range subs {
			wg.Go(func() { _ = s.Close() })
		}
		wg.Wait()
	}()
	for i := range n {
		room := fmt.Sprintf("canary-handshake-%d", i)
		sub, err := subscribePartyKit(ctxT(t), lp, room, col)
		if err != nil {
			t.Fatal(err)
		}
		subs = append(subs, sub)
		if err := lp.Publish(ctxT(t), realtime.Message{Room: room, Name: EventName, RequestID: room, Body: i}); err != nil {
			t.Fatal(err)
		}
		deadline := time.After(5 * time.Second)
		for len(col.of(broadcast.TransportPartyKit, room)) == 0 {
			select {
			case <-col.notify:
			case <-deadline:
				t.Fatalf("room %d: the message published right after the handshake was not delivered", i)
			}
		}
	}
}

// mustChannel is the channel p publishes room to (keyed, unless p's Mapping
// is Unkeyed).
func mustChannel(t *testing.T, p *inngest.Provider, room string) string {
	t.Helper()
	ch, err := p.Channel(room)
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

// writeFlagsFile replaces a flags file atomically, as an operator's
// temp-file-and-mv does.
func writeFlagsFile(t *testing.T, path, content string) {
	t.Helper()
	if err := flagsource.WriteFile(path, content); err != nil {
		t.Fatal(err)
	}
}

// TestRunReadsFlagsFile: by default the canary reports and checks the mode
// the app's flags file gives, and a flip between two runs shows in the
// second: the kill switch sends every scope to legacy.
func TestRunReadsFlagsFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.flags")
	writeFlagsFile(t, path, "REALTIME_VIDEO_READY_MODE=primary\nREALTIME_TRANSCRIPT_MODE=shadow\n")
	args := []string{"-local", "-no-partykit", "-flags", path}

	out := testlog.New(t)
	if code := run(ctxT(t), args, environment{Stdout: out, Stderr: testlog.New(t)}); code != exitPass {
		t.Fatalf("exit %d, want %d", code, exitPass)
	}
	for _, want := range []string{"flags:   flags file " + path,
		"scopes:  video-upload=legacy video-ready=primary video-errored=legacy transcript=shadow ai-stream=legacy default=legacy",
		"mode:    flags=primary effective=realtime", // no PartyKit: Inngest alone
		"PASS"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q", want)
		}
	}

	writeFlagsFile(t, path, "REALTIME_VIDEO_READY_MODE=primary\nREALTIME_TRANSCRIPT_MODE=shadow\nREALTIME_KILL_SWITCH=true\n")
	out = testlog.New(t)
	run(ctxT(t), args, environment{Stdout: out, Stderr: testlog.New(t)})
	for _, want := range []string{
		"scopes:  video-upload=legacy video-ready=legacy video-errored=legacy transcript=legacy ai-stream=legacy default=legacy",
		"mode:    flags=legacy"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("after the kill switch, output lacks %q", want)
		}
	}
}

// TestRunMissingFlagsFile: a -flags path that does not exist is a usage
// error, not a silent read of the environment alone.
func TestRunMissingFlagsFile(t *testing.T) {
	errOut := testlog.New(t)
	code := run(ctxT(t), []string{"-local", "-no-partykit", "-flags", filepath.Join(t.TempDir(), "nope.flags")}, environment{Stdout: io.Discard, Stderr: errOut})
	if code != exitUsage || !strings.Contains(errOut.String(), "nope.flags") {
		t.Errorf("exit %d (%s), want %d naming the file", code, errOut.String(), exitUsage)
	}
}

// TestCanaryFollowsFlipWithFlipLog: one Canary over the app's flags file,
// run again and again while the file is flipped, publishes in the mode the
// file says at each run and reports each change through OnModeChange with
// the figures of the runs in the mode that ended.
func TestCanaryFollowsFlipWithFlipLog(t *testing.T) {
	cfg, _ := servers(t, nil)
	if cfg.PartyKit == nil {
		t.Skip("PartyKit not available: with Inngest alone every mode publishes to Inngest")
	}
	path := filepath.Join(t.TempDir(), "app.flags")
	writeFlagsFile(t, path, "REALTIME_VIDEO_READY_MODE=shadow\n")
	src, err := flagsource.Open(ctxT(t), flagsource.Options{File: path})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var mu sync.Mutex
	var changes []broadcast.ModeChange
	cfg.Resolver = src.Evaluator
	cfg.OnModeChange = func(c broadcast.ModeChange) {
		mu.Lock()
		changes = append(changes, c)
		mu.Unlock()
		t.Log(formatChange(c))
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())

	check := func(want flags.Mode) {
		t.Helper()
		// The file is re-read every 250ms and the Evaluator drops its
		// cache on the change: run until the canary is in the new mode.
		deadline := time.Now().Add(30 * time.Second)
		for {
			rep, err := c.Check(ctxT(t))
			if err != nil {
				t.Fatal(err)
			}
			if rep.Mode == want {
				rep.Print(testlog.New(t))
				if !rep.OK() {
					t.Fatalf("%s: canary failed", want)
				}
				pk, in := transport(t, rep, broadcast.TransportPartyKit), transport(t, rep, broadcast.TransportInngest)
				if pk.Enabled != want.PublishesLegacy() || in.Enabled != want.PublishesRealtime() {
					t.Fatalf("%s: partykit enabled %v, inngest %v", want, pk.Enabled, in.Enabled)
				}
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("still in %s 30s after the flip to %s", rep.Mode, want)
			}
		}
	}
	check(flags.Shadow)
	check(flags.Shadow)
	writeFlagsFile(t, path, "REALTIME_VIDEO_READY_MODE=shadow\nREALTIME_KILL_SWITCH=true\n")
	check(flags.Legacy)
	writeFlagsFile(t, path, "REALTIME_VIDEO_READY_MODE=shadow\nREALTIME_KILL_SWITCH=false\n")
	check(flags.Shadow)

	mu.Lock()
	defer mu.Unlock()
	var got []string
	for _, ch := range changes {
		if ch.Scope != flags.ScopeVideoReady {
			continue
		}
		if ch.Initial {
			got = append(got, "initial "+ch.To.String())
		} else {
			got = append(got, ch.From.String()+"→"+ch.To.String())
		}
	}
	if want := []string{"initial shadow", "shadow→legacy", "legacy→shadow"}; !slices.Equal(got, want) {
		t.Fatalf("mode changes %v, want %v", got, want)
	}
	// The shadow period before the kill switch had two passing runs, each
	// published to both transports.
	var shadow broadcast.ModeChange
	for _, ch := range changes {
		if !ch.Initial && ch.From == flags.Shadow && ch.To == flags.Legacy {
			shadow = ch
		}
	}
	if len(shadow.Figures) != 2 {
		t.Fatalf("figures of the shadow period: %+v, want partykit and inngest", shadow.Figures)
	}
	for _, f := range shadow.Figures {
		if f.Publishes < 2 || f.Errors != 0 {
			t.Errorf("%s: %d publishes, %d errors, want at least 2 and none", f.Transport, f.Publishes, f.Errors)
		}
	}
	if line := formatChange(shadow); !strings.Contains(line, "video-ready: shadow → legacy after") || !strings.Contains(line, "partykit") {
		t.Errorf("flip log line %q", line)
	}
}

// TestRunReadsFlagService: with flagsource.ServiceProvider set (the hook a
// deployment with a flag service uses), the canary reads the flags through
// that OpenFeature provider, with the app and environment as evaluation
// context, and neither the file nor the environment.
func TestRunReadsFlagService(t *testing.T) {
	target := func(_ memprovider.InMemoryFlag, ec openfeature.FlattenedContext) (any, openfeature.ProviderResolutionDetail) {
		if ec["app"] == "astro-party" && ec["environment"] == "staging" {
			return "primary", openfeature.ProviderResolutionDetail{Reason: openfeature.TargetingMatchReason, Variant: "primary"}
		}
		return "legacy", openfeature.ProviderResolutionDetail{Reason: openfeature.DefaultReason, Variant: "legacy"}
	}
	flagsource.ServiceProvider = memprovider.NewInMemoryProvider(map[string]memprovider.InMemoryFlag{
		flags.ScopeVideoReady.ModeKey(): {Key: flags.ScopeVideoReady.ModeKey(), State: memprovider.Enabled, DefaultVariant: "legacy",
			Variants: map[string]any{"legacy": "legacy", "primary": "primary"}, ContextEvaluator: &target},
	})
	defer func() { flagsource.ServiceProvider = nil }()
	t.Setenv("REALTIME_VIDEO_READY_MODE", "shadow") // not read: the flag service is the source
	out := testlog.New(t)
	if code := run(ctxT(t), []string{"-local", "-no-partykit", "-app", "astro-party", "-environment", "staging"}, environment{Stdout: out, Stderr: testlog.New(t)}); code != exitPass {
		t.Fatalf("exit %d, want %d", code, exitPass)
	}
	for _, want := range []string{"flags:   flag service (OpenFeature provider InMemoryProvider)", "video-ready=primary", "mode:    flags=primary"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q", want)
		}
	}
}
