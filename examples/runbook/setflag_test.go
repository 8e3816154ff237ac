package runbook_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/open-feature/go-sdk/openfeature/isolated"

	"github.com/coursebuilder/realtime-go/flags"
)

// TestRunbookSetflag runs the setflag function of docs/runbook.md, as
// written there but for the file's path, with the commands the runbook
// gives for a rollback and its undo, against a flags file an EnvProvider
// reads: the kill switch sends every scope to legacy and its undo gives
// each scope back the mode it had.
func TestRunbookSetflag(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	b, err := os.ReadFile(filepath.Join(root, "docs", "runbook.md"))
	if err != nil {
		t.Fatal(err)
	}
	def := regexp.MustCompile(`(?m)^setflag\(\) \{ f='([^']*)';.*$`).FindStringSubmatch(string(b))
	if def == nil {
		t.Fatal("docs/runbook.md defines no setflag function")
	}
	for _, cmd := range []string{"setflag REALTIME_KILL_SWITCH true", "setflag REALTIME_KILL_SWITCH false", "setflag REALTIME_<SCOPE>_MODE legacy"} {
		if !strings.Contains(string(b), "`"+cmd+"`") {
			t.Errorf("docs/runbook.md does not give the command %q", cmd)
		}
	}
	path := filepath.Join(t.TempDir(), "app.flags")
	define := strings.Replace(def[0], "f='"+def[1]+"'", "f='"+path+"'", 1)
	if err := os.WriteFile(path, []byte("# the app's flags\nREALTIME_VIDEO_READY_MODE=primary\nexport REALTIME_TRANSCRIPT_MODE=shadow\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	ctx := context.Background()
	p := flags.NewEnvProvider(&flags.EnvOptions{File: path, PollInterval: -1})
	api := isolated.NewAPI()
	defer func() { _ = api.Shutdown(ctx) }()
	if err := api.SetProviderAndWait(ctx, p); err != nil {
		t.Fatal(err)
	}
	ev := flags.NewEvaluator(api.NewClient(), &flags.Options{CacheTTL: -1})
	defer ev.Close()
	setflag := func(args string) {
		t.Helper()
		if out, err := exec.Command(sh, "-c", define+"\nsetflag "+args).CombinedOutput(); err != nil {
			t.Fatalf("setflag %s: %v\n%s", args, err, out)
		}
		if err := p.Refresh(); err != nil {
			t.Fatal(err)
		}
	}
	modes := func() [2]flags.Mode {
		return [2]flags.Mode{ev.Mode(ctx, flags.ScopeVideoReady, "r"), ev.Mode(ctx, flags.ScopeTranscript, "r")}
	}
	if got := modes(); got != [2]flags.Mode{flags.Primary, flags.Shadow} {
		t.Fatalf("before: %v", got)
	}
	setflag("REALTIME_KILL_SWITCH true")
	if got := modes(); got != [2]flags.Mode{flags.Legacy, flags.Legacy} {
		t.Fatalf("kill switch: %v, want legacy, legacy", got)
	}
	setflag("REALTIME_KILL_SWITCH false")
	if got := modes(); got != [2]flags.Mode{flags.Primary, flags.Shadow} {
		t.Fatalf("undo: %v, want primary, shadow (the modes before)", got)
	}
	setflag("REALTIME_VIDEO_READY_MODE legacy")
	if got := modes(); got != [2]flags.Mode{flags.Legacy, flags.Shadow} {
		t.Fatalf("one scope rolled back: %v, want legacy, shadow", got)
	}
}
