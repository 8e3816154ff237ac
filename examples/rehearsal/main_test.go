package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/coursebuilder/realtime-go/examples/internal/promtest"
	"github.com/coursebuilder/realtime-go/harness/inngestrt"
	"github.com/coursebuilder/realtime-go/harness/partykit"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if err := goleak.Find(inngestrt.LeakOptions()...); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// TestRehearsal runs the scripted rollback of docs/runbook.md against the
// real servers and a real Prometheus with the shortened rules: the page
// goes pending then firing for the refused key, the runbook's kill switch
// command brings the scope to PartyKit only and clears the page, the
// fault's removal gives all clear, and the runbook's undo brings the scope
// back in primary, delivered on Inngest. It checks that every step
// happened, in that order; the durations are only logged (the machine may
// be loaded).
func TestRehearsal(t *testing.T) {
	for what, err := range map[string]error{"prometheus": stat(promtest.Binary), "the PartyKit dev server": partykit.Available("")} {
		if err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s not installed in CI: %v", what, err)
			}
			t.Skipf("%s not installed: %v", what, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
	defer cancel()
	var out bytes.Buffer
	rep, err := run(ctx, config{Runbook: "../../docs/runbook.md", Rules: "../../monitoring/alerts.yml", Fault: faultKey, Out: &out})
	t.Logf("rehearsal:\n%s", out.String())
	if err != nil {
		t.Fatal(err)
	}
	// run returns nil only once every step of every phase was seen, in
	// the runbook's order: what is left to show is how long each took.
	for _, f := range Figures {
		t.Logf("%-44s %v", f.Label, f.Duration(rep).Round(100*time.Millisecond))
	}
}

func stat(path string) error {
	_, err := os.Stat(path)
	return err
}
