package flags

import (
	"context"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/open-feature/go-sdk/openfeature"
)

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestParseFlagsFile(t *testing.T) {
	got := parseFlagsFile([]byte("# c\n\nexport A=1\nB = two \nA=3\nC\n=x\nD=\"quoted\"\nE='single'\nF=\"half\n  G=a=b  \r\n"))
	want := map[string]string{"A": "3", "B": "two", "D": "quoted", "E": "single", "F": `"half`, "G": "a=b"}
	if !maps.Equal(got, want) {
		t.Errorf("parseFlagsFile = %v, want %v", got, want)
	}
}

// TestFileFlipSeenAfterPoll: an EnvProvider over a flags file notices a
// rewritten file at its next poll and emits a change event, so the next
// publish after that uses the new mode although the Evaluator had cached
// the old one (synctest's clock drives the poll).
func TestFileFlipSeenAfterPoll(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "realtime.flags")
		writeFile(t, path, "REALTIME_VIDEO_READY_MODE=shadow\n")
		p := NewEnvProvider(&EnvOptions{File: path})
		f := newFixture(t, newClient(t, p), Options{CacheTTL: time.Hour})
		synctest.Wait()
		ctx := context.Background()
		if got := f.ev.Mode(ctx, ScopeVideoReady, room); got != Shadow {
			t.Fatalf("Mode = %v, want shadow", got)
		}
		writeFile(t, path, "REALTIME_VIDEO_READY_MODE=primary\n") // same size: content, not size, is compared
		time.Sleep(defaultPollInterval)
		synctest.Wait()
		if got := f.ev.Mode(ctx, ScopeVideoReady, room); got != Primary {
			t.Errorf("after the poll: Mode = %v, want primary", got)
		}
		f.wantFallbacks(t, map[string]int64{})
	})
}

// TestFileKillSwitchActsOnNextPublish: REALTIME_KILL_SWITCH written to the
// flags file sends every scope back to legacy on the next publish once the
// provider has read it — at once with Refresh, else at the next poll.
func TestFileKillSwitchActsOnNextPublish(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "realtime.flags")
		writeFile(t, path, "REALTIME_DEFAULT_MODE=realtime\n")
		p := NewEnvProvider(&EnvOptions{File: path})
		f := newFixture(t, newClient(t, p), Options{CacheTTL: time.Hour})
		synctest.Wait()
		ctx := context.Background()
		for _, s := range Scopes {
			if got := f.ev.Mode(ctx, s, room); got != Realtime {
				t.Fatalf("%s: Mode = %v, want realtime", s, got)
			}
		}
		writeFile(t, path, "REALTIME_DEFAULT_MODE=realtime\nREALTIME_KILL_SWITCH=true\n")
		if err := p.Refresh(); err != nil {
			t.Fatalf("Refresh: %v", err)
		}
		synctest.Wait() // the SDK delivers the change event; no time passes
		for _, s := range Scopes {
			if got := f.ev.Mode(ctx, s, room); got != Legacy {
				t.Errorf("killed, %s: Mode = %v, want legacy", s, got)
			}
		}
		writeFile(t, path, "REALTIME_DEFAULT_MODE=realtime\nREALTIME_KILL_SWITCH=false\n")
		time.Sleep(defaultPollInterval) // the poll finds it this time
		synctest.Wait()
		if got := f.ev.Mode(ctx, ScopeAIStream, room); got != Realtime {
			t.Errorf("kill switch off: Mode = %v, want realtime", got)
		}
		f.wantFallbacks(t, map[string]int64{})
	})
}

// TestFileWinsOverEnvironment: a variable in the file beats the same one in
// the environment; one the file does not set comes from the environment.
func TestFileWinsOverEnvironment(t *testing.T) {
	path := filepath.Join(t.TempDir(), "realtime.flags")
	writeFile(t, path, "REALTIME_VIDEO_READY_MODE=primary\n")
	setenv(t, map[string]string{"REALTIME_VIDEO_READY_MODE": "shadow", "REALTIME_TRANSCRIPT_MODE": "realtime"})
	f := newFixture(t, newClient(t, NewEnvProvider(&EnvOptions{File: path, PollInterval: -1})), Options{})
	ctx := context.Background()
	if got := f.ev.Mode(ctx, ScopeVideoReady, room); got != Primary {
		t.Errorf("video-ready: Mode = %v, want primary (file)", got)
	}
	if got := f.ev.Mode(ctx, ScopeTranscript, room); got != Realtime {
		t.Errorf("transcript: Mode = %v, want realtime (environment)", got)
	}
}

// TestFileMissingSetsNothing: a missing flags file is no error; its
// variables are unset until it appears.
func TestFileMissingSetsNothing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "absent.flags")
	p := NewEnvProvider(&EnvOptions{File: path, PollInterval: -1})
	f := newFixture(t, newClient(t, p), Options{CacheTTL: -1})
	ctx := context.Background()
	if got := f.ev.Mode(ctx, ScopeVideoReady, room); got != Legacy {
		t.Errorf("Mode = %v, want legacy", got)
	}
	writeFile(t, path, "ENABLE_REALTIME_VIDEO_READY=true\n")
	if err := p.Refresh(); err != nil {
		t.Fatalf("Refresh: %v", err)
	}
	if got := f.ev.Mode(ctx, ScopeVideoReady, room); got != Shadow {
		t.Errorf("after the file appeared: Mode = %v, want shadow", got)
	}
	f.wantFallbacks(t, map[string]int64{})
}

// TestFileUnreadableAnswersLastKnown: a flags file that cannot be read makes
// every flag an error, which the Evaluator counts and answers with the last
// known mode; once readable again the file applies.
func TestFileUnreadableAnswersLastKnown(t *testing.T) {
	path := filepath.Join(t.TempDir(), "realtime.flags")
	writeFile(t, path, "REALTIME_VIDEO_READY_MODE=realtime\n")
	p := NewEnvProvider(&EnvOptions{File: path, PollInterval: -1})
	f := newFixture(t, newClient(t, p), Options{CacheTTL: -1})
	ctx := context.Background()
	if got := f.ev.Mode(ctx, ScopeVideoReady, room); got != Realtime {
		t.Fatalf("Mode = %v, want realtime", got)
	}
	// A directory in the file's place: open succeeds, reading fails.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(path, 0o700); err != nil {
		t.Fatal(err)
	}
	err := p.Refresh()
	if err == nil || !strings.HasPrefix(err.Error(), "flags: ") {
		t.Fatalf("Refresh = %v, want a flags: read error", err)
	}
	if got := f.ev.Mode(ctx, ScopeVideoReady, room); got != Realtime {
		t.Errorf("unreadable: Mode = %v, want realtime (last known)", got)
	}
	f.wantAnswers(t, map[string]int64{"video-ready/provider_error/" + answerLastKnown: 1})
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, "REALTIME_VIDEO_READY_MODE=legacy\n")
	if err := p.Refresh(); err != nil {
		t.Fatalf("Refresh: %v", err)
	}
	if got := f.ev.Mode(ctx, ScopeVideoReady, room); got != Legacy {
		t.Errorf("readable again: Mode = %v, want legacy", got)
	}
}

// TestFileRefreshEmitsOnChangeOnly: Refresh emits one event per change and
// none for an unchanged file; a provider without a file never emits.
func TestFileRefreshEmitsOnChangeOnly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "realtime.flags")
	writeFile(t, path, "A=1\n")
	p := NewEnvProvider(&EnvOptions{File: path, PollInterval: -1})
	if n := len(p.events); n != 0 {
		t.Fatalf("%d events after the first read, want 0", n)
	}
	if err := p.Refresh(); err != nil || len(p.events) != 0 {
		t.Fatalf("unchanged: Refresh = %v, %d events; want nil, 0", err, len(p.events))
	}
	writeFile(t, path, "A=2\n")
	if err := p.Refresh(); err != nil || len(p.events) != 1 {
		t.Fatalf("changed: Refresh = %v, %d events; want nil, 1", err, len(p.events))
	}
	plain := NewEnvProvider(nil)
	if err := plain.Refresh(); err != nil || len(plain.events) != 0 {
		t.Errorf("no file: Refresh = %v, %d events", err, len(plain.events))
	}
}

// TestFileWatcherLifecycle: Init starts the watcher, Shutdown stops it (and
// is safe twice), a later Init starts it again; goleak in TestMain checks
// nothing is left running.
func TestFileWatcherLifecycle(t *testing.T) {
	path := filepath.Join(t.TempDir(), "realtime.flags")
	p := NewEnvProvider(&EnvOptions{File: path, PollInterval: time.Millisecond})
	for range 2 {
		if err := p.Init(openfeature.EvaluationContext{}); err != nil {
			t.Fatal(err)
		}
		if err := p.Init(openfeature.EvaluationContext{}); err != nil { // a second Init does not start a second watcher
			t.Fatal(err)
		}
		p.Shutdown()
		p.Shutdown()
	}
	if p.stop != nil {
		t.Error("watcher still registered after Shutdown")
	}
	if err := NewEnvProvider(nil).Init(openfeature.EvaluationContext{}); err != nil {
		t.Error(errors.Join(errors.New("no file: Init"), err))
	}
}

// FuzzParseFlagsFile checks the flags file parser never panics, and that
// every key it yields is trimmed, non-empty and free of '=' and line breaks.
func FuzzParseFlagsFile(f *testing.F) {
	f.Add([]byte("# c\nexport A=1\nB = \"two\"\n"))
	f.Add([]byte("=\n\r\n'x'='y'\nexport \n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		for k := range parseFlagsFile(raw) {
			if k == "" || k != strings.TrimSpace(k) || strings.ContainsAny(k, "=\n\r") {
				t.Errorf("key %q", k)
			}
		}
	})
}
