package e2e_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.uber.org/goleak"
	"go.uber.org/zap/zaptest"

	"github.com/coursebuilder/realtime-go/broadcast"
	"github.com/coursebuilder/realtime-go/flags"
	"github.com/coursebuilder/realtime-go/harness/inngestrt"
	"github.com/coursebuilder/realtime-go/harness/partykit"
	"github.com/coursebuilder/realtime-go/legacyparty"
	"github.com/coursebuilder/realtime-go/realtime"
	"github.com/coursebuilder/realtime-go/realtime/inngest"
	"github.com/coursebuilder/realtime-go/realtime/realtimetest"
)

// quiet is how long a subscriber must stay silent for "nothing was
// delivered". It is a window for an absence, not a bound on speed.
const quiet = 300 * time.Millisecond

// wait bounds every wait for something that must happen.
const wait = 15 * time.Second

func TestMain(m *testing.M) {
	// The providers read INNGEST_*, REALTIME_CHANNEL_SECRET and
	// NEXT_PUBLIC_PARTY_KIT_URL from the environment for every option left
	// empty: keep a developer's or CI's values out of the tests.
	for _, k := range []string{"INNGEST_BASE_URL", "INNGEST_API_BASE_URL", "INNGEST_DEV", "INNGEST_SIGNING_KEY",
		"INNGEST_SIGNING_KEY_FALLBACK", "INNGEST_ENV", "REALTIME_CHANNEL_SECRET", "NEXT_PUBLIC_PARTY_KIT_URL"} {
		_ = os.Unsetenv(k)
	}
	opts := inngestrt.LeakOptions()
	// The shared servers are closed after the tests and before the leak
	// check.
	goleak.VerifyTestMain(shutdownAfter{m}, opts...)
}

type shutdownAfter struct{ m *testing.M }

func (s shutdownAfter) Run() int {
	code := s.m.Run()
	closing.Wait()
	if err := closeShared(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		code = 1
	}
	return code
}

// ctxT returns a context that ends with the test, bounded by wait.
func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	t.Cleanup(cancel)
	return ctx
}

func room(prefix string) string { return prefix + "-" + uuid.NewString() }

// ---------------------------------------------------------------------------
// Logs of the shared servers

// logs forwards the output of the shared servers to the test that is
// running, so `go test -v` shows them under that test. Lines written when
// no test is attached (start-up after the first test ended, shut-down) go to
// stderr in verbose mode and are dropped otherwise.
var logs logRouter

type logRouter struct {
	mu sync.RWMutex
	ts []testing.TB
}

// attach routes the shared servers' output to t until t ends.
func (l *logRouter) attach(t testing.TB) {
	l.mu.Lock()
	l.ts = append(l.ts, t)
	l.mu.Unlock()
	t.Cleanup(func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		if i := slices.Index(l.ts, t); i >= 0 {
			l.ts = slices.Delete(l.ts, i, i+1)
		}
	})
}

func (l *logRouter) Logf(format string, args ...any) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if n := len(l.ts); n > 0 {
		l.ts[n-1].Logf(format, args...)
		return
	}
	if testing.Verbose() {
		fmt.Fprintf(os.Stderr, format+"\n", args...)
	}
}

// ---------------------------------------------------------------------------
// Shared servers: one of each per test binary

var shared struct {
	inngestOnce sync.Once
	inngest     *inngestrt.Server
	inngestKey  string
	inngestErr  error
}

// sharedInngest returns the binary's Inngest endpoint, which accepts one
// signing key, and that key.
func sharedInngest(t testing.TB) (*inngestrt.Server, string) {
	t.Helper()
	logs.attach(t)
	shared.inngestOnce.Do(func() {
		shared.inngestKey = inngestrt.NewSigningKey()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		shared.inngest, shared.inngestErr = inngestrt.Start(ctx, inngestrt.Options{
			SigningKeys: []string{shared.inngestKey},
			Logf:        logs.Logf,
		})
	})
	if shared.inngestErr != nil {
		t.Fatal(shared.inngestErr)
	}
	return shared.inngest, shared.inngestKey
}

// sharedParty returns the binary's PartyKit dev server; like
// partykit.NewTest, it skips the test when the dev server cannot run here,
// unless CI is set.
func sharedParty(t testing.TB) *partykit.Server {
	t.Helper()
	logs.attach(t)
	return sharedPartyKit.Get(t)
}

var sharedPartyKit = partykit.Shared{Options: partykit.Options{Logf: logs.Logf}}

func closeShared() error {
	var errs []error
	errs = append(errs, sharedPartyKit.Close())
	if shared.inngest != nil {
		errs = append(errs, shared.inngest.Close())
	}
	return errors.Join(errs...)
}

// ---------------------------------------------------------------------------
// Providers under test

// fastRetry retries like the default policy, with shorter delays.
func fastRetry(attempts int) *realtime.RetryPolicy {
	return &realtime.RetryPolicy{Attempts: attempts, BaseDelay: 10 * time.Millisecond, MaxDelay: 50 * time.Millisecond}
}

// newInngest returns an Inngest provider closed when t ends. opts.Logger
// defaults to t's log.
func newInngest(t testing.TB, opts inngest.Options) *inngest.Provider {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = zaptest.NewLogger(t)
	}
	if opts.ChannelSecret == "" {
		// The suite's helpers subscribe by readable channel name
		// (subscribeInngest, Endpoint.Publishes); keyed channels, the
		// default, are exercised by tests that pass a ChannelSecret
		// (collision_test.go).
		opts.Mapping.Unkeyed = true
	}
	p, err := inngest.New(&opts)
	if err != nil {
		t.Fatalf("inngest.New: %v", err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// encodeAny returns msg's envelope without Inngest's size limit, as
// PartyKit receives it.
func encodeAny(msg realtime.Message) ([]byte, error) {
	env, err := realtime.NewEnvelope(context.Background(), msg)
	if err != nil {
		return nil, err
	}
	return env.Bytes(), nil
}

// routed returns a Broadcast over p (no PartyKit: a Noop stands in) whose
// resolver is res: what a token handler asks where a room's messages go.
func routed(t testing.TB, p *inngest.Provider, res flags.Resolver) *broadcast.Broadcast {
	t.Helper()
	b, err := broadcast.New(realtime.NewNoop(nil), p, &broadcast.Options{Resolver: res})
	if err != nil {
		t.Fatalf("broadcast.New: %v", err)
	}
	t.Cleanup(func() { _ = b.Close(context.Background()) })
	return b
}

// newParty returns a PartyKit provider closed when t ends.
func newParty(t testing.TB, opts legacyparty.Options) *legacyparty.Provider {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = zaptest.NewLogger(t)
	}
	p, err := legacyparty.New(&opts)
	if err != nil {
		t.Fatalf("legacyparty.New: %v", err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// ---------------------------------------------------------------------------
// Subscribers

// inngestSub yields the data of each "data" message on one channel, as a
// browser subscribed with useRealtime (inngest/react) would see it.
type inngestSub struct {
	sub     *inngestrt.Subscription
	channel string
}

// subscribeInngest mints a token for channel and topics on s and opens a
// websocket subscription, live once it returns.
func subscribeInngest(ctx context.Context, s *inngestrt.Server, channel string, topics ...string) (*inngestSub, error) {
	tok, err := s.Token(ctx, channel, topics...)
	if err != nil {
		return nil, err
	}
	sub, err := s.Subscribe(ctx, tok)
	if err != nil {
		return nil, err
	}
	return &inngestSub{sub: sub, channel: channel}, nil
}

// mustSubscribeInngest is subscribeInngest, closed when t ends.
func mustSubscribeInngest(t testing.TB, s *inngestrt.Server, channel string, topics ...string) *inngestSub {
	t.Helper()
	sub, err := subscribeInngest(ctxT(t), s, channel, topics...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Close() })
	return sub
}

func (s *inngestSub) Next(ctx context.Context) ([]byte, error) {
	m, err := s.sub.NextData(ctx)
	if err != nil {
		return nil, err
	}
	if m.Channel != s.channel {
		return nil, fmt.Errorf("message for channel %q on a subscription to %q: %s", m.Channel, s.channel, m.Raw)
	}
	return m.Data, nil
}

// ExpectNone fails if a data message arrives within d.
func (s *inngestSub) ExpectNone(d time.Duration) error { return s.sub.ExpectNoData(d) }

func (s *inngestSub) Close() error { return s.sub.Close() }

// partySub yields each frame of a PartyKit room, as partysocket would.
type partySub struct{ sub *partykit.Subscription }

func subscribeParty(ctx context.Context, s *partykit.Server, room string) (*partySub, error) {
	sub, err := s.Subscribe(ctx, room)
	if err != nil {
		return nil, err
	}
	return &partySub{sub: sub}, nil
}

func mustSubscribeParty(t testing.TB, s *partykit.Server, room string) *partySub {
	t.Helper()
	sub, err := subscribeParty(ctxT(t), s, room)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Close() })
	return sub
}

func (s *partySub) Next(ctx context.Context) ([]byte, error) { return s.sub.Next(ctx) }
func (s *partySub) ExpectNone(d time.Duration) error         { return s.sub.ExpectNone(d) }

// Close closes the websocket in the background. workerd never answers a
// close frame, so each close waits out wsconn's close timeout (500 ms)
// before it cuts the connection; nothing in a test depends on it, and
// TestMain waits for all of them before the leak check.
func (s *partySub) Close() error {
	closing.Go(func() { _ = s.sub.Close() })
	return nil
}

// closing tracks the background closes of PartyKit subscriptions.
var closing sync.WaitGroup

// subscriber is what both kinds of subscription offer.
type subscriber interface {
	Next(ctx context.Context) ([]byte, error)
	ExpectNone(d time.Duration) error
}

// expectDelivered fails t unless sub's next payload is want.
func expectDelivered(t testing.TB, what string, sub subscriber, want []byte) {
	t.Helper()
	got, err := sub.Next(ctxT(t))
	if err != nil {
		t.Fatalf("%s: waiting for %s: %v", what, want, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s received\n  %s\nwant\n  %s", what, got, want)
	}
}

// expectQuiet fails t if any of subs receives something within quiet. The
// windows run concurrently.
func expectQuiet(t testing.TB, subs map[string]subscriber) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make([]error, 0, len(subs))
	var mu sync.Mutex
	for what, sub := range subs {
		wg.Go(func() {
			if err := sub.ExpectNone(quiet); err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("%s: %w", what, err))
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		t.Error(err)
	}
	if len(errs) > 0 {
		t.FailNow()
	}
}

// ---------------------------------------------------------------------------
// Peers that are not there

// stalledURL returns the URL of a loopback listener that accepts
// connections and never answers. Everything is closed when t ends.
func stalledURL(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
		wg    sync.WaitGroup
	)
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	})
	t.Cleanup(func() {
		_ = ln.Close()
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return "http://" + ln.Addr().String()
}

// downURL returns the URL of a loopback port nothing listens on.
func downURL(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := "http://" + ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return u
}

// ---------------------------------------------------------------------------
// Inngest endpoints with injected faults

// fault decides what the endpoint does with the n-th publish request (1-based)
// to a channel. It returns true when it answered the request itself; false
// lets the real realtime API handle it.
type fault func(n int, w http.ResponseWriter, r *http.Request) bool

// endpoint is a dedicated real Inngest endpoint whose publish requests pass
// through a fault first, and which records every request that reaches it.
type endpoint struct {
	*inngestrt.Server
	// Key is the one signing key the endpoint accepts.
	Key string

	mu        sync.Mutex
	requests  int
	publishes map[string][]http.Header // per channel, in arrival order
}

// newEndpoint starts an endpoint for t; its logs go to t.
func newEndpoint(t testing.TB, f fault) *endpoint {
	t.Helper()
	e := &endpoint{Key: inngestrt.NewSigningKey(), publishes: map[string][]http.Header{}}
	e.Server = inngestrt.NewTest(t, inngestrt.Options{
		SigningKeys: []string{e.Key},
		Wrap: func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				e.mu.Lock()
				e.requests++
				n := 0
				if r.URL.Path == "/v1/realtime/publish" {
					ch := r.URL.Query().Get("channel")
					e.publishes[ch] = append(e.publishes[ch], r.Header.Clone())
					n = len(e.publishes[ch])
				}
				e.mu.Unlock()
				if n > 0 && f != nil && f(n, w, r) {
					return
				}
				next.ServeHTTP(w, r)
			})
		},
	})
	return e
}

// Requests returns how many requests of any kind reached the endpoint.
func (e *endpoint) Requests() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.requests
}

// Publishes returns the headers of the publish requests to channel.
func (e *endpoint) Publishes(channel string) []http.Header {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.publishes[channel])
}

// answer is a fault that answers every matching request with status.
func answer(status int, body string) fault {
	return func(_ int, w http.ResponseWriter, _ *http.Request) bool {
		http.Error(w, body, status)
		return true
	}
}

// firstN applies f to the first n publish requests of each channel only.
func firstN(n int, f fault) fault {
	return func(i int, w http.ResponseWriter, r *http.Request) bool {
		return i <= n && f(i, w, r)
	}
}

// hang is a fault that never answers: it holds the request until the client
// gives up (the request context ends), and never publishes. The body is
// read first: net/http notices a client that went away only once the
// request body is consumed. A cap keeps a forgotten request from holding up
// the server's Close.
func hang(_ int, w http.ResponseWriter, r *http.Request) bool {
	_, _ = io.Copy(io.Discard, r.Body)
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-r.Context().Done():
	case <-t.C:
		http.Error(w, "hang: the client never gave up", http.StatusGatewayTimeout)
	}
	return true
}

// envelope encodes msg or fails t. msg must have an ID: a message without
// one gets a new random id on every encode, so its bytes could never be
// compared with what a transport delivered.
func envelope(t testing.TB, msg realtime.Message) []byte {
	t.Helper()
	if msg.ID == "" {
		t.Fatalf("envelope of a message without an ID (%s to %s): give it one", msg.Name, msg.Room)
	}
	b, err := msg.Encode()
	if err != nil {
		t.Fatalf("encode: %v", err)
	}
	return b
}

// sent returns the envelope b fanned out for msg, which b published: msg's
// envelope (without Inngest's size limit) with the "seq" and "epoch" b's
// replay log gave it last, which must be exactly what the log holds for
// msg.ID.
func sent(t testing.TB, b *broadcast.Broadcast, msg realtime.Message) []byte {
	t.Helper()
	if msg.ID == "" {
		t.Fatalf("sent: a message without an ID (%s to %s): give it one", msg.Name, msg.Room)
	}
	env, err := encodeAny(msg)
	if err != nil {
		t.Fatalf("encode: %v", err)
	}
	page, err := b.History(ctxT(t), msg.Room, 0, 500)
	if err != nil {
		t.Fatalf("History of %s: %v", msg.Room, err)
	}
	for _, e := range page.Entries {
		if e.ID != msg.ID {
			continue
		}
		want := fmt.Appendf(env[:len(env)-1:len(env)-1], `,"seq":%d,"epoch":%d}`, e.Seq, e.Epoch)
		if e.Seq == 0 || e.Epoch == 0 || !bytes.Equal(e.Envelope, want) {
			t.Fatalf("the replay log holds %s for %s, want %s", e.Envelope, msg.ID, want)
		}
		return want
	}
	t.Fatalf("the replay log of %s has no message %s (%d entries)", msg.Room, msg.ID, len(page.Entries))
	return nil
}

// partySpelling is how the course-builder party re-spells an envelope.
var partySpelling = realtimetest.JSSpelling
