package legacyparty_test

import (
	"context"
	"net/url"
	"testing"

	"github.com/coursebuilder/realtime-go/legacyparty"
	"github.com/coursebuilder/realtime-go/realtime"
	"github.com/coursebuilder/realtime-go/realtime/realtimetest"
)

// escapeRoom spells room as partysocket's URL does, for the rooms the
// conformance suite uses (letters, digits and "-").
func escapeRoom(room string) string { return url.PathEscape(room) }

// newProvider returns a provider for baseURL that is closed when the test ends.
func newProvider(t testing.TB, opts *legacyparty.Options) *legacyparty.Provider {
	t.Helper()
	p, err := legacyparty.New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

func TestConformance(t *testing.T) {
	realtimetest.Run(t, func(t *testing.T) realtimetest.Target {
		party := newFakeParty(t)
		return realtimetest.Target{
			// The suite checks realtime.MaxEnvelopeBytes; PartyKit's own
			// limit is checked by TestPublishSizeLimit.
			Provider: newProvider(t, &legacyparty.Options{BaseURL: party.srv.URL, MaxEnvelopeBytes: realtime.MaxEnvelopeBytes}),
			Subscribe: func(_ context.Context, room string, _ []string) (realtimetest.Subscription, error) {
				// A PartyKit room carries every event name.
				return party.subscribe(room), nil
			},
			Stalled: func(t *testing.T) realtime.Provider {
				return newProvider(t, &legacyparty.Options{BaseURL: stalledServer(t).URL, MaxEnvelopeBytes: realtime.MaxEnvelopeBytes})
			},
			// The failure paths, over a fault server.
			Faulty: func(t *testing.T, f realtimetest.Fault) realtimetest.FaultyTarget {
				fs := realtimetest.NewFaultServer(t, f)
				return fs.Target(newProvider(t, &legacyparty.Options{BaseURL: fs.URL, Retry: &f.Retry, AttemptTimeout: f.AttemptTimeout}))
			},
			Transport: "partykit",
		}
	})
}
