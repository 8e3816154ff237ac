package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/open-feature/go-sdk/openfeature/isolated"

	"github.com/coursebuilder/realtime-go/broadcast"
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

// TestScriptLinesReadByFlagsFile checks that what -script writes is read
// by the flags package's file-backed provider as the mode it names.
func TestScriptLinesReadByFlagsFile(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "f")
	if err := writeFlags(path, "# c\n"); err != nil {
		t.Fatal(err)
	}
	p := flags.NewEnvProvider(&flags.EnvOptions{File: path, PollInterval: -1})
	api := isolated.NewAPI()
	defer func() { _ = api.Shutdown(ctx) }()
	if err := api.SetProviderAndWait(ctx, p); err != nil {
		t.Fatal(err)
	}
	ev := flags.NewEvaluator(api.NewClient(), &flags.Options{CacheTTL: -1, Timeout: time.Hour})
	defer ev.Close()
	for entry, want := range map[string]flags.Mode{"shadow": flags.Shadow, "Primary": flags.Primary, "inngest": flags.Realtime, "kill": flags.Legacy} {
		line, err := scriptLine(entry)
		if err != nil {
			t.Fatal(err)
		}
		if err := writeFlags(path, modeVar+"=realtime\n"+line); err != nil {
			t.Fatal(err)
		}
		if err := p.Refresh(); err != nil {
			t.Fatal(err)
		}
		if got := ev.Mode(ctx, flags.ScopeOf(eventName), room); got != want {
			t.Errorf("%s: Mode = %v, want %v", entry, got, want)
		}
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
