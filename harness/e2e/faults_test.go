package e2e_test

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/coursebuilder/realtime-go/broadcast"
	"github.com/coursebuilder/realtime-go/flags"
	"github.com/coursebuilder/realtime-go/legacyparty"
	"github.com/coursebuilder/realtime-go/realtime"
	"github.com/coursebuilder/realtime-go/realtime/inngest"
)

// resetAfterReading is a fault that reads the whole publish and then resets
// the connection: the client cannot know whether it was delivered.
func resetAfterReading(_ int, w http.ResponseWriter, r *http.Request) bool {
	_, _ = io.Copy(io.Discard, r.Body)
	resetConnection(w)
	return true
}

// resetConnection takes over the connection of w and resets it (RST, not
// FIN), so that the client gets no answer at all.
func resetConnection(w http.ResponseWriter) {
	c, _, err := w.(http.Hijacker).Hijack()
	if err != nil {
		panic(err)
	}
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
}

// truncated503 is a fault that answers 503 announcing a longer body than it
// sends, then closes the connection.
func truncated503(_ int, w http.ResponseWriter, r *http.Request) bool {
	_, _ = io.Copy(io.Discard, r.Body)
	c, buf, err := w.(http.Hijacker).Hijack()
	if err != nil {
		panic(err)
	}
	_, _ = buf.WriteString("HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\nmainten")
	_ = buf.Flush()
	_ = c.Close()
	return true
}

// tooManyRequests is a fault that answers 429 asking to retry in a second.
func tooManyRequests(_ int, w http.ResponseWriter, _ *http.Request) bool {
	w.Header().Set("Retry-After", "1")
	http.Error(w, "slow down", http.StatusTooManyRequests)
	return true
}

// Each fault of the Inngest side, in shadow mode and in primary mode: the
// publish fails only where Inngest counts (primary), and then with the
// fault's class of error; PartyKit receives every message in order whatever
// Inngest does; Inngest delivers each message it accepted exactly once, and
// a request that may have been delivered is never sent again.
func TestInngestFaultsLoseNothingOnPartyKit(t *testing.T) {
	party := sharedParty(t)
	for _, c := range []struct {
		name    string
		fault   fault // on every publish request, or firstN(1, …) on the first
		every   bool  // the fault meets every publish, else only the first
		dns     bool  // the Inngest host does not resolve (fault is nil)
		wantErr error // what a publish that meets the fault returns in primary mode
		notErr  error // what it must not match
		attempt time.Duration
	}{
		{name: "reset-after-reading", fault: resetAfterReading, every: true, wantErr: realtime.ErrMaybeDelivered},
		{name: "accepts-and-never-answers", fault: hang, every: true, wantErr: realtime.ErrMaybeDelivered, attempt: 300 * time.Millisecond},
		{name: "truncated-503-then-ok", fault: firstN(1, truncated503)},
		{name: "429-retry-after-then-ok", fault: firstN(1, tooManyRequests)},
		{name: "dns-failure", dns: true, every: true, wantErr: realtime.ErrUnavailable, notErr: realtime.ErrMaybeDelivered},
	} {
		for _, mode := range []flags.Mode{flags.Shadow, flags.Primary} {
			t.Run(c.name+"/"+mode.String(), func(t *testing.T) {
				logs.attach(t)
				ep := newEndpoint(t, c.fault)
				base := ep.URL()
				if c.dns {
					base = "http://inngest.invalid" // RFC 2606: never resolves
				}
				b := newBroadcast(t,
					newParty(t, legacyparty.Options{BaseURL: party.URL()}),
					newInngest(t, inngest.Options{BaseURL: base, SigningKey: ep.Key, AttemptTimeout: c.attempt,
						Retry: &realtime.RetryPolicy{Attempts: 2, MaxDelay: 2 * time.Second}}),
					broadcast.Options{Resolver: flags.Fixed(mode), ShadowTimeout: wait})
				r := room("fault")
				partySub := mustSubscribeParty(t, party, r)
				inngestSub := mustSubscribeInngest(t, ep.Server, r, topic)

				const n = 3
				var msgs []realtime.Message
				for i := range n {
					msg := readyMsg(r)
					msg.RequestID = fmt.Sprintf("%s-%d", c.name, i)
					msgs = append(msgs, msg)
					err := b.Publish(ctxT(t), msg)
					if mode == flags.Shadow || !c.every {
						// Inngest does not count, or its retry recovers.
						if err != nil {
							t.Fatalf("publish %d: %v, want success", i, err)
						}
						continue
					}
					var te *broadcast.TransportError
					if !errors.Is(err, c.wantErr) || (c.notErr != nil && errors.Is(err, c.notErr)) ||
						!errors.As(err, &te) || te.Transport != broadcast.TransportInngest {
						t.Fatalf("publish %d: %v, want an Inngest *broadcast.TransportError matching %v (and not %v)", i, err, c.wantErr, c.notErr)
					}
				}
				// What was sent: each message numbered in publish order.
				var envs [][]byte
				for i, msg := range msgs {
					env := sent(t, b, msg)
					if m, err := realtime.DecodeEnvelope(env); err != nil || m.Seq != uint64(i+1) {
						t.Fatalf("message %d: seq %d (%v), want %d", i, m.Seq, err, i+1)
					}
					envs = append(envs, env)
				}
				closeBroadcast(t, b) // the Inngest legs that outlived their budget end

				for i, env := range envs {
					expectDelivered(t, fmt.Sprintf("message %d: partykit subscriber", i), partySub, partySpelling(env))
				}
				if !c.every {
					// A retried publish may overtake none, or all, of the
					// others: each arrives once, in any order.
					want := map[string]bool{}
					for _, env := range envs {
						want[string(env)] = true
					}
					for range msgs {
						got, err := inngestSub.Next(ctxT(t))
						if err != nil || !want[string(got)] {
							t.Fatalf("inngest subscriber: got %s (%v), want one of the %d messages not yet received", got, err, len(want))
						}
						delete(want, string(got))
					}
				}
				expectQuiet(t, map[string]subscriber{"partykit subscriber": partySub, "inngest subscriber": inngestSub})

				wantRequests := n + 1 // the first is retried once
				switch {
				case c.dns:
					wantRequests = 0
				case c.every:
					wantRequests = n // may have been delivered: never sent again
				}
				if got := len(ep.Publishes(r)); got != wantRequests {
					t.Errorf("%d publish requests reached Inngest, want %d", got, wantRequests)
				}
			})
		}
	}
}
