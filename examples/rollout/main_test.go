package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/open-feature/go-sdk/openfeature/isolated"

	"github.com/coursebuilder/realtime-go/broadcast"
	"github.com/coursebuilder/realtime-go/examples/internal/flagsource"
	"github.com/coursebuilder/realtime-go/flags"
	"github.com/coursebuilder/realtime-go/harness/partykit"
	"github.com/coursebuilder/realtime-go/realtime"
)

// TestMain clears the flags variables as main does, so that run sees only
// the flags file whatever the shell sets.
func TestMain(m *testing.M) {
	clearFlagsEnv()
	os.Exit(m.Run())
}

// testWriter sends run's output to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func runScript(t *testing.T, cfg config) []result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cfg.FlagsPath = filepath.Join(t.TempDir(), "rollout.flags")
	cfg.Script = []string{"legacy", "realtime", "legacy"}
	cfg.N = len(cfg.Script)
	cfg.Interval = 20 * time.Millisecond
	cfg.Quiet = 300 * time.Millisecond // long enough that a wrong delivery would be seen
	cfg.Out = testWriter{t}
	results, err := run(ctx, cfg)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if len(results) != cfg.N {
		t.Fatalf("got %d results, want %d", len(results), cfg.N)
	}
	for i, r := range results {
		if r.Err != nil {
			t.Errorf("#%d: publish: %v", r.N, r.Err)
		}
		if want, _ := flags.ParseMode(cfg.Script[i]); r.Flags != want {
			t.Errorf("#%d: flags resolved %s, want %s (the file was rewritten before the publish)", r.N, r.Flags, want)
		}
	}
	return results
}

// checkReceived asserts which subscribers received publish r.
func checkReceived(t *testing.T, r result, partyKit, inngest bool) {
	t.Helper()
	for transport, want := range map[string]bool{broadcast.TransportPartyKit: partyKit, broadcast.TransportInngest: inngest} {
		if _, got := r.Received[transport]; got != want {
			t.Errorf("#%d mode=%s: %s subscriber received=%v, want %v", r.N, r.Mode, transport, got, want)
		}
	}
}

// TestScript flips legacy → realtime → legacy through the flags file against
// the real Inngest endpoint, and the real PartyKit dev server when it is
// installed (not with -short). With PartyKit each publish reaches exactly the
// transport of its mode; without it the legacy transport is absent and every
// publish reaches Inngest, whatever the flags say.
func TestScript(t *testing.T) {
	withParty := !testing.Short() && partykit.Available("") == nil
	if !withParty {
		t.Log("PartyKit not used (unavailable or -short): Inngest-only, nil legacy provider")
	}
	results := runScript(t, config{PartyKit: withParty})
	for i, r := range results {
		if !withParty {
			if r.Mode != flags.Realtime {
				t.Errorf("#%d: mode %s without a legacy transport, want realtime", r.N, r.Mode)
			}
			checkReceived(t, r, false, true)
			continue
		}
		want, _ := flags.ParseMode([]string{"legacy", "realtime", "legacy"}[i])
		if r.Mode != want {
			t.Errorf("#%d: mode %s, want %s", r.N, r.Mode, want)
		}
		checkReceived(t, r, want.PublishesLegacy(), want.PublishesRealtime())
	}
}

// recorder is a legacy provider that records the request ids it was given.
type recorder struct {
	mu  sync.Mutex
	ids []string
}

func (r *recorder) Publish(_ context.Context, msg realtime.Message) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ids = append(r.ids, msg.RequestID)
	return nil
}

func (r *recorder) Close() error { return nil }

// TestScriptLegacyStandIn runs the same script with an in-process stand-in
// for PartyKit, so that the rollback is checked against the real Inngest
// endpoint even where PartyKit cannot run: after flipping back to legacy the
// Inngest subscriber receives nothing.
func TestScriptLegacyStandIn(t *testing.T) {
	rec := &recorder{}
	results := runScript(t, config{Legacy: rec})
	for i, r := range results {
		want, _ := flags.ParseMode([]string{"legacy", "realtime", "legacy"}[i])
		if r.Mode != want {
			t.Errorf("#%d: mode %s, want %s", r.N, r.Mode, want)
		}
		checkReceived(t, r, false, want.PublishesRealtime())
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if got := strings.Join(rec.ids, ","); got != "req_1,req_3" {
		t.Errorf("legacy stand-in got %q, want req_1,req_3", got)
	}
}

// fileEvaluator is an Evaluator over an EnvProvider reading path, without
// cache or polling: each Mode after Refresh reads what the file says.
func fileEvaluator(t *testing.T, path string) (*flags.EnvProvider, *flags.Evaluator) {
	t.Helper()
	ctx := context.Background()
	p := flags.NewEnvProvider(&flags.EnvOptions{File: path, PollInterval: -1})
	api := isolated.NewAPI()
	t.Cleanup(func() { _ = api.Shutdown(ctx) })
	if err := api.SetProviderAndWait(ctx, p); err != nil {
		t.Fatal(err)
	}
	ev := flags.NewEvaluator(api.NewClient(), &flags.Options{CacheTTL: -1, Timeout: time.Hour})
	t.Cleanup(func() { _ = ev.Close() })
	return p, ev
}

// TestScriptEntriesReadByFlagsFile checks that what -script sets is read
// by the flags package's file-backed provider as the mode it names, and
// that the kill switch and its undo leave the mode line alone.
func TestScriptEntriesReadByFlagsFile(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "f")
	if err := flagsource.WriteFile(path, "# c\n"+modeVar+"=realtime\n"); err != nil {
		t.Fatal(err)
	}
	p, ev := fileEvaluator(t, path)
	for _, c := range []struct {
		entry string
		want  flags.Mode
	}{{"shadow", flags.Shadow}, {"Primary", flags.Primary}, {"kill", flags.Legacy}, {"inngest", flags.Legacy}, {"unkill", flags.Realtime}, {"legacy", flags.Legacy}} {
		key, value, err := scriptEntry(c.entry)
		if err != nil {
			t.Fatal(err)
		}
		if err := setFlag(path, key, value); err != nil {
			t.Fatal(err)
		}
		if err := p.Refresh(); err != nil {
			t.Fatal(err)
		}
		if got := ev.Mode(ctx, flags.ScopeOf(eventName), room); got != c.want {
			t.Errorf("%s: Mode = %v, want %v", c.entry, got, c.want)
		}
	}
	b, _ := os.ReadFile(path)
	if want := "# c\n" + killVar + "=false\n" + modeVar + "=legacy\n"; string(b) != want {
		t.Errorf("file %q, want %q", b, want)
	}
}

// TestPrintedCommandsKillAndUndo runs the shell commands the program
// prints, as an operator pastes them, against a flags file that an
// EnvProvider reads: the kill switch sends the scope to legacy, and
// undoing it restores the mode it had; the other lines stay.
func TestPrintedCommandsKillAndUndo(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "it's here.flags") // a quote and a space: the quoting matters
	if err := flagsource.WriteFile(path, "# app flags\nexport REALTIME_TRANSCRIPT_MODE=shadow\n"+modeVar+"=primary\n"); err != nil {
		t.Fatal(err)
	}
	p, ev := fileEvaluator(t, path)

	var out strings.Builder
	printCommands(&out, path)
	var define string
	commands := map[string]string{}
	for _, line := range strings.Split(out.String(), "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "setflag() {") {
			define = line
		}
		if label, cmd, ok := strings.Cut(line, ":"); ok && strings.HasPrefix(strings.TrimSpace(cmd), "setflag ") {
			cmd = strings.TrimSpace(cmd)
			if i := strings.Index(cmd, "  "); i > 0 {
				cmd = cmd[:i] // drop the comment in parentheses
			}
			commands[label] = cmd
		}
	}
	if define == "" || len(commands) != 4 {
		t.Fatalf("printed commands not found in:\n%s", out.String())
	}
	apply := func(label string) {
		t.Helper()
		script := define + "\n" + commands[label]
		if b, err := exec.Command(sh, "-c", script).CombinedOutput(); err != nil {
			t.Fatalf("%s: %s: %v\n%s", label, commands[label], err, b)
		}
		if err := p.Refresh(); err != nil {
			t.Fatal(err)
		}
	}
	mode := func(s flags.Scope) flags.Mode { return ev.Mode(ctx, s, room) }

	if got := mode(flags.ScopeVideoReady); got != flags.Primary {
		t.Fatalf("before: %v, want primary", got)
	}
	apply("kill")
	if got, tr := mode(flags.ScopeVideoReady), mode(flags.ScopeTranscript); got != flags.Legacy || tr != flags.Legacy {
		t.Fatalf("after the kill switch: video-ready %v, transcript %v, want legacy", got, tr)
	}
	apply("undo kill")
	if got, tr := mode(flags.ScopeVideoReady), mode(flags.ScopeTranscript); got != flags.Primary || tr != flags.Shadow {
		t.Fatalf("after undoing the kill switch: video-ready %v, transcript %v, want primary and shadow (the modes before)", got, tr)
	}
	apply("rollback")
	if got := mode(flags.ScopeVideoReady); got != flags.Legacy {
		t.Fatalf("after the rollback: %v, want legacy", got)
	}
	apply("flip")
	if got, tr := mode(flags.ScopeVideoReady), mode(flags.ScopeTranscript); got != flags.Shadow || tr != flags.Shadow {
		t.Fatalf("after the flip: video-ready %v, transcript %v, want shadow and shadow", got, tr)
	}
	b, _ := os.ReadFile(path)
	if want := "# app flags\nexport REALTIME_TRANSCRIPT_MODE=shadow\n" + killVar + "=false\n" + modeVar + "=shadow\n"; string(b) != want {
		t.Errorf("file %q, want %q", b, want)
	}
	if _, err := os.Stat(path + ".tmp"); !os.IsNotExist(err) {
		t.Errorf("the temporary file is left behind: %v", err)
	}
}

// TestClearFlagsEnv checks that what main runs first leaves none of the
// flags variables set.
func TestClearFlagsEnv(t *testing.T) {
	for _, k := range flags.EnvVariables() {
		t.Setenv(k, "true") // restored when the test ends
	}
	clearFlagsEnv()
	for _, k := range flags.EnvVariables() {
		if v, ok := os.LookupEnv(k); ok {
			t.Errorf("%s=%q still set", k, v)
		}
	}
}
