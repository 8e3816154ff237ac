package inngest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/bits"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/zap"

	"github.com/coursebuilder/realtime-go/internal/httpx"
	"github.com/coursebuilder/realtime-go/realtime"
)

// Defaults of [SubscriberOptions].
const (
	defaultMinBackoff  = 100 * time.Millisecond
	defaultMaxBackoff  = 10 * time.Second
	defaultDialTimeout = 10 * time.Second
	defaultReadLimit   = 4 << 20
	defaultQueueSize   = 1024
)

// closeTimeout bounds the close handshake of one connection; past it the
// connection is cut.
const closeTimeout = time.Second

// connectPath is the route of Inngest Realtime's websocket, under the base
// URL.
const connectPath = "/v1/realtime/connect"

// Message is one "data" message delivered by Inngest Realtime: what a
// provider published to a channel and topic.
type Message struct {
	// Channel and Topic are what the message was published to.
	Channel string
	Topic   string
	// Data is the published payload as the server sent it: for messages
	// published by Provider, the envelope
	// {"body":…,"requestId":…,"name":…} (see realtime.DecodeEnvelope).
	Data json.RawMessage
	// CreatedAt is when the server received the publish; zero if the
	// server did not say.
	CreatedAt time.Time
	// RunID is the Inngest function run that published it, if any.
	RunID string
}

// SubscriberOptions configures [Subscribe]. A nil *SubscriberOptions means
// every default.
type SubscriberOptions struct {
	// HTTPClient performs the websocket handshakes. Its transport must not
	// negotiate HTTP/2. Defaults to a client of the subscriber's own. A
	// client given here is not changed: the subscriber dials with a shallow
	// copy of it that follows no redirect.
	HTTPClient *http.Client
	// MinBackoff is the delay before the second of several reconnection
	// attempts in a row (the first one after a connection that was up for
	// MaxBackoff or longer is immediate). Delays double up to MaxBackoff,
	// each jittered down by up to half. Defaults to 100ms.
	MinBackoff time.Duration
	// MaxBackoff caps the delay between reconnection attempts. Defaults to 10s.
	MaxBackoff time.Duration
	// DialTimeout bounds one websocket handshake. Defaults to 10s.
	DialTimeout time.Duration
	// ReadLimit bounds one message; a larger one ends the connection,
	// which is then reopened. Defaults to 4 MiB; Inngest
	// accepts publishes of up to 512 KiB.
	ReadLimit int64
	// QueueSize bounds the messages received but not yet handled. The
	// connection is read continuously whatever the handler does, so that
	// the server's pings are answered; when the handler falls this far
	// behind, new messages are dropped and counted (see
	// [Subscriber.Dropped]). Defaults to 1024.
	QueueSize int
	// TokenMargin is how long before a token expires the subscriber gets a
	// new one for its next connection, so that the token it dials with has
	// at least that long to go; a token that lives less than twice the
	// margin is replaced half way through its life instead. Until then the
	// subscriber reconnects with the token it holds. Defaults to 10s.
	TokenMargin time.Duration
	// TokenTimeout bounds one call of the token function. Defaults to 30s.
	TokenTimeout time.Duration
	// Logger receives connection, reconnection and drop diagnostics; never
	// a token. Defaults to zap.NewNop().
	Logger *zap.Logger
}

// Subscriber is a Go subscription to Inngest Realtime that survives
// reconnections; see [Subscribe].
type Subscriber struct {
	wsURL     string
	tokens    *tokenCache // used by the dialing goroutine only
	handler   func(Message)
	client    *http.Client
	ownClient bool
	minB      time.Duration
	maxB      time.Duration
	dialTO    time.Duration
	readLimit int64
	queueSize int
	log       *zap.Logger

	ctx       context.Context // ends at Close
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once

	qmu       sync.Mutex
	queue     []Message
	qnotify   chan struct{}
	dropped   atomic.Uint64
	misrouted atomic.Uint64
}

// Subscribe connects to Inngest Realtime at baseURL (the Inngest API base
// URL, such as Provider.BaseURL(); the websocket is at /v1/realtime/connect
// under it) with a token that token returns, and calls handler with every
// "data" message of the token's channel and topics, in the order they
// arrive, one at a time, from a goroutine of the subscriber's own. Other
// kinds of messages (pings, streams) are not delivered.
//
// A "data" message whose channel is not the channel of the connection's
// token (Token.Channel), or whose topic is not one of its topics
// (Token.Topics), is dropped and counted (see
// [Subscriber.Misrouted]), never delivered: the Inngest server routes by an
// unseeded 64-bit hash of the channel, so it can deliver another channel's
// messages to a token whose channel collides with it. A token without a
// channel or topics therefore delivers nothing; tokens of
// [Provider.SubscriptionToken] (and so of [Provider.TokenFunc]) always have
// both.
//
// token is called for the first connection and whenever the token held is
// about to expire (see SubscriberOptions.TokenMargin) or was refused, one
// call at a time, with a context that ends after
// SubscriberOptions.TokenTimeout, at Close, and for the first connection
// with ctx: [Provider.TokenFunc] mints with a provider; a function of the
// caller's own can ask an app's token endpoint (package tokens). Its error,
// a panic or a token without a JWT fails that connection attempt.
//
// Subscribe returns once the first connection is open, retrying with
// backoff until ctx ends; it fails at once when the failure will not pass
// by itself (the token cannot be minted because the request is invalid or
// the key is refused, or Inngest refuses a freshly fetched token). ctx
// bounds only that first connection: the subscription then lives until
// Close.
//
// From then on the subscriber reconnects, with the token it holds while it
// is fresh, whenever the server sends a "closing" message, and whenever the
// connection drops; when Inngest refuses the token (it expired, say) it asks
// token for a new one. An open connection is not reopened when its token expires: Inngest
// checks a token only when a connection opens.
//
// Inngest Realtime keeps no history: messages published while the
// subscriber is disconnected, including during the handshake of a
// reconnection until the server has subscribed the new connection, are
// lost, and nothing on the wire can recover them. What the subscriber
// guarantees is that it delivers every message the server sends it, in
// the order sent, once (it never has two connections open, so a
// reconnection does not duplicate), unless the handler falls QueueSize
// messages behind.
func Subscribe(ctx context.Context, baseURL string, token func(context.Context) (Token, error), handler func(Message), opts *SubscriberOptions) (*Subscriber, error) {
	if token == nil || handler == nil {
		return nil, errors.New("tokens: Subscribe needs a token function and a handler")
	}
	wsURL, err := connectURL(baseURL)
	if err != nil {
		return nil, err
	}
	var o SubscriberOptions
	if opts != nil {
		o = *opts
	}
	s := &Subscriber{
		wsURL:     wsURL,
		tokens:    newTokenCache(token, o.TokenMargin, o.TokenTimeout),
		handler:   handler,
		client:    o.HTTPClient,
		minB:      o.MinBackoff,
		maxB:      o.MaxBackoff,
		dialTO:    o.DialTimeout,
		readLimit: o.ReadLimit,
		queueSize: o.QueueSize,
		log:       o.Logger,
		qnotify:   make(chan struct{}, 1),
	}
	if s.client == nil {
		s.client, s.ownClient = newDialClient(), true
	}
	// A handshake never follows a redirect: it would carry the token
	// wherever Location points. A user's client is copied, not changed.
	s.client = httpx.NoRedirects(s.client)
	if s.minB <= 0 {
		s.minB = defaultMinBackoff
	}
	if s.maxB <= 0 {
		s.maxB = defaultMaxBackoff
	}
	s.maxB = max(s.maxB, s.minB)
	if s.dialTO <= 0 {
		s.dialTO = defaultDialTimeout
	}
	if s.readLimit <= 0 {
		s.readLimit = defaultReadLimit
	}
	if s.queueSize <= 0 {
		s.queueSize = defaultQueueSize
	}
	if s.log == nil {
		s.log = zap.NewNop()
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())

	c, err := s.connectFirst(ctx)
	if err != nil {
		s.cancel()
		if s.ownClient {
			s.client.CloseIdleConnections()
		}
		return nil, err
	}
	s.wg.Add(2)
	go s.dispatch()
	go s.run(c)
	return s, nil
}

// connectURL turns an http(s) or ws(s) base URL into the websocket URL.
func connectURL(base string) (string, error) {
	u, err := url.Parse(base)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("tokens: %q is not a valid base URL", base)
	}
	switch u.Scheme {
	case "http", "ws":
		u.Scheme = "ws"
	case "https", "wss":
		u.Scheme = "wss"
	default:
		return "", fmt.Errorf("tokens: base URL scheme %q is not http(s) or ws(s)", u.Scheme)
	}
	u.Path = strings.TrimRight(u.Path, "/") + connectPath
	u.RawPath, u.RawQuery, u.Fragment = "", "", ""
	return u.String(), nil
}

// newDialClient returns a client for websocket handshakes: HTTP/1.1 only
// (a custom DialContext keeps net/http from negotiating HTTP/2), bounded
// dial and TLS handshake.
func newDialClient() *http.Client {
	return &http.Client{Transport: &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		DialContext:         (&net.Dialer{Timeout: defaultDialTimeout, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout: defaultDialTimeout,
	}}
}

// dialError is a failed connection attempt.
type dialError struct {
	status int // HTTP status of a refused handshake; 0 if none
	err    error
}

func (e *dialError) Error() string { return e.err.Error() }
func (e *dialError) Unwrap() error { return e.err }

// permanent reports whether retrying cannot help without a change
// elsewhere: the token cannot be minted as asked, or a handshake was
// refused with a client error other than a refused token, or redirected
// (never followed: it would carry the token elsewhere).
func permanent(err error) bool {
	var de *dialError
	if errors.As(err, &de) {
		if de.status >= 300 && de.status < 400 {
			return true
		}
		return de.status >= 400 && de.status < 500 && !refusedToken(de.status) &&
			de.status != http.StatusRequestTimeout && de.status != http.StatusTooManyRequests
	}
	return errors.Is(err, realtime.ErrInvalidMessage) ||
		errors.Is(err, realtime.ErrRejected) || errors.Is(err, realtime.ErrUnauthorized) ||
		errors.Is(err, ErrInvalidToken) || errors.Is(err, realtime.ErrNotConfigured)
}

func refusedToken(status int) bool {
	return status == http.StatusUnauthorized || status == http.StatusForbidden
}

// conn is one open connection and the token it was opened with.
type conn struct {
	ws  *websocket.Conn
	tok Token
}

// dial opens one connection with the token held or a new one. A token
// Inngest refuses is invalidated, so that the next attempt fetches a new one.
func (s *Subscriber) dial(ctx context.Context) (conn, error) {
	tok, err := s.tokens.get(ctx)
	if err != nil {
		return conn{}, err
	}
	dctx, cancel := context.WithTimeout(ctx, s.dialTO)
	defer cancel()
	ws, resp, err := websocket.Dial(dctx, s.wsURL, &websocket.DialOptions{
		HTTPClient: s.client,
		HTTPHeader: http.Header{"Authorization": {"Bearer " + tok.JWT}},
	})
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		if refusedToken(status) {
			s.tokens.invalidate(tok)
		}
		return conn{}, &dialError{status: status, err: fmt.Errorf("tokens: connect: %w", err)}
	}
	ws.SetReadLimit(s.readLimit)
	return conn{ws: ws, tok: tok}, nil
}

// connectFirst opens the first connection, retrying under ctx. When ctx
// ends first, the error joins the last failure and ctx's error.
func (s *Subscriber) connectFirst(ctx context.Context) (conn, error) {
	var last error
	giveUp := func(err error) error {
		if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
			err = errors.Join(err, cerr)
		}
		if last != nil && last != err {
			err = errors.Join(last, err)
		}
		return fmt.Errorf("tokens: subscribe: %w", err)
	}
	refused := false
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			if err := sleep(ctx, s.backoff(attempt)); err != nil {
				return conn{}, giveUp(err)
			}
		}
		c, err := s.dial(ctx)
		if err == nil {
			return c, nil
		}
		var de *dialError
		wasRefused := errors.As(err, &de) && refusedToken(de.status)
		if permanent(err) || (wasRefused && refused) {
			return conn{}, fmt.Errorf("tokens: subscribe: %w", err)
		}
		if ctx.Err() != nil {
			if last == nil || !errors.Is(err, ctx.Err()) {
				last = err
			}
			return conn{}, giveUp(ctx.Err())
		}
		refused, last = wasRefused, err
		s.log.Info("tokens: connecting to inngest realtime failed; retrying", zap.Int("attempt", attempt+1), zap.Error(err))
	}
}

// backoff is the delay before reconnection attempt n (0-based): none for
// the first, then MinBackoff doubling up to MaxBackoff, each reduced by a
// random fraction of up to half.
func (s *Subscriber) backoff(n int) time.Duration {
	if n <= 0 {
		return 0
	}
	d := s.maxB
	if shift := n - 1; shift < 62-bits.Len64(uint64(s.minB)) {
		d = min(s.maxB, s.minB<<shift)
	}
	return d/2 + rand.N(d/2+1)
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// run serves connections one after the other until Close.
func (s *Subscriber) run(c conn) {
	defer s.wg.Done()
	attempt := 0
	for {
		opened := time.Now()
		why := s.serve(c)
		if s.ctx.Err() != nil {
			return
		}
		if time.Since(opened) >= s.maxB {
			attempt = 0
		}
		s.log.Info("tokens: inngest realtime connection ended; reconnecting", zap.String("reason", why))
		for {
			if err := sleep(s.ctx, s.backoff(attempt)); err != nil {
				return
			}
			attempt++
			var err error
			c, err = s.dial(s.ctx)
			if err == nil {
				break
			}
			if s.ctx.Err() != nil {
				return
			}
			s.log.Warn("tokens: reconnecting to inngest realtime failed", zap.Int("attempt", attempt), zap.Error(err))
		}
	}
}

// wireMessage is a frame of /v1/realtime/connect.
type wireMessage struct {
	Kind      string          `json:"kind"`
	Channel   string          `json:"channel"`
	Topic     string          `json:"topic"`
	Data      json.RawMessage `json:"data"`
	CreatedAt json.RawMessage `json:"created_at"`
	RunID     string          `json:"run_id"`
}

// serve reads ws until it ends and says why. It reads without pause, so
// that pings are answered and the server never blocks on this
// subscriber; messages go to the queue. A "closing" message or Close
// starts a close handshake, during which reading goes on until the
// connection ends, cut after closeTimeout.
func (s *Subscriber) serve(c conn) string {
	ws := c.ws
	readCtx, cancelRead := context.WithCancel(context.Background())
	defer cancelRead()

	var (
		closeOnce sync.Once
		cut       *time.Timer
	)
	startClose := func() {
		closeOnce.Do(func() {
			s.wg.Add(1) // run holds a count, so Close's Wait cannot have returned
			go func() {
				defer s.wg.Done()
				_ = ws.Close(websocket.StatusNormalClosure, "")
			}()
			cut = time.AfterFunc(closeTimeout, cancelRead)
		})
	}
	stop := context.AfterFunc(s.ctx, startClose)

	why := "closed"
	for {
		typ, b, err := ws.Read(readCtx)
		if err != nil {
			if why == "closed" && s.ctx.Err() == nil {
				why = "dropped: " + err.Error()
			}
			break
		}
		if typ != websocket.MessageText {
			continue
		}
		var m wireMessage
		if err := json.Unmarshal(b, &m); err != nil {
			s.log.Debug("tokens: ignoring a frame that is not a realtime message", zap.Int("bytes", len(b)))
			continue
		}
		switch m.Kind {
		case "data":
			if m.Channel != c.tok.Channel || !slices.Contains(c.tok.Topics, m.Topic) {
				s.misroute(m, c.tok)
				continue
			}
			s.enqueue(m)
		case "closing":
			why = "the server is closing"
			startClose()
		}
	}

	stop()
	closeOnce.Do(func() { _ = ws.CloseNow() }) // no handshake started: cut
	if cut != nil {
		cut.Stop()
	}
	return why
}

// misroute counts and logs, at most at powers of two, a data message that
// is not for the token's channel and topics. The payload is not logged.
func (s *Subscriber) misroute(m wireMessage, tok Token) {
	n := s.misrouted.Add(1)
	if n&(n-1) == 0 {
		s.log.Warn("tokens: dropped a message for another channel or topic than the token's",
			zap.String("channel", m.Channel), zap.String("topic", m.Topic),
			zap.String("token_channel", tok.Channel), zap.Uint64("misrouted_total", n))
	}
}

// enqueue queues a data message for the handler, or drops it when the
// queue is full.
func (s *Subscriber) enqueue(m wireMessage) {
	msg := Message{Channel: m.Channel, Topic: m.Topic, Data: m.Data, RunID: m.RunID}
	if len(m.CreatedAt) > 0 {
		_ = msg.CreatedAt.UnmarshalJSON(m.CreatedAt)
	}
	s.qmu.Lock()
	full := len(s.queue) >= s.queueSize
	if !full {
		s.queue = append(s.queue, msg)
	}
	s.qmu.Unlock()
	if full {
		n := s.dropped.Add(1)
		if n&(n-1) == 0 { // 1, 2, 4, 8, …: a trail without a flood
			s.log.Warn("tokens: the handler is too slow; message dropped",
				zap.Uint64("dropped_total", n), zap.Int("queue_size", s.queueSize))
		}
		return
	}
	select {
	case s.qnotify <- struct{}{}:
	default:
	}
}

// dispatch calls the handler with each queued message until Close.
func (s *Subscriber) dispatch() {
	defer s.wg.Done()
	for {
		s.qmu.Lock()
		if len(s.queue) == 0 {
			s.qmu.Unlock()
			select {
			case <-s.qnotify:
				continue
			case <-s.ctx.Done():
				return
			}
		}
		m := s.queue[0]
		s.queue[0] = Message{}
		s.queue = s.queue[1:]
		s.qmu.Unlock()
		if s.ctx.Err() != nil {
			return
		}
		s.handle(m)
	}
}

func (s *Subscriber) handle(m Message) {
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("tokens: subscriber handler panicked", zap.Any("panic", p),
				zap.String("channel", m.Channel), zap.String("topic", m.Topic))
		}
	}()
	s.handler(m)
}

// Dropped returns how many messages were dropped because the handler fell
// QueueSize messages behind. Misrouted messages are not counted here.
func (s *Subscriber) Dropped() uint64 { return s.dropped.Load() }

// Misrouted returns how many "data" messages were dropped because their
// channel was not the connection's token's channel or their topic not one
// of its topics (see [Subscribe]). Anything above zero means that the
// server delivered another channel's messages: with keyed channels that
// does not happen, so it is worth an alert.
func (s *Subscriber) Misrouted() uint64 { return s.misrouted.Load() }

// Close closes the connection (a normal websocket close, cut after a
// second), stops reconnecting, drops the messages not yet handled and
// waits for every goroutine of the subscriber, including a handler call in
// progress, to return. Do not call it from the handler. It is safe to call
// more than once.
func (s *Subscriber) Close() error {
	s.closeOnce.Do(func() {
		s.cancel()
		s.wg.Wait()
		s.qmu.Lock()
		s.queue = nil
		s.qmu.Unlock()
		if s.ownClient {
			s.client.CloseIdleConnections()
		}
	})
	return nil
}
