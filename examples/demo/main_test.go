package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"

	"github.com/coursebuilder/realtime-go/harness/partykit"
)

// TestDemo runs the README's first command in every mode and checks that
// each notification reached exactly the transports of the mode.
func TestDemo(t *testing.T) {
	withParty := partykit.Available("") == nil
	if !withParty && os.Getenv("CI") != "" {
		t.Fatal("PartyKit dev server not installed in CI: npm ci --prefix harness/partykit/server")
	}
	for _, mode := range []string{"legacy", "shadow", "primary", "realtime"} {
		t.Run(mode, func(t *testing.T) {
			if !withParty && mode != "realtime" {
				t.Skip("PartyKit dev server not installed")
			}
			var out bytes.Buffer
			if err := run(context.Background(), &out, mode, withParty); err != nil {
				t.Fatalf("%v\n%s", err, out.String())
			}
			got := out.String()
			for _, name := range []string{"videoResource.created", "video.asset.ready", "transcript.ready", "video.asset.errored"} {
				for _, tr := range []string{"partykit", "inngest"} {
					line := name + " " + strings.Repeat(" ", 22-len(name)) + tr
					want := (tr == "partykit" && mode != "realtime") || (tr == "inngest" && mode != "legacy")
					if strings.Contains(got, line) != want {
						t.Errorf("%s on %s: delivered=%v, want %v\n%s", name, tr, !want, want, got)
					}
				}
			}
			if strings.Contains(got, "DIFFERS") || strings.Contains(got, "NOT RECEIVED") {
				t.Errorf("a payload differed or was lost:\n%s", got)
			}
		})
	}
}

// TestDemoRefusesABadModeBeforeStartingServers: a mistyped -mode fails at
// once, naming the modes, without starting either server first.
func TestDemoRefusesABadModeBeforeStartingServers(t *testing.T) {
	var out bytes.Buffer
	err := run(context.Background(), &out, "bogus", true)
	if err == nil || !strings.Contains(err.Error(), "unknown mode") {
		t.Fatalf("run(-mode bogus) = %v, want an unknown-mode error", err)
	}
	if out.Len() != 0 {
		t.Errorf("the demo printed before refusing the flag (a server was started):\n%s", out.String())
	}
}
