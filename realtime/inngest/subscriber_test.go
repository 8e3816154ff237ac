package inngest_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/coursebuilder/realtime-go/internal/transport"
	"github.com/coursebuilder/realtime-go/realtime"
	"github.com/coursebuilder/realtime-go/realtime/inngest"
)

// The subscriber's unit tests run against a fake of /v1/realtime/connect
// that the test drives frame by frame; harness/e2e runs the subscriber
// against the real Inngest endpoint.

const patience = 5 * time.Second

// wsServer accepts websockets whose bearer token it accepts and hands each
// connection to the test.
type wsServer struct {
	*httptest.Server
	t      *testing.T
	accept func(n int, jwt string) int // status for the nth handshake; 0 accepts
	conns  chan *serverConn
	stop   chan struct{}
	wg     sync.WaitGroup

	mu    sync.Mutex
	auths []string
	paths []string
}

// serverConn is the server side of one subscription.
type serverConn struct {
	ws     *websocket.Conn
	closed context.Context // done once the client's close or a read error ended it
}

func newWSServer(t *testing.T, accept func(n int, jwt string) int) *wsServer {
	t.Helper()
	s := &wsServer{t: t, accept: accept, conns: make(chan *serverConn, 16), stop: make(chan struct{})}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(func() {
		close(s.stop)
		s.wg.Wait()
		s.Close()
	})
	return s
}

func (s *wsServer) serve(w http.ResponseWriter, r *http.Request) {
	s.wg.Add(1)
	defer s.wg.Done()
	jwt := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	s.mu.Lock()
	s.auths = append(s.auths, r.Header.Get("Authorization"))
	s.paths = append(s.paths, r.URL.Path)
	n := len(s.auths)
	s.mu.Unlock()
	if s.accept != nil {
		if status := s.accept(n, jwt); status != 0 {
			http.Error(w, `{"error":"Not authenticated"}`, status)
			return
		}
	}
	ws, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	// Read in the background, as the real server does, so that pongs and
	// close frames are processed.
	c := &serverConn{ws: ws, closed: ws.CloseRead(context.Background())}
	s.conns <- c
	select {
	case <-c.closed.Done():
	case <-s.stop:
	}
	_ = ws.CloseNow()
}

func (s *wsServer) Auths() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.auths)
}

// next waits for the next accepted connection.
func (s *wsServer) next() *serverConn {
	s.t.Helper()
	select {
	case c := <-s.conns:
		return c
	case <-time.After(patience):
		s.t.Fatal("no connection came")
		return nil
	}
}

func (c *serverConn) send(t *testing.T, v any) {
	t.Helper()
	b, ok := v.([]byte)
	if !ok {
		var err error
		b, err = json.Marshal(v)
		require.NoError(t, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	require.NoError(t, c.ws.Write(ctx, websocket.MessageText, b))
}

func data(channel, topic string, payload string) map[string]any {
	return map[string]any{
		"kind": "data", "channel": channel, "topic": topic, "data": json.RawMessage(payload),
		"created_at": "2026-01-01T00:00:00.123Z", "env_id": "env", "run_id": "run_1",
	}
}

// inbox collects what a subscriber delivers.
type inbox struct {
	ch chan inngest.Message
}

func newInbox() *inbox { return &inbox{ch: make(chan inngest.Message, 1024)} }

func (b *inbox) handle(m inngest.Message) { b.ch <- m }

func (b *inbox) next(t *testing.T) inngest.Message {
	t.Helper()
	select {
	case m := <-b.ch:
		return m
	case <-time.After(patience):
		t.Fatal("nothing delivered")
		return inngest.Message{}
	}
}

func (b *inbox) none(t *testing.T) {
	t.Helper()
	select {
	case m := <-b.ch:
		t.Fatalf("unexpected delivery %s", m.Data)
	case <-time.After(50 * time.Millisecond):
	}
}

// tokenFunc is what Subscribe takes.
type tokenFunc = func(context.Context) (inngest.Token, error)

// numbered is a token function of tokens "jwt-1", "jwt-2", … for channel
// "vid_1" and topics "video.asset.ready" and "t", valid a minute, and the
// number of tokens it made.
func numbered(*testing.T) (tokenFunc, *atomic.Int32) {
	var n atomic.Int32
	return func(context.Context) (inngest.Token, error) {
		return inngest.Token{JWT: fmt.Sprintf("jwt-%d", n.Add(1)), Channel: "vid_1", Topics: []string{"video.asset.ready", "t"},
			Expires: time.Now().Add(time.Minute)}, nil
	}, &n
}

var fast = &inngest.SubscriberOptions{MinBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond}

func subscribe(t *testing.T, url string, src tokenFunc, h func(inngest.Message), opts *inngest.SubscriberOptions) *inngest.Subscriber {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	sub, err := inngest.Subscribe(ctx, url, src, h, opts)
	require.NoError(t, err)
	t.Cleanup(func() { _ = sub.Close() })
	return sub
}

func TestSubscriberDeliversDataMessagesInOrder(t *testing.T) {
	srv := newWSServer(t, nil)
	src, _ := numbered(t)
	in := newInbox()
	subscribe(t, srv.URL+"/", src, in.handle, fast)
	c := srv.next()

	c.send(t, map[string]any{"kind": "ping"})
	c.send(t, []byte("not json"))
	c.send(t, data("vid_1", "video.asset.ready", `{"body":1}`))
	c.send(t, map[string]any{"kind": "datastream-start", "channel": "vid_1", "topic": "ai.message", "data": "s1"})
	c.send(t, map[string]any{"kind": "chunk", "stream_id": "s1", "data": "x"})
	c.send(t, data("vid_1", "video.asset.ready", `{"body":2}`))
	c.send(t, map[string]any{"kind": "data", "channel": "vid_1", "topic": "t", "data": "text", "created_at": "garbage"})

	m := in.next(t)
	assert.Equal(t, inngest.Message{
		Channel: "vid_1", Topic: "video.asset.ready", Data: json.RawMessage(`{"body":1}`),
		CreatedAt: time.Date(2026, 1, 1, 0, 0, 0, 123e6, time.UTC), RunID: "run_1",
	}, m)
	assert.JSONEq(t, `{"body":2}`, string(in.next(t).Data))
	last := in.next(t)
	assert.Equal(t, `"text"`, string(last.Data))
	assert.True(t, last.CreatedAt.IsZero())
	in.none(t)

	assert.Equal(t, []string{"Bearer jwt-1"}, srv.Auths())
	assert.Equal(t, []string{"/v1/realtime/connect"}, srv.paths)
}

// TestSubscriberDropsMessagesForAnotherChannelOrTopic: the Inngest server
// routes by a 64-bit hash of the channel, so a token whose channel collides
// with another's receives that channel's messages. The subscriber delivers
// only its token's channel and topics, counts the rest and logs them, at
// powers of two, without their payload.
func TestSubscriberDropsMessagesForAnotherChannelOrTopic(t *testing.T) {
	srv := newWSServer(t, nil)
	src, _ := numbered(t)
	in := newInbox()
	core, logs := observer.New(zap.DebugLevel)
	opts := *fast
	opts.Logger = zap.New(core)
	sub := subscribe(t, srv.URL, src, in.handle, &opts)
	c := srv.next()

	c.send(t, data("vid_2", "video.asset.ready", `{"body":"secret-of-vid_2"}`))   // another channel
	c.send(t, data("vid_1", "video.asset.other", `{"body":"secret-of-a-topic"}`)) // another topic
	c.send(t, data("", "t", `{"body":"no channel"}`))
	c.send(t, data("vid_1", "t", `{"body":"mine"}`))

	// Frames of one connection are handled in order: once "mine" arrives
	// the three before it have been judged.
	assert.JSONEq(t, `{"body":"mine"}`, string(in.next(t).Data))
	in.none(t)
	assert.Equal(t, uint64(3), sub.Misrouted())
	assert.Equal(t, uint64(0), sub.Dropped())

	warned := logs.FilterMessageSnippet("another channel or topic").All()
	require.Len(t, warned, 2, "logged at the 1st and 2nd drop, not the 3rd")
	for _, e := range logs.All() {
		assert.NotContains(t, fmt.Sprint(e.ContextMap()), "secret-of", "a payload was logged")
	}
	assert.Equal(t, "vid_2", warned[0].ContextMap()["channel"])
}

func TestSubscriberReconnectsOnClosing(t *testing.T) {
	srv := newWSServer(t, nil)
	src, minted := numbered(t)
	in := newInbox()
	subscribe(t, srv.URL, src, in.handle, fast)
	first := srv.next()
	first.send(t, data("vid_1", "t", `1`))
	first.send(t, map[string]any{"kind": "closing"})

	second := srv.next()
	select {
	case <-first.closed.Done(): // the client closed the old connection
	case <-time.After(patience):
		t.Fatal("the old connection was not closed")
	}
	second.send(t, data("vid_1", "t", `2`))
	assert.Equal(t, `1`, string(in.next(t).Data))
	assert.Equal(t, `2`, string(in.next(t).Data))
	assert.Equal(t, []string{"Bearer jwt-1", "Bearer jwt-1"}, srv.Auths(), "the token was still good")
	assert.EqualValues(t, 1, minted.Load())
}

func TestSubscriberReconnectsWhenTheConnectionDrops(t *testing.T) {
	srv := newWSServer(t, nil)
	src, _ := numbered(t)
	in := newInbox()
	subscribe(t, srv.URL, src, in.handle, fast)
	for i := range 3 {
		c := srv.next()
		c.send(t, data("vid_1", "t", fmt.Sprint(i)))
		assert.Equal(t, fmt.Sprint(i), string(in.next(t).Data))
		_ = c.ws.CloseNow() // no close frame: a dropped connection
	}
	srv.next().send(t, data("vid_1", "t", `"after"`))
	assert.Equal(t, `"after"`, string(in.next(t).Data))
}

func TestSubscriberGetsANewTokenWhenInngestRefusesOne(t *testing.T) {
	var accepted atomic.Value
	accepted.Store("jwt-2")
	srv := newWSServer(t, func(_ int, jwt string) int {
		if jwt != accepted.Load().(string) {
			return http.StatusUnauthorized
		}
		return 0
	})
	src, _ := numbered(t)
	in := newInbox()
	subscribe(t, srv.URL, src, in.handle, fast)
	c := srv.next()
	assert.Equal(t, []string{"Bearer jwt-1", "Bearer jwt-2"}, srv.Auths())

	// Later, the token in hand is refused on a reconnection (it expired,
	// say): the subscriber asks for another.
	accepted.Store("jwt-3")
	_ = c.ws.CloseNow()
	srv.next().send(t, data("vid_1", "t", `3`))
	assert.Equal(t, `3`, string(in.next(t).Data))
	assert.Equal(t, []string{"Bearer jwt-1", "Bearer jwt-2", "Bearer jwt-2", "Bearer jwt-3"}, srv.Auths())
}

func TestSubscribeFailsAtOnceWhenRetryingCannotHelp(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // never reached
	defer cancel()
	in := newInbox()

	notFound := newWSServer(t, func(int, string) int { return http.StatusNotFound })
	src, _ := numbered(t)
	_, err := inngest.Subscribe(ctx, notFound.URL, src, in.handle, fast)
	assert.ErrorContains(t, err, "404")
	assert.Len(t, notFound.Auths(), 1)

	refused := newWSServer(t, func(int, string) int { return http.StatusUnauthorized })
	_, err = inngest.Subscribe(ctx, refused.URL, src, in.handle, fast)
	assert.ErrorContains(t, err, "401")
	assert.Len(t, refused.Auths(), 2, "one retry with a new token, then no more")

	badKey := func(context.Context) (inngest.Token, error) {
		return inngest.Token{}, transport.StatusError("inngest", http.StatusUnauthorized, "", 0)
	}
	_, err = inngest.Subscribe(ctx, notFound.URL, badKey, in.handle, fast)
	assert.ErrorIs(t, err, realtime.ErrUnauthorized)

	for _, base := range []string{"ftp://x", "::", "http://"} {
		_, err = inngest.Subscribe(ctx, base, src, in.handle, nil)
		assert.Error(t, err, base)
	}
	_, err = inngest.Subscribe(ctx, notFound.URL, nil, in.handle, nil)
	assert.Error(t, err)
}

func TestSubscribeRetriesTransientFailures(t *testing.T) {
	srv := newWSServer(t, func(n int, _ string) int {
		if n <= 2 {
			return http.StatusServiceUnavailable
		}
		return 0
	})
	src, _ := numbered(t)
	in := newInbox()
	subscribe(t, srv.URL, src, in.handle, fast)
	srv.next()
	assert.Len(t, srv.Auths(), 3)

	down := newWSServer(t, func(int, string) int { return http.StatusServiceUnavailable })
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := inngest.Subscribe(ctx, down.URL, src, in.handle, fast)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.ErrorContains(t, err, "503")
}

func TestSubscriberReadsWhileTheHandlerIsBusy(t *testing.T) {
	srv := newWSServer(t, nil)
	src, _ := numbered(t)
	release := make(chan struct{})
	var got []string
	var mu sync.Mutex
	sub := subscribe(t, srv.URL, src, func(m inngest.Message) {
		<-release
		mu.Lock()
		got = append(got, string(m.Data))
		mu.Unlock()
	}, &inngest.SubscriberOptions{QueueSize: 2})
	c := srv.next()
	for i := range 5 {
		c.send(t, data("vid_1", "t", fmt.Sprint(i)))
	}
	// The server's ping is answered although the handler is stuck: the
	// connection is read without pause.
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	require.NoError(t, c.ws.Ping(ctx))

	dropped := sub.Dropped()
	assert.True(t, dropped == 2 || dropped == 3, "dropped %d of 5 with one in the handler and two queued", dropped)
	close(release)
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return uint64(len(got)) == 5-dropped
	}, patience, time.Millisecond)
	mu.Lock()
	assert.True(t, slices.IsSorted(got), "in order: %v", got)
	mu.Unlock()
}

func TestSubscriberContainsHandlerPanics(t *testing.T) {
	srv := newWSServer(t, nil)
	src, _ := numbered(t)
	in := newInbox()
	core, logs := observer.New(zap.ErrorLevel)
	subscribe(t, srv.URL, src, func(m inngest.Message) {
		if string(m.Data) == `"boom"` {
			panic("handler bug")
		}
		in.handle(m)
	}, &inngest.SubscriberOptions{Logger: zap.New(core)})
	c := srv.next()
	c.send(t, data("vid_1", "t", `"boom"`))
	c.send(t, data("vid_1", "t", `"fine"`))
	assert.Equal(t, `"fine"`, string(in.next(t).Data))
	assert.Equal(t, 1, logs.FilterMessage("tokens: subscriber handler panicked").Len())
}

func TestSubscriberCloseEndsEverything(t *testing.T) {
	srv := newWSServer(t, nil)
	src, _ := numbered(t)
	inHandler := make(chan struct{})
	release := make(chan struct{})
	sub := subscribe(t, srv.URL, src, func(inngest.Message) {
		close(inHandler)
		<-release
	}, fast)
	c := srv.next()
	c.send(t, data("vid_1", "t", `1`))
	<-inHandler

	closed := make(chan struct{})
	go func() { _ = sub.Close(); close(closed) }()
	select {
	case <-c.closed.Done(): // a close frame reached the server
	case <-time.After(patience):
		t.Fatal("the connection stayed open")
	}
	select {
	case <-closed:
		t.Fatal("Close returned while the handler was running")
	case <-time.After(20 * time.Millisecond):
	}
	close(release)
	<-closed
	assert.NoError(t, sub.Close(), "twice")
	// goleak in TestMain checks that nothing is left running.
}

func TestSubscriberCloseWhileReconnecting(t *testing.T) {
	var down atomic.Bool
	srv := newWSServer(t, func(int, string) int {
		if down.Load() {
			return http.StatusBadGateway
		}
		return 0
	})
	src, _ := numbered(t)
	sub := subscribe(t, srv.URL, src, func(inngest.Message) {}, &inngest.SubscriberOptions{MinBackoff: time.Hour})
	down.Store(true)
	_ = srv.next().ws.CloseNow()
	require.Eventually(t, func() bool { return len(srv.Auths()) >= 2 }, patience, time.Millisecond)
	// The subscriber now waits an hour before the next attempt.
	done := make(chan struct{})
	go func() { _ = sub.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(patience):
		t.Fatal("Close waited for the backoff")
	}
}

func TestSubscriberLogsNoToken(t *testing.T) {
	srv := newWSServer(t, func(n int, _ string) int {
		if n == 1 {
			return http.StatusUnauthorized
		}
		return 0
	})
	src, _ := numbered(t)
	core, logs := observer.New(zap.DebugLevel)
	subscribe(t, srv.URL, src, func(inngest.Message) {}, &inngest.SubscriberOptions{Logger: zap.New(core), MinBackoff: time.Millisecond})
	_ = srv.next().ws.CloseNow()
	srv.next()
	require.NotZero(t, logs.Len())
	for _, e := range logs.All() {
		assert.NotContains(t, fmt.Sprint(e.Message, e.ContextMap()), "jwt-")
	}
}

func TestSubscriberErrorsAreClassified(t *testing.T) {
	in := newInbox()
	src := func(context.Context) (inngest.Token, error) {
		return inngest.Token{}, errors.New("no route to the token endpoint")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := inngest.Subscribe(ctx, "http://127.0.0.1:1", src, in.handle, fast)
	assert.ErrorIs(t, err, context.DeadlineExceeded, "a fetch failure of unknown kind is retried until ctx ends")
	assert.ErrorContains(t, err, "no route to the token endpoint")
}

// TestSubscribeNeverFollowsARedirect: a handshake answered 307 (or 301)
// fails at once and the token never reaches where Location points, even
// with a client of the caller's that would follow it.
func TestSubscribeNeverFollowsARedirect(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // never reached
	defer cancel()
	target := newWSServer(t, func(int, string) int { return 0 })
	for _, status := range []int{http.StatusMovedPermanently, http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
		redirect := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, target.URL+r.URL.RequestURI(), status)
		}))
		defer redirect.Close()
		for _, client := range []*http.Client{nil, {}} {
			src, _ := numbered(t)
			_, err := inngest.Subscribe(ctx, redirect.URL, src, newInbox().handle, &inngest.SubscriberOptions{
				HTTPClient: client, MinBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond,
			})
			assert.ErrorContains(t, err, strconv.Itoa(status), "status %d, own client %v", status, client == nil)
		}
	}
	assert.Empty(t, target.Auths(), "the redirect target received a handshake with a token")
}

// TestSubscriberBoundsTokenCalls: a call of the token function that does
// not return is given up after SubscriberOptions.TokenTimeout and tried
// again; one in progress during a reconnection ends at Close.
func TestSubscriberBoundsTokenCalls(t *testing.T) {
	srv := newWSServer(t, nil)
	var calls atomic.Int32
	left := make(chan time.Duration, 8)
	hanging := make(chan struct{})
	ended := make(chan error, 1)
	token := func(ctx context.Context) (inngest.Token, error) {
		dl, ok := ctx.Deadline()
		if !ok {
			dl = time.Now().Add(time.Hour)
		}
		left <- time.Until(dl)
		switch calls.Add(1) {
		case 1: // the first connection's first try: never answers
			<-ctx.Done()
			return inngest.Token{}, ctx.Err()
		case 3: // the reconnection's: hangs until Close
			close(hanging)
			<-ctx.Done()
			ended <- ctx.Err()
			return inngest.Token{}, ctx.Err()
		}
		// Already expired, so that a reconnection asks for another.
		return inngest.Token{JWT: "jwt", Channel: "vid_1", Topics: []string{"t"}, Expires: time.Now().Add(-time.Second)}, nil
	}
	opts := *fast
	opts.TokenTimeout = 20 * time.Millisecond
	sub := subscribe(t, srv.URL, token, newInbox().handle, &opts)
	c := srv.next()
	assert.EqualValues(t, 2, calls.Load(), "the call that timed out was tried again")
	assert.LessOrEqual(t, <-left, 20*time.Millisecond, "bounded by TokenTimeout")

	_ = c.ws.CloseNow()
	<-hanging
	require.NoError(t, sub.Close())
	assert.ErrorIs(t, <-ended, context.Canceled, "Close ended the call in progress")
}
