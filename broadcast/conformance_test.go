package broadcast_test

import (
	"testing"

	"github.com/coursebuilder/realtime-go/broadcast"
	"github.com/coursebuilder/realtime-go/flags"
	"github.com/coursebuilder/realtime-go/internal/transport"
	"github.com/coursebuilder/realtime-go/legacyparty"
	"github.com/coursebuilder/realtime-go/realtime"
	"github.com/coursebuilder/realtime-go/realtime/inngest"
	"github.com/coursebuilder/realtime-go/realtime/realtimetest"
)

// Keys of the Inngest transport under broadcast; the hex part decodes.
const (
	conformanceKey    = "signkey-test-0123456789abcdef0123456789abcdef"
	conformanceSecret = "a broadcast conformance channel secret, 32+ bytes"
)

// faultyTransport returns the real HTTP provider of the transport that
// counts in a mode (PartyKit in legacy and shadow, Inngest in primary and
// realtime) configured for f and pointed at fs.
func faultyTransport(t *testing.T, name string, fs *realtimetest.FaultServer, f realtimetest.Fault) realtime.Provider {
	t.Helper()
	if name == broadcast.TransportPartyKit {
		p, err := legacyparty.New(&legacyparty.Options{BaseURL: fs.URL, Retry: &f.Retry, AttemptTimeout: f.AttemptTimeout})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = p.Close() })
		return p
	}
	// Every other option is set: only these two could come from the
	// environment.
	t.Setenv("INNGEST_SIGNING_KEY_FALLBACK", "")
	t.Setenv("INNGEST_ENV", "")
	p, err := inngest.New(&inngest.Options{
		BaseURL: fs.URL, SigningKey: conformanceKey, ChannelSecret: conformanceSecret,
		Retry: &f.Retry, AttemptTimeout: f.AttemptTimeout,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// TestConformance runs the conformance suite on a Broadcast in every mode:
// deliveries through the transport that counts, and each failure path of
// that transport, which must come out of Broadcast with its class, its
// PublishError and its request count intact through the TransportError.
// The failing transport is the real HTTP provider over a fault server, or
// the in-memory fake emulating the fault; the other transport is healthy.
func TestConformance(t *testing.T) {
	hashed, err := transport.HashSigningKey(conformanceKey)
	if err != nil {
		t.Fatal(err)
	}
	for _, mode := range allModes {
		counted := broadcast.TransportPartyKit
		if mode.RealtimeCounts() {
			counted = broadcast.TransportInngest
		}
		// pair puts p where it counts in mode and a Recorder on the other side.
		pair := func(p realtime.Provider) (legacy, rt realtime.Provider) {
			if counted == broadcast.TransportInngest {
				return realtimetest.NewRecorder(), p
			}
			return p, realtimetest.NewRecorder()
		}
		over := func(t *testing.T, p realtime.Provider) realtime.Provider {
			legacy, rt := pair(p)
			return newBroadcast(t, legacy, rt, broadcast.Options{Resolver: flags.Fixed(mode)})
		}
		for _, via := range []string{"http", "fake"} {
			t.Run(mode.String()+"/"+via, func(t *testing.T) {
				realtimetest.Run(t, func(t *testing.T) realtimetest.Target {
					rec := realtimetest.NewRecorder()
					return realtimetest.Target{
						Provider:  over(t, rec),
						Subscribe: rec.Subscribe,
						// The Broadcast's replay log numbers each room's messages.
						Numbered: true,
						Stalled: func(t *testing.T) realtime.Provider {
							return over(t, realtimetest.NewFaulty(realtimetest.Hang()))
						},
						Faulty: func(t *testing.T, f realtimetest.Fault) realtimetest.FaultyTarget {
							if via == "fake" {
								out, requests := realtimetest.EmulateFault(counted, f)
								return realtimetest.FaultyTarget{Provider: over(t, realtimetest.NewFaulty(out)), Requests: requests}
							}
							fs := realtimetest.NewFaultServer(t, f)
							return fs.Target(over(t, faultyTransport(t, counted, fs, f)))
						},
						Transport: counted,
						Secrets:   []string{conformanceKey, hashed},
					}
				})
			})
		}
	}
}
