package e2e_test

import (
	"context"
	"testing"

	"github.com/coursebuilder/realtime-go/internal/transport"
	"github.com/coursebuilder/realtime-go/legacyparty"
	"github.com/coursebuilder/realtime-go/realtime"
	"github.com/coursebuilder/realtime-go/realtime/inngest"
	"github.com/coursebuilder/realtime-go/realtime/realtimetest"
)

// TestInngestConformance runs the provider conformance suite against the
// real Inngest realtime API: what a browser subscribed to the room's channel
// and topics receives is exactly the envelope, byte for byte.
func TestInngestConformance(t *testing.T) {
	realtimetest.Run(t, func(t *testing.T) realtimetest.Target {
		s, key := sharedInngest(t)
		return realtimetest.Target{
			// Default retry policy and attempt timeout: what users get.
			Provider: newInngest(t, inngest.Options{BaseURL: s.URL(), SigningKey: key}),
			Subscribe: func(ctx context.Context, room string, names []string) (realtimetest.Subscription, error) {
				sub, err := subscribeInngest(ctx, s, room, names...)
				if err != nil {
					return nil, err // not a typed nil in the interface
				}
				return sub, nil
			},
			Stalled: func(t *testing.T) realtime.Provider {
				return newInngest(t, inngest.Options{BaseURL: stalledURL(t), SigningKey: key})
			},
			// Inngest relays the envelope's bytes as they are.
			Respell: nil,
			// The failure paths, with a fault proxy in front of the real
			// server: a request whose answer is lost reaches it first.
			Faulty: func(t *testing.T, f realtimetest.Fault) realtimetest.FaultyTarget {
				fs := realtimetest.NewFaultProxy(t, f, s.URL())
				return fs.Target(newInngest(t, inngest.Options{BaseURL: fs.URL, SigningKey: key, Retry: &f.Retry, AttemptTimeout: f.AttemptTimeout}))
			},
			Transport: "inngest",
			Secrets:   []string{key, hashedKey(t, key)},
		}
	})
}

// TestPartyKitConformance runs the suite against the real PartyKit dev
// server serving course-builder's party: a websocket on the room receives
// the envelope as JSON.stringify spells it.
func TestPartyKitConformance(t *testing.T) {
	realtimetest.Run(t, func(t *testing.T) realtimetest.Target {
		s := sharedParty(t)
		return realtimetest.Target{
			// The suite's size guard checks realtime.MaxEnvelopeBytes;
			// PartyKit's own 512 MiB limit is lowered to it here
			// (TestPartyKitLimit600KiB covers the real one).
			Provider: newParty(t, legacyparty.Options{BaseURL: s.URL(), MaxEnvelopeBytes: realtime.MaxEnvelopeBytes}),
			// A room carries every event name.
			Subscribe: func(ctx context.Context, room string, _ []string) (realtimetest.Subscription, error) {
				sub, err := subscribeParty(ctx, s, room)
				if err != nil {
					return nil, err
				}
				return sub, nil
			},
			Stalled: func(t *testing.T) realtime.Provider {
				return newParty(t, legacyparty.Options{BaseURL: stalledURL(t), MaxEnvelopeBytes: realtime.MaxEnvelopeBytes})
			},
			// The party relays JSON.stringify(await req.json()).
			Respell: partySpelling,
			// The failure paths, with a fault proxy in front of partykit dev.
			Faulty: func(t *testing.T, f realtimetest.Fault) realtimetest.FaultyTarget {
				fs := realtimetest.NewFaultProxy(t, f, s.URL())
				return fs.Target(newParty(t, legacyparty.Options{BaseURL: fs.URL, Retry: &f.Retry, AttemptTimeout: f.AttemptTimeout}))
			},
			Transport: "partykit",
		}
	})
}

// hashedKey is key as it is sent, or fails t.
func hashedKey(t testing.TB, key string) string {
	t.Helper()
	h, err := transport.HashSigningKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return h
}
