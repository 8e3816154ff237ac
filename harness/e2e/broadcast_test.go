package e2e_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"sync/atomic"
	"testing"

	"go.uber.org/zap/zaptest"

	"github.com/coursebuilder/realtime-go/broadcast"
	"github.com/coursebuilder/realtime-go/flags"
	"github.com/coursebuilder/realtime-go/legacyparty"
	"github.com/coursebuilder/realtime-go/realtime"
	"github.com/coursebuilder/realtime-go/realtime/inngest"
)

// Broadcast end to end: both real servers, a browser-like subscriber on
// each transport.

// newBroadcast returns a Broadcast logging to t, closed (background
// deliveries awaited) when t ends.
func newBroadcast(t testing.TB, legacy, rt realtime.Provider, opts broadcast.Options) *broadcast.Broadcast {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = zaptest.NewLogger(t)
	}
	b, err := broadcast.New(legacy, rt, &opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeBroadcast(t, b) })
	return b
}

// closeBroadcast waits for the deliveries that outlived their publish.
func closeBroadcast(t testing.TB, b *broadcast.Broadcast) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := b.Close(ctx); err != nil {
		t.Errorf("Broadcast.Close: %v", err)
	}
}

// sameMessage fails t unless the payloads a PartyKit and an Inngest
// subscriber received decode to the same message, with the same id, seq
// and epoch, as a UI reading either transport relies on.
func sameMessage(t testing.TB, fromParty, fromInngest []byte) {
	t.Helper()
	a, errA := realtime.DecodeEnvelope(fromParty)
	b, errB := realtime.DecodeEnvelope(fromInngest)
	if errA != nil || errB != nil {
		t.Fatalf("decode: %v, %v", errA, errB)
	}
	var bodyA, bodyB any
	if err := json.Unmarshal(a.Body.(json.RawMessage), &bodyA); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b.Body.(json.RawMessage), &bodyB); err != nil {
		t.Fatal(err)
	}
	if a.Name != b.Name || a.RequestID != b.RequestID || !reflect.DeepEqual(bodyA, bodyB) ||
		a.ID != b.ID || a.Seq != b.Seq || a.Epoch != b.Epoch {
		t.Fatalf("the transports delivered different messages:\n partykit: %s\n  inngest: %s", fromParty, fromInngest)
	}
}

func TestBroadcastModes(t *testing.T) {
	party := sharedParty(t)
	irt, key := sharedInngest(t)
	for _, c := range []struct {
		mode               flags.Mode
		toParty, toInngest bool
	}{
		{flags.Legacy, true, false},
		{flags.Shadow, true, true},
		{flags.Primary, true, true},
		{flags.Realtime, false, true},
	} {
		t.Run(c.mode.String(), func(t *testing.T) {
			logs.attach(t)
			b := newBroadcast(t,
				newParty(t, legacyparty.Options{BaseURL: party.URL()}),
				newInngest(t, inngest.Options{BaseURL: irt.URL(), SigningKey: key}),
				broadcast.Options{Resolver: flags.Fixed(c.mode)})
			r := room("broadcast-" + c.mode.String())
			partySub := mustSubscribeParty(t, party, r)
			inngestSub := mustSubscribeInngest(t, irt, r, topic)

			msg := readyMsg(r)
			if err := b.Publish(ctxT(t), msg); err != nil {
				t.Fatalf("Publish in %s mode: %v", c.mode, err)
			}
			env := sent(t, b, msg)
			var fromParty, fromInngest []byte
			if c.toParty {
				expectDelivered(t, "partykit subscriber", partySub, partySpelling(env))
				fromParty = partySpelling(env)
			}
			if c.toInngest {
				expectDelivered(t, "inngest subscriber", inngestSub, env)
				fromInngest = env
			}
			if fromParty != nil && fromInngest != nil {
				sameMessage(t, fromParty, fromInngest)
			}
			// The transport the mode leaves out received nothing, and the
			// others nothing more.
			expectQuiet(t, map[string]subscriber{"partykit subscriber": partySub, "inngest subscriber": inngestSub})
		})
	}
}

// An outage of the transport whose outcome does not count in the mode never
// fails a publish; an outage of the one that counts is returned, and the
// other transport still delivers.
func TestBroadcastOutages(t *testing.T) {
	party := sharedParty(t)
	irt, key := sharedInngest(t)
	// An Inngest endpoint that answers 503 to every publish (subscriptions
	// work).
	failing := newEndpoint(t, answer(http.StatusServiceUnavailable, "maintenance"))
	const attempts = 2

	for _, c := range []struct {
		name      string
		mode      flags.Mode
		fallback  bool
		partyDown bool   // PartyKit down; otherwise Inngest answers 503
		wantErr   string // the transport whose error Publish returns, "" for none
		toParty   bool
		toInngest bool
	}{
		{"legacy/PartyKitDown", flags.Legacy, false, true, broadcast.TransportPartyKit, false, false},
		{"shadow/PartyKitDown", flags.Shadow, false, true, broadcast.TransportPartyKit, false, true},
		{"primary/PartyKitDown", flags.Primary, false, true, "", false, true},
		{"realtime/PartyKitDown", flags.Realtime, false, true, "", false, true},
		{"legacy/Inngest503", flags.Legacy, false, false, "", true, false},
		{"shadow/Inngest503", flags.Shadow, false, false, "", true, false},
		{"primary/Inngest503", flags.Primary, false, false, broadcast.TransportInngest, true, false},
		{"realtime/Inngest503", flags.Realtime, false, false, broadcast.TransportInngest, false, false},
		{"realtime-with-fallback/Inngest503", flags.Realtime, true, false, "", true, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			logs.attach(t)
			r := room("outage")
			legacyURL, rtURL, rtKey, rtServer := party.URL(), failing.URL(), failing.Key, failing.Server
			if c.partyDown {
				legacyURL, rtURL, rtKey, rtServer = downURL(t), irt.URL(), key, irt
			}
			b := newBroadcast(t,
				newParty(t, legacyparty.Options{BaseURL: legacyURL, Retry: fastRetry(attempts)}),
				newInngest(t, inngest.Options{BaseURL: rtURL, SigningKey: rtKey, Retry: fastRetry(attempts)}),
				// A roomy shadow timeout: the background publish to the
				// transport that does not count must run all its attempts
				// even on a loaded machine, so that they can be counted.
				broadcast.Options{Resolver: flags.Fixed(c.mode), FallbackToLegacy: c.fallback, ShadowTimeout: wait})
			partySub := mustSubscribeParty(t, party, r)
			inngestSub := mustSubscribeInngest(t, rtServer, r, topic)

			msg := readyMsg(r)
			err := b.Publish(ctxT(t), msg)
			switch {
			case c.wantErr == "" && err != nil:
				t.Fatalf("Publish: %v, want success", err)
			case c.wantErr != "":
				var te *broadcast.TransportError
				if !errors.As(err, &te) || te.Mode != c.mode || !errors.Is(err, realtime.ErrUnavailable) {
					t.Fatalf("Publish: %v, want a %s-mode *broadcast.TransportError matching ErrUnavailable", err, c.mode)
				}
				// Only the transport that counts fails the call.
				if got := failedTransports(err); !slices.Equal(got, []string{c.wantErr}) {
					t.Fatalf("Publish failed for %v, want %s only: %v", got, c.wantErr, err)
				}
			}
			env := sent(t, b, msg)
			closeBroadcast(t, b) // let the transport that does not count finish

			if c.toParty {
				expectDelivered(t, "partykit subscriber", partySub, partySpelling(env))
			}
			if c.toInngest {
				expectDelivered(t, "inngest subscriber", inngestSub, env)
			}
			expectQuiet(t, map[string]subscriber{"partykit subscriber": partySub, "inngest subscriber": inngestSub})

			if !c.partyDown {
				want := attempts
				if c.mode == flags.Legacy {
					want = 0
				}
				if n := len(failing.Publishes(r)); n != want {
					t.Errorf("%d publish requests reached the failing Inngest endpoint, want %d", n, want)
				}
			}
		})
	}
}

// failedTransports lists the transports of the *broadcast.TransportErrors
// joined in err.
func failedTransports(err error) []string {
	var out []string
	var walk func(error)
	walk = func(e error) {
		if te, ok := e.(*broadcast.TransportError); ok {
			out = append(out, te.Transport)
			return
		}
		switch u := e.(type) {
		case interface{ Unwrap() []error }:
			for _, x := range u.Unwrap() {
				walk(x)
			}
		case interface{ Unwrap() error }:
			if x := u.Unwrap(); x != nil {
				walk(x)
			}
		}
	}
	if err != nil {
		walk(err)
	}
	return out
}

// switchable is a flags.Resolver whose mode can be flipped at run time, like
// a feature flag.
type switchable struct{ m atomic.Uint32 }

func (s *switchable) Mode(context.Context, flags.Scope, string) flags.Mode {
	return flags.Mode(s.m.Load())
}
func (s *switchable) set(m flags.Mode) { s.m.Store(uint32(m)) }

func TestBroadcastFlagFlipTakesEffectOnTheNextPublish(t *testing.T) {
	party := sharedParty(t)
	irt, key := sharedInngest(t)
	flag := &switchable{}
	b := newBroadcast(t,
		newParty(t, legacyparty.Options{BaseURL: party.URL()}),
		newInngest(t, inngest.Options{BaseURL: irt.URL(), SigningKey: key}),
		broadcast.Options{Resolver: flag})
	r := room("flip")
	partySub := mustSubscribeParty(t, party, r)
	inngestSub := mustSubscribeInngest(t, irt, r, topic)

	// Each step publishes a distinct message; a subscriber that received a
	// message meant for the other transport would see it instead of the one
	// it waits for.
	for i, step := range []struct {
		mode    flags.Mode
		toParty bool // else to Inngest
	}{
		{flags.Legacy, true},
		{flags.Realtime, false},
		{flags.Legacy, true}, // rolled back
	} {
		flag.set(step.mode)
		msg := readyMsg(r)
		msg.RequestID = fmt.Sprintf("publish-%d-%s", i+1, step.mode)
		if got := b.Route(ctxT(t), msg.Room, msg.Name).Mode; got != step.mode {
			t.Fatalf("publish %d: Route().Mode = %s after the flag was set to %s", i+1, got, step.mode)
		}
		if err := b.Publish(ctxT(t), msg); err != nil {
			t.Fatalf("publish %d in %s mode: %v", i+1, step.mode, err)
		}
		env := sent(t, b, msg)
		// The room's seq rises by one per message, whatever the transport.
		if m, err := realtime.DecodeEnvelope(env); err != nil || m.Seq != uint64(i+1) {
			t.Fatalf("publish %d: seq %d (%v), want %d", i+1, m.Seq, err, i+1)
		}
		if step.toParty {
			expectDelivered(t, fmt.Sprintf("publish %d: partykit subscriber", i+1), partySub, partySpelling(env))
		} else {
			expectDelivered(t, fmt.Sprintf("publish %d: inngest subscriber", i+1), inngestSub, env)
		}
	}
	expectQuiet(t, map[string]subscriber{"partykit subscriber": partySub, "inngest subscriber": inngestSub})
}
