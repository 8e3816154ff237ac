package e2e_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/coursebuilder/realtime-go/broadcast"
	"github.com/coursebuilder/realtime-go/chunkstream"
	"github.com/coursebuilder/realtime-go/flags"
	"github.com/coursebuilder/realtime-go/harness/partykit"
	"github.com/coursebuilder/realtime-go/legacyparty"
	"github.com/coursebuilder/realtime-go/realtime"
	"github.com/coursebuilder/realtime-go/realtime/inngest"
)

// partyResetProxy stands in front of the real PartyKit dev server: it
// forwards every request to it and hands back the answer, except that the
// first unavailable POSTs are answered 503 without reaching PartyKit, and
// that from the resetFrom-th POST PartyKit answered on (0: never) it resets
// the client's connection once PartyKit answered. PartyKit received and
// broadcast the message; the client cannot know it (ErrMaybeDelivered).
type partyResetProxy struct {
	URL         string
	unavailable int
	resetFrom   int

	mu    sync.Mutex
	tries int      // every POST, those answered 503 included
	posts [][]byte // the bodies PartyKit answered, in order
}

func newPartyResetProxy(t testing.TB, party *partykit.Server, resetFrom int) *partyResetProxy {
	t.Helper()
	return newPartyProxy(t, party, 0, resetFrom)
}

// newPartyUnavailableProxy answers the first n POSTs 503 and forwards
// every other request to party.
func newPartyUnavailableProxy(t testing.TB, party *partykit.Server, n int) *partyResetProxy {
	t.Helper()
	return newPartyProxy(t, party, n, 0)
}

func newPartyProxy(t testing.TB, party *partykit.Server, unavailable, resetFrom int) *partyResetProxy {
	t.Helper()
	p := &partyResetProxy{unavailable: unavailable, resetFrom: resetFrom}
	tr := &http.Transport{}
	client := &http.Client{Transport: tr}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		if r.Method == http.MethodPost {
			p.mu.Lock()
			p.tries++
			down := p.tries <= p.unavailable
			p.mu.Unlock()
			if down {
				http.Error(w, "maintenance", http.StatusServiceUnavailable)
				return
			}
		}
		req, err := http.NewRequestWithContext(r.Context(), r.Method, party.URL()+r.URL.RequestURI(), bytes.NewReader(body))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		req.Header = r.Header.Clone()
		resp, err := client.Do(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		answer, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		n := 0
		if r.Method == http.MethodPost {
			p.mu.Lock()
			p.posts = append(p.posts, body)
			n = len(p.posts)
			p.mu.Unlock()
		}
		if n > 0 && p.resetFrom > 0 && n >= p.resetFrom {
			resetConnection(w)
			return
		}
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(resp.StatusCode)
		_, _ = w.Write(answer)
	}))
	t.Cleanup(func() {
		srv.Close()
		tr.CloseIdleConnections()
	})
	p.URL = srv.URL
	return p
}

// Tries returns how many POSTs reached the proxy, those it answered 503
// included.
func (p *partyResetProxy) Tries() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.tries
}

// Posts returns the bodies of the POSTs PartyKit received and answered.
func (p *partyResetProxy) Posts() [][]byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([][]byte(nil), p.posts...)
}

// TestChunkstreamFallbackNeverResendsWhatMayHaveBeenDelivered: a
// chunkstream over a broadcast in realtime mode with FallbackToLegacy,
// against the real servers. Inngest answers every publish 503, so each
// chunk falls back to PartyKit; from the third chunk on, PartyKit's
// connection is reset after it received (and broadcast) the chunk. The
// third chunk may have been delivered, so it is never sent again: PartyKit
// receives one POST per chunk, its subscriber each chunk exactly once, and
// the stream fails with a *FailedError naming both transports. Inngest's
// retry policy is the only retry loop: 2 requests per chunk, 6 in all, and
// PartyKit's (legacyparty does not retry what may have been delivered):
// 3 POSTs.
func TestChunkstreamFallbackNeverResendsWhatMayHaveBeenDelivered(t *testing.T) {
	party := sharedParty(t)
	proxy := newPartyResetProxy(t, party, 3)
	ep := newEndpoint(t, answer(http.StatusServiceUnavailable, "maintenance"))
	const inngestAttempts = 2
	b := newBroadcast(t,
		newParty(t, legacyparty.Options{BaseURL: proxy.URL, Retry: fastRetry(3)}),
		newInngest(t, inngest.Options{BaseURL: ep.URL(), SigningKey: ep.Key, Retry: fastRetry(inngestAttempts)}),
		broadcast.Options{Resolver: flags.Fixed(flags.Realtime), FallbackToLegacy: true})
	rm := room("chunkstream-fallback")
	sub := mustSubscribeParty(t, party, rm)
	s := newChunkStream(t, b, rm, chunkstream.Options{})

	chunks := []string{"The video ", "is ", "ready."}
	next := func(what string) (n, seq uint64, body string) {
		t.Helper()
		raw, err := sub.Next(ctxT(t))
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		env, err := realtime.DecodeEnvelope(raw)
		if err != nil {
			t.Fatalf("%s: %v: %s", what, err, raw)
		}
		if err := json.Unmarshal(env.Body.(json.RawMessage), &body); err != nil {
			t.Fatalf("%s: body is not a string: %s", what, raw)
		}
		_, n = chunkNumber(t, env.ID)
		return n, env.Seq, body
	}
	for i, c := range chunks {
		if err := s.PublishChunk(c); err != nil {
			t.Fatalf("PublishChunk(%q): %v", c, err)
		}
		// Each chunk is delivered, over the fallback, before the next is
		// offered, so that each is a message of its own: the stream's
		// message i+1, numbered i+1 in the room by the Broadcast's log.
		n, seq, body := next(fmt.Sprintf("waiting for chunk %d", i+1))
		if n != uint64(i+1) || seq != uint64(i+1) || body != c {
			t.Fatalf("partykit subscriber got message %d seq %d %q, want message and seq %d %q", n, seq, body, i+1, c)
		}
	}
	err := s.Close(ctxT(t))

	var fe *chunkstream.FailedError
	if !errors.As(err, &fe) || !errors.Is(err, realtime.ErrMaybeDelivered) {
		t.Fatalf("Close: %v, want a *chunkstream.FailedError matching ErrMaybeDelivered", err)
	}
	if fe.Seq != 3 {
		t.Errorf("FailedError at seq %d, want seq 3", fe.Seq)
	}
	if got := failedTransports(err); len(got) != 2 {
		t.Errorf("failed transports %v, want both", got)
	}

	posts := proxy.Posts()
	for i, p := range posts {
		t.Logf("POST %d to PartyKit: %s", i+1, p)
	}
	if len(posts) != len(chunks) {
		t.Errorf("PartyKit received %d POSTs, want %d: one per chunk, and no end marker after the failure", len(posts), len(chunks))
	}
	// Inngest's own retries are the only ones: the stream offers each
	// chunk once.
	if got, want := len(ep.Publishes(rm)), len(chunks)*inngestAttempts; got != want {
		t.Errorf("%d publish requests reached Inngest, want %d", got, want)
	}
	// Nothing more: no second copy of chunk 3, no end marker.
	expectQuiet(t, map[string]subscriber{"partykit subscriber": sub})
}

// TestChunkstreamProviderRetryIsTheOnlyRetry: a chunkstream over each real
// transport, whose first requests are answered 503. The stream offers each
// message to the provider once and the provider's retry policy (3
// attempts) is the only retry loop: a chunk answered 503 once is delivered
// with 2 requests, once; a chunk answered 503 every time costs exactly 3
// requests (not 3 per attempt of the stream, 9), and the stream fails with
// nothing published after it, not even the end marker.
func TestChunkstreamProviderRetryIsTheOnlyRetry(t *testing.T) {
	const attempts = 3
	for _, c := range []struct {
		name        string
		unavailable int  // publish requests answered 503 first
		delivered   bool // the chunk gets through
		requests    int  // publish requests in all, the end marker's included
	}{
		{"recovers", 1, true, 2 + 1},
		{"stays unavailable", 1 << 20, false, attempts},
	} {
		t.Run("inngest/"+c.name, func(t *testing.T) {
			ep := newEndpoint(t, firstN(c.unavailable, answer(http.StatusServiceUnavailable, "maintenance")))
			rm := room("chunkstream-retry-inngest")
			sub := mustSubscribeInngest(t, ep.Server, rm, "ai.message")
			p := newInngest(t, inngest.Options{BaseURL: ep.URL(), SigningKey: ep.Key, Retry: fastRetry(attempts)})
			streamOneChunk(t, p, rm, sub, c.delivered)
			if got := len(ep.Publishes(rm)); got != c.requests {
				t.Errorf("%d publish requests reached Inngest, want %d", got, c.requests)
			}
		})
		t.Run("partykit/"+c.name, func(t *testing.T) {
			party := sharedParty(t)
			proxy := newPartyUnavailableProxy(t, party, c.unavailable)
			rm := room("chunkstream-retry-party")
			sub := mustSubscribeParty(t, party, rm)
			p := newParty(t, legacyparty.Options{BaseURL: proxy.URL, Retry: fastRetry(attempts)})
			streamOneChunk(t, p, rm, sub, c.delivered)
			if got := proxy.Tries(); got != c.requests {
				t.Errorf("%d POSTs reached PartyKit's proxy, want %d", got, c.requests)
			}
		})
	}
}

// streamOneChunk streams one chunk to rm over p and checks what sub sees:
// the chunk and the end marker once each when delivered is set, nothing
// and a *FailedError at seq 1 otherwise.
func streamOneChunk(t *testing.T, p realtime.Provider, rm string, sub subscriber, delivered bool) {
	t.Helper()
	const chunk = "The video is ready."
	s := newChunkStream(t, p, rm, chunkstream.Options{})
	if err := s.PublishChunk(chunk); err != nil {
		t.Fatalf("PublishChunk: %v", err)
	}
	err := s.Close(ctxT(t))
	if delivered {
		if err != nil {
			t.Fatalf("Close: %v", err)
		}
		got, n := reassembleEnvelopes(t, "subscriber", sub, rm, 0)
		if got != chunk || n != 2 {
			t.Fatalf("subscriber reassembled %q in %d messages, want %q in 2", got, n, chunk)
		}
	} else {
		var fe *chunkstream.FailedError
		if !errors.As(err, &fe) || fe.Seq != 1 || !errors.Is(err, realtime.ErrUnavailable) {
			t.Fatalf("Close: %v, want a *chunkstream.FailedError at seq 1 matching ErrUnavailable", err)
		}
		var pe *realtime.PublishError
		if !errors.As(err, &pe) || pe.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("Close: %v, want the provider's 503", err)
		}
	}
	// Nothing more: no second copy, and no end marker after a failure.
	expectQuiet(t, map[string]subscriber{"subscriber": sub})
}
