package e2e_test

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	rtserver "github.com/inngest/inngest/pkg/execution/realtime"
	"github.com/inngest/inngest/pkg/execution/realtime/streamingtypes"
	"go.uber.org/zap/zaptest"

	"github.com/coursebuilder/realtime-go/flags"
	"github.com/coursebuilder/realtime-go/harness/inngestrt"
	"github.com/coursebuilder/realtime-go/realtime"
	"github.com/coursebuilder/realtime-go/realtime/inngest"
	"github.com/coursebuilder/realtime-go/tokens"
)

// Subscription tokens against the real Inngest realtime endpoint: minted by
// inngest.Provider.SubscriptionToken, served by tokens.Handler, used by a
// browser-style websocket and by inngest.Subscribe.

// appChannel namespaces channels per app, as apps sharing one Inngest
// environment would; tokens and publishes must agree on it.
var appChannel = inngest.Mapping{Channel: func(room string) string { return "astro-party:" + room }}

func TestTokenReceivesWhatTheProviderPublishes(t *testing.T) {
	srv, key := sharedInngest(t)
	p := newInngest(t, inngest.Options{BaseURL: srv.URL(), SigningKey: key, Mapping: appChannel})
	r := room("token")

	before := time.Now()
	tok, err := p.SubscriptionToken(ctxT(t), r, []string{topic, "ai.message"})
	if err != nil {
		t.Fatal(err)
	}
	if tok.Channel != "astro-party:"+r || !slices.Equal(tok.Topics, []string{topic, "ai.message"}) {
		t.Fatalf("token for %s, %v; want the mapped channel and both topics", tok.Channel, tok.Topics)
	}
	// Inngest issues tokens for one minute; exp is in whole seconds.
	if lo, hi := before.Add(59*time.Second), time.Now().Add(61*time.Second); tok.Expires.Before(lo) || tok.Expires.After(hi) {
		t.Errorf("Expires = %v, want about a minute after %v", tok.Expires, before)
	}
	if s := fmt.Sprintf("%v %+v %#v", tok, tok, tok); strings.Contains(s, tok.JWT) {
		t.Errorf("a printed token shows its JWT: %s", s)
	}

	sub, err := srv.Subscribe(ctxT(t), tok.JWT)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Close() })

	ready := readyMsg(r)
	chunk := realtime.Message{Room: r, Name: "ai.message", RequestID: "chat-1", Body: "Hello", ID: "chat-1.1"}
	for _, msg := range []realtime.Message{ready, chunk} {
		if err := p.Publish(ctxT(t), msg); err != nil {
			t.Fatal(err)
		}
		m, err := sub.NextData(ctxT(t))
		if err != nil {
			t.Fatal(err)
		}
		if m.Channel != tok.Channel || m.Topic != msg.Name || string(m.Data) != string(envelope(t, msg)) {
			t.Fatalf("received %s on %s/%s, want %s on %s/%s", m.Data, m.Channel, m.Topic, envelope(t, msg), tok.Channel, msg.Name)
		}
	}
}

func TestTokenForOneRoomReceivesNothingFromAnother(t *testing.T) {
	srv, key := sharedInngest(t)
	p := newInngest(t, inngest.Options{BaseURL: srv.URL(), SigningKey: key, Mapping: appChannel})
	a, b := room("room-a"), room("room-b")
	tok, err := p.SubscriptionToken(ctxT(t), a, []string{topic})
	if err != nil {
		t.Fatal(err)
	}
	sub, err := srv.Subscribe(ctxT(t), tok.JWT)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Close() })
	// Room B is watched too, so its messages really are delivered, to
	// its own subscriber only.
	subB := mustSubscribeInngest(t, srv, "astro-party:"+b, topic)

	forB := readyMsg(b)
	notForA := []realtime.Message{
		forB, // another room
		{Room: a, Name: "video.asset.errored", Body: "x"}, // a topic the token lacks
	}
	for _, msg := range notForA {
		if err := p.Publish(ctxT(t), msg); err != nil {
			t.Fatal(err)
		}
	}
	expectDelivered(t, "room B's subscriber", subB, envelope(t, forB))
	if err := sub.ExpectNoData(quiet); err != nil {
		t.Fatalf("room A's token: %v", err)
	}
	// The subscription is live: room A's own message arrives, and first.
	forA := readyMsg(a)
	if err := p.Publish(ctxT(t), forA); err != nil {
		t.Fatal(err)
	}
	m, err := sub.NextData(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if string(m.Data) != string(envelope(t, forA)) {
		t.Fatalf("room A's token received %s first", m.Data)
	}
}

// serverJWT signs a subscription token the way the server's token route
// does (realtime.NewJWT: the same claims, issuer and secret), with the
// given lifetime, which may be negative.
func serverJWT(t testing.TB, srv *inngestrt.Server, channel string, life time.Duration, topics ...string) string {
	t.Helper()
	var ts []rtserver.Topic
	for _, name := range topics {
		ts = append(ts, rtserver.Topic{Kind: streamingtypes.TopicKindRun, EnvID: inngestrt.EnvID, Channel: channel, Name: name})
	}
	jwt, err := rtserver.NewJWT(context.Background(), srv.JWTSecret(), inngestrt.AccountID, inngestrt.EnvID, ts,
		rtserver.NewJWTOpts{Expiry: &life})
	if err != nil {
		t.Fatal(err)
	}
	return jwt
}

// jwtExp reads the exp claim of a JWT.
func jwtExp(t testing.TB, jwt string) time.Time {
	t.Helper()
	parts := strings.Split(jwt, ".")
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims struct {
		Exp int64 `json:"exp"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	return time.Unix(claims.Exp, 0)
}

func TestExpiredTokenIsRefused(t *testing.T) {
	srv, _ := sharedInngest(t)
	ch := room("expired")

	expired := serverJWT(t, srv, ch, -time.Minute, topic)
	if exp := jwtExp(t, expired); !exp.Before(time.Now()) {
		t.Fatalf("exp %v is not in the past", exp)
	}
	sub, err := srv.Subscribe(ctxT(t), expired)
	if err == nil {
		_ = sub.Close()
		t.Fatal("the server accepted an expired token")
	}
	if !strings.Contains(err.Error(), "status 401") {
		t.Fatalf("subscribing with an expired token: %v, want a 401", err)
	}

	// The same token, made the same way but still valid, is accepted: the
	// refusal is the expiry's doing.
	valid := serverJWT(t, srv, ch, time.Minute, topic)
	sub, err = srv.Subscribe(ctxT(t), valid)
	if err != nil {
		t.Fatalf("a valid token built like the expired one: %v", err)
	}
	_ = sub.Close()
}

// Inngest checks a token when a connection opens and never again: the
// reason why inngest.Subscriber does not reconnect when its token expires.
func TestConnectionOutlivesItsToken(t *testing.T) {
	srv, key := sharedInngest(t)
	p := newInngest(t, inngest.Options{BaseURL: srv.URL(), SigningKey: key})
	ch := room("outlive")
	short := serverJWT(t, srv, ch, 2*time.Second, topic) // exp is 1 to 2 s away
	sub, err := srv.Subscribe(ctxT(t), short)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Close() })

	time.Sleep(time.Until(jwtExp(t, short)) + 100*time.Millisecond)
	if again, err := srv.Subscribe(ctxT(t), short); err == nil {
		_ = again.Close()
		t.Fatal("the token is still accepted for new connections after its exp")
	}
	msg := readyMsg(ch)
	if err := p.Publish(ctxT(t), msg); err != nil {
		t.Fatal(err)
	}
	m, err := sub.NextData(ctxT(t))
	if err != nil {
		t.Fatalf("the connection opened with the token before it expired: %v", err)
	}
	if string(m.Data) != string(envelope(t, msg)) {
		t.Fatalf("received %s", m.Data)
	}
}

func TestTokenHandlerEndToEnd(t *testing.T) {
	srv, key := sharedInngest(t)
	p := newInngest(t, inngest.Options{BaseURL: srv.URL(), SigningKey: key, Mapping: appChannel})
	r := room("handler")
	var mode atomic.Uint32
	mode.Store(uint32(flags.Primary))
	h := tokens.NewHandler(routed(t, p, resolverOf(func() flags.Mode { return flags.Mode(mode.Load()) })), &tokens.HandlerOptions{
		Authenticate: func(req *http.Request) (tokens.Subject, error) {
			c, err := req.Cookie("session")
			if err != nil || c.Value != "alice" {
				return tokens.Subject{}, errors.New("no session")
			}
			return tokens.Subject{ID: "alice"}, nil
		},
		Authorize: func(_ context.Context, s tokens.Subject, rm string, _ flags.Scope) error {
			if rm != r {
				return errors.New("not alice's video")
			}
			return nil
		},
		Logger: zaptest.NewLogger(t),
	})
	app := httptest.NewServer(h)
	t.Cleanup(app.Close)

	get := func(query string) (int, http.Header, []byte) {
		t.Helper()
		req, err := http.NewRequestWithContext(ctxT(t), http.MethodGet, app.URL+"/api/realtime/token?"+query, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.AddCookie(&http.Cookie{Name: "session", Value: "alice"})
		resp, err := app.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, resp.Header, body
	}

	status, hdr, body := get("room=" + url.QueryEscape(r) + "&scope=video-ready")
	if status != http.StatusOK || hdr.Get("Cache-Control") != "no-store" {
		t.Fatalf("token request: %d (Cache-Control %q) %s", status, hdr.Get("Cache-Control"), body)
	}
	// The token object of inngest/realtime's React hooks, plus expires.
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil {
		t.Fatal(err)
	}
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if !slices.Equal(keys, []string{"apiBaseUrl", "channel", "expires", "key", "topics"}) {
		t.Fatalf("answer has the fields %v, want apiBaseUrl, channel, expires, key and topics", keys)
	}
	var tok tokens.Response
	if err := json.Unmarshal(body, &tok); err != nil {
		t.Fatal(err)
	}
	if tok.Channel != "astro-party:"+r || !slices.Equal(tok.Topics, []string{topic}) || tok.Key == "" ||
		time.Until(tok.Expires) < 50*time.Second {
		t.Fatalf("answer %v", tok)
	}

	// Subscribe as a browser does: the key as ?token= on the websocket URL.
	sub := dialAsBrowser(t, srv.URL(), tok.Key)
	if err := srv.WaitSubscribed(ctxT(t), tok.Channel, topic, 1); err != nil {
		t.Fatal(err)
	}
	msg := readyMsg(r)
	if err := p.Publish(ctxT(t), msg); err != nil {
		t.Fatal(err)
	}
	if got := sub.nextData(t); string(got) != string(envelope(t, msg)) {
		t.Fatalf("browser received %s, want %s", got, envelope(t, msg))
	}

	// Refusals through the same stack.
	if status, _, body := get("room=" + url.QueryEscape(room("other")) + "&scope=video-ready"); status != http.StatusForbidden {
		t.Errorf("another user's room: %d %s", status, body)
	}
	mode.Store(uint32(flags.Legacy))
	if status, _, body := get("room=" + url.QueryEscape(r) + "&scope=video-ready"); status != http.StatusNotFound {
		t.Errorf("flag back to legacy: %d %s, want 404", status, body)
	}
}

type resolverOf func() flags.Mode

func (f resolverOf) Mode(context.Context, flags.Scope, string) flags.Mode { return f() }

// browserSub is a websocket opened the way inngest/realtime's
// TokenSubscription opens it, read continuously.
type browserSub struct {
	data chan []byte
}

func dialAsBrowser(t *testing.T, base, key string) *browserSub {
	t.Helper()
	client := &http.Client{Transport: &http.Transport{}}
	u := "ws" + strings.TrimPrefix(base, "http") + "/v1/realtime/connect?token=" + url.QueryEscape(key)
	ws, _, err := websocket.Dial(ctxT(t), u, &websocket.DialOptions{HTTPClient: client})
	if err != nil {
		t.Fatal(err)
	}
	ws.SetReadLimit(8 << 20)
	s := &browserSub{data: make(chan []byte, 16)}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			_, b, err := ws.Read(context.Background())
			if err != nil {
				return
			}
			var m inngestrt.Message
			if json.Unmarshal(b, &m) == nil && m.Kind == inngestrt.KindData {
				s.data <- m.Data
			}
		}
	})
	t.Cleanup(func() {
		_ = ws.CloseNow()
		wg.Wait()
		client.CloseIdleConnections()
	})
	return s
}

func (s *browserSub) nextData(t *testing.T) []byte {
	t.Helper()
	select {
	case b := <-s.data:
		return b
	case <-time.After(wait):
		t.Fatal("the browser received nothing")
		return nil
	}
}

// ---------------------------------------------------------------------------
// inngest.Subscribe against the real endpoint

// connectEndpoint is a real endpoint of its own whose websocket
// connections the test can cut, and whose connect requests it can hold.
type connectEndpoint struct {
	*inngestrt.Server
	Key string

	mu       sync.Mutex
	connects int
	mints    int
	conns    []net.Conn // hijacked websocket connections, in order
	hold     map[int]chan struct{}
	arrived  map[int]chan struct{}
}

func newConnectEndpoint(t *testing.T) *connectEndpoint {
	t.Helper()
	e := &connectEndpoint{Key: inngestrt.NewSigningKey(), hold: map[int]chan struct{}{}, arrived: map[int]chan struct{}{}}
	e.Server = inngestrt.NewTest(t, inngestrt.Options{
		SigningKeys: []string{e.Key},
		Wrap: func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				switch r.URL.Path {
				case "/v1/realtime/token":
					e.mu.Lock()
					e.mints++
					e.mu.Unlock()
				case "/v1/realtime/connect":
					e.mu.Lock()
					e.connects++
					n := e.connects
					hold, arrived := e.hold[n], e.arrived[n]
					e.mu.Unlock()
					if hold != nil {
						close(arrived)
						select {
						case <-hold:
						case <-r.Context().Done():
							return
						}
					}
					w = hijackRecorder{ResponseWriter: w, record: func(c net.Conn) {
						e.mu.Lock()
						e.conns = append(e.conns, c)
						e.mu.Unlock()
					}}
				}
				next.ServeHTTP(w, r)
			})
		},
	})
	return e
}

// holdConnect holds the nth connect request until release is called;
// arrived is closed once it came.
func (e *connectEndpoint) holdConnect(t *testing.T, n int) (arrived <-chan struct{}, release func()) {
	hold, arr := make(chan struct{}), make(chan struct{})
	e.mu.Lock()
	e.hold[n], e.arrived[n] = hold, arr
	e.mu.Unlock()
	var once sync.Once
	release = func() { once.Do(func() { close(hold) }) }
	t.Cleanup(release)
	return arr, release
}

// cut closes the nth websocket connection (1-based) under the server's
// feet: the client sees the connection drop, with no close frame.
func (e *connectEndpoint) cut(t *testing.T, n int) {
	t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.conns) < n {
		t.Fatalf("only %d connections", len(e.conns))
	}
	_ = e.conns[n-1].Close()
}

func (e *connectEndpoint) counts() (connects, mints int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.connects, e.mints
}

type hijackRecorder struct {
	http.ResponseWriter
	record func(net.Conn)
}

func (h hijackRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	hj, ok := h.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("not a hijacker")
	}
	c, rw, err := hj.Hijack()
	if err == nil {
		h.record(c)
	}
	return c, rw, err
}

func (h hijackRecorder) Flush() {
	if f, ok := h.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// goSub is a inngest.Subscriber with what it delivered.
type goSub struct {
	*inngest.Subscriber
	got chan inngest.Message
}

func subscribeGo(t *testing.T, base string, fetch func(context.Context) (inngest.Token, error)) *goSub {
	t.Helper()
	s := &goSub{got: make(chan inngest.Message, 100)}
	var err error
	s.Subscriber, err = inngest.Subscribe(ctxT(t), base, fetch, func(m inngest.Message) { s.got <- m },
		&inngest.SubscriberOptions{MinBackoff: 10 * time.Millisecond, MaxBackoff: 100 * time.Millisecond, Logger: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func (s *goSub) expect(t *testing.T, msg realtime.Message) {
	t.Helper()
	select {
	case m := <-s.got:
		if m.Topic != msg.Name || string(m.Data) != string(envelope(t, msg)) {
			t.Fatalf("received %s on %s, want %s on %s", m.Data, m.Topic, envelope(t, msg), msg.Name)
		}
	case <-time.After(wait):
		t.Fatalf("%s was not delivered", envelope(t, msg))
	}
}

func (s *goSub) expectNone(t *testing.T) {
	t.Helper()
	select {
	case m := <-s.got:
		t.Fatalf("unexpected delivery %s", m.Data)
	case <-time.After(quiet):
	}
}

func numberedMsg(r string, i int) realtime.Message {
	return realtime.Message{Room: r, Name: topic, RequestID: fmt.Sprint("msg-", i), Body: i, ID: fmt.Sprint("msg-", i)}
}

func TestSubscriberSurvivesAForcedReconnect(t *testing.T) {
	e := newConnectEndpoint(t)
	p := newInngest(t, inngest.Options{BaseURL: e.URL(), SigningKey: e.Key, Retry: fastRetry(3)})
	r := room("reconnect")
	sub := subscribeGo(t, p.BaseURL(), p.TokenFunc(r, topic))
	if err := e.WaitSubscribed(ctxT(t), r, topic, 1); err != nil {
		t.Fatal(err)
	}
	first := numberedMsg(r, 0)
	if err := p.Publish(ctxT(t), first); err != nil {
		t.Fatal(err)
	}
	sub.expect(t, first)

	e.cut(t, 1)
	if err := e.WaitSubscribed(ctxT(t), r, topic, 2); err != nil {
		t.Fatalf("the subscriber did not come back: %v", err)
	}
	// After the server subscribed the new connection, everything arrives,
	// in order, once.
	for i := 1; i <= 10; i++ {
		if err := p.Publish(ctxT(t), numberedMsg(r, i)); err != nil {
			t.Fatal(err)
		}
	}
	for i := 1; i <= 10; i++ {
		sub.expect(t, numberedMsg(r, i))
	}
	sub.expectNone(t)
	if connects, mints := e.counts(); connects != 2 || mints != 1 {
		t.Errorf("%d connections and %d tokens minted, want 2 connections on the one token, still valid", connects, mints)
	}
	if sub.Dropped() != 0 {
		t.Errorf("%d messages dropped", sub.Dropped())
	}
}

// Inngest Realtime keeps no history: a message the server fans out while
// the subscriber is away is not delivered when it comes back.
func TestSubscriberLosesWhatIsPublishedWhileDisconnected(t *testing.T) {
	e := newConnectEndpoint(t)
	p := newInngest(t, inngest.Options{BaseURL: e.URL(), SigningKey: e.Key, Retry: fastRetry(3)})
	r := room("gap")
	sub := subscribeGo(t, p.BaseURL(), p.TokenFunc(r, topic))
	if err := e.WaitSubscribed(ctxT(t), r, topic, 1); err != nil {
		t.Fatal(err)
	}
	// A witness that stays connected: once it has a message, the server
	// has fanned that message out (to the connections subscribed then).
	witness := mustSubscribeInngest(t, e.Server, r, topic) // subscription 2
	arrived, release := e.holdConnect(t, 3)                // the subscriber's reconnection
	e.cut(t, 1)
	select {
	case <-arrived: // the subscriber is reconnecting; the server holds it
	case <-time.After(wait):
		t.Fatal("the subscriber did not try to reconnect")
	}
	lost := numberedMsg(r, 1)
	if err := p.Publish(ctxT(t), lost); err != nil {
		t.Fatal(err)
	}
	// The fan-out is asynchronous: a message accepted just before the
	// new connection is subscribed may still reach it. Only once the
	// witness has it is it surely gone for the subscriber.
	expectDelivered(t, "witness", witness, envelope(t, lost))
	release()
	if err := e.WaitSubscribed(ctxT(t), r, topic, 3); err != nil {
		t.Fatal(err)
	}
	after := numberedMsg(r, 2)
	if err := p.Publish(ctxT(t), after); err != nil {
		t.Fatal(err)
	}
	sub.expect(t, after) // the first thing delivered: the gap is not replayed
	sub.expectNone(t)
}

func TestSubscriberRecoversFromAnExpiredToken(t *testing.T) {
	e := newConnectEndpoint(t)
	p := newInngest(t, inngest.Options{BaseURL: e.URL(), SigningKey: e.Key})
	r := room("expired-first")
	// A token that expired, as one kept too long would be.
	jwt := serverJWT(t, e.Server, r, -time.Minute, topic)
	expired := inngest.Token{JWT: jwt, Channel: r, Topics: []string{topic}, Expires: jwtExp(t, jwt)}
	var fetches atomic.Int32
	sub := subscribeGo(t, p.BaseURL(), func(ctx context.Context) (inngest.Token, error) {
		if fetches.Add(1) == 1 {
			return expired, nil
		}
		return p.SubscriptionToken(ctx, r, []string{topic})
	})
	if err := e.WaitSubscribed(ctxT(t), r, topic, 1); err != nil {
		t.Fatal(err)
	}
	msg := readyMsg(r)
	if err := p.Publish(ctxT(t), msg); err != nil {
		t.Fatal(err)
	}
	sub.expect(t, msg)
	if connects, _ := e.counts(); connects != 2 || fetches.Load() != 2 {
		t.Errorf("%d connects and %d fetches, want 2 of each: the expired token refused, a new one used", connects, fetches.Load())
	}
}
