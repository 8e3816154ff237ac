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
	"github.com/coursebuilder/realtime-go/replay"
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
	// {"body":…,"requestId":…,"name":…,"id":…} with "seq" and "epoch" when
	// a replay log numbered it (see realtime.DecodeEnvelope).
	Data json.RawMessage
	// CreatedAt is when the server received the publish (for a message a
	// catch-up brought, when the replay log stored it); zero if unknown.
	CreatedAt time.Time
	// RunID is the Inngest function run that published it, if any.
	RunID string
	// ID, Seq and Epoch are the envelope's "id", "seq" and "epoch"
	// (realtime.Message's fields of the same names); empty and zero when
	// Data is not an envelope or the message was not numbered.
	ID         string
	Seq, Epoch uint64
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

	// CatchUp turns on gap repair (see "Gap repair" at [Subscribe]): it
	// returns the messages of the subscriber's room with seq above after,
	// as [replay.Log.After] does for that room (the Broadcast's History, or
	// the app's catch-up endpoint, package tokens), a page of any size. It
	// may leave out names the token does not cover, as the catch-up
	// endpoint does, provided a page it returns empty means that nothing
	// the subscriber may see is left up to Page.Head. Calls come from one
	// goroutine at a time, and must return when ctx ends (Close waits for
	// them). Nil means no repair: messages are delivered as they arrive,
	// and only a second copy of an id is dropped.
	CatchUp func(ctx context.Context, after uint64) (replay.Page, error)
	// CatchUpTimeout bounds one CatchUp call. Defaults to 10s.
	CatchUpTimeout time.Duration
	// After, with CatchUp, is the seq to deliver after: a program that
	// saved the Seq and Epoch of the last message it handled resumes after
	// them. Zero means from now: the first catch-up, before Subscribe
	// returns, only learns where the room stands (it asks after
	// math.MaxUint64, so that the page holds no message).
	After uint64
	// AfterEpoch is the epoch of After; when the room's epoch is another,
	// the messages after After are lost (see OnReset). Zero means the
	// room's current epoch.
	AfterEpoch uint64
	// Topic maps an event name to its topic, to tell whether the token
	// covers a message a catch-up or Offer brought, and to fill its
	// Message.Topic. Defaults to the name itself, as the default [Mapping]
	// does; set it to the provider's [Provider.Topic] when its Mapping
	// has a Topic function.
	Topic func(name string) (string, error)
	// OnReset, with CatchUp, is called from the handler's goroutine, in
	// order with the messages, when messages were lost that no catch-up
	// can bring back (see [Subscriber.Resets]): the messages before the
	// call and those after it may have others missing between them, so a
	// program reloads the state it shows. Nil means the handler is not
	// told; Resets counts either way.
	OnReset func()
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
	catchUp   func(context.Context, uint64) (replay.Page, error)
	catchUpTO time.Duration
	topic     func(string) (string, error)
	onReset   func()

	ctx       context.Context // ends at Close
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once

	// mu guards the handler's queue and the seq order.
	mu      sync.Mutex
	queue   []queued
	qnotify chan struct{} // a message was queued
	qspace  chan struct{} // a message left the queue
	tok     Token         // the newest connection's: its channel and topics for catch-up and Offer
	seen    idSet         // ids delivered lately
	// epoch and last are the cursor: the epoch of the room's numbering (0
	// until known) and the last seq delivered or passed.
	epoch, last uint64
	held        []held        // numbered messages waiting for their turn, by epoch and seq
	fetchWanted bool          // a catch-up is due
	busy        bool          // the repair goroutine is catching up
	kick        chan struct{} // wakes the repair goroutine

	dropped    atomic.Uint64
	misrouted  atomic.Uint64
	duplicates atomic.Uint64
	repaired   atomic.Uint64
	resets     atomic.Uint64
}

// queued is one entry of the handler's queue: a message, or the OnReset
// call.
type queued struct {
	msg   Message
	reset bool
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
// Subscribe returns once the first connection is open (and, with
// SubscriberOptions.CatchUp and no After, the first catch-up answered),
// retrying with backoff until ctx ends; it fails at once when the failure
// will not pass by itself (the token cannot be minted because the request
// is invalid or the key is refused, or Inngest refuses a freshly fetched
// token). ctx bounds only that first connection: the subscription then
// lives until Close.
//
// From then on the subscriber reconnects, with the token it holds while it
// is fresh, whenever the server sends a "closing" message, and whenever the
// connection drops; when Inngest refuses the token (it expired, say) it asks
// token for a new one. An open connection is not reopened when its token expires: Inngest
// checks a token only when a connection opens.
//
// Inngest Realtime keeps no history: without CatchUp, messages published
// while the subscriber is disconnected, including during the handshake of
// a reconnection until the server has subscribed the new connection, are
// lost. The subscriber then delivers every message the server sends it, in
// the order sent (it never has two connections open), dropping only a
// second copy of an id (see [Subscriber.Offer]), unless the handler falls
// QueueSize messages behind.
//
// # Gap repair
//
// With SubscriberOptions.CatchUp, the subscriber delivers every message
// the replay log numbered once, in seq order, whichever connection, catch-up
// or [Subscriber.Offer] brought it first. It keeps a cursor, the epoch and
// the last seq it delivered (a seq counts every name of the room, so it
// also passes the seqs of names its token does not cover). A message whose
// seq is next is delivered; one whose seq was passed, or whose id was
// delivered, is dropped and counted ([Subscriber.Duplicates]); one further
// ahead is held (up to QueueSize messages) while CatchUp fetches what lies
// between, which is delivered first ([Subscriber.Repaired]). CatchUp is
// also called whenever a connection opens and again at its first frame
// (when the server has surely subscribed it), so that what was published
// while the subscriber was away is delivered too, and on "closing" the new
// connection is opened before the old one is closed. A message without seq
// (published while the log was down) is delivered when it arrives, unless
// its id was delivered. A handler that falls behind does not lose
// numbered messages: they wait, or are fetched again once it catches up.
//
// When messages were lost for good, the epoch changed (the log lost the
// room's history), the page is Truncated (retention dropped them), or a
// held gap stays open (CatchUp failed 5 times in a row, or its answers do
// not bring the missing seqs 3 times in a row), the subscriber logs it at
// Warn, counts it ([Subscriber.Resets]), calls SubscriberOptions.OnReset in
// order with the messages, and goes on from what it has: the messages the
// log still holds, then the held ones. CatchUp errors are retried with
// backoff (MinBackoff to MaxBackoff) until Close.
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
		catchUp:   o.CatchUp,
		catchUpTO: o.CatchUpTimeout,
		topic:     o.Topic,
		onReset:   o.OnReset,
		qnotify:   make(chan struct{}, 1),
		qspace:    make(chan struct{}, 1),
		kick:      make(chan struct{}, 1),
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
	if s.catchUpTO <= 0 {
		s.catchUpTO = defaultCatchUpTimeout
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())

	fail := func(err error) (*Subscriber, error) {
		s.cancel()
		if s.ownClient {
			s.client.CloseIdleConnections()
		}
		return nil, err
	}
	c, err := s.connectFirst(ctx)
	if err != nil {
		return fail(err)
	}
	s.connected(c)
	if s.catchUp != nil {
		if o.After == 0 {
			err = s.position(ctx)
		} else {
			s.epoch, s.last = o.AfterEpoch, o.After
		}
		if err != nil {
			_ = c.ws.CloseNow()
			return fail(err)
		}
		s.wg.Add(1)
		go s.repair()
	}
	s.wg.Add(2)
	go s.dispatch()
	go s.run(c)
	return s, nil
}

// connected records the token of a connection that opened and asks for a
// catch-up of what was published while none was open.
func (s *Subscriber) connected(c conn) {
	s.mu.Lock()
	s.tok = c.tok
	if s.catchUp != nil {
		s.wantFetchLocked()
	}
	s.mu.Unlock()
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

// run serves connections one after the other until Close. With CatchUp,
// a connection whose server sends "closing" stays open until the next one
// is: the seq order drops what both deliver.
func (s *Subscriber) run(c conn) {
	defer s.wg.Done()
	attempt := 0
	for {
		opened := time.Now()
		stopCtx, stop := context.WithCancel(s.ctx)
		ended := make(chan string, 1)
		closing := make(chan struct{})
		onClosing := func() {} // without CatchUp, serve closes and the next connection waits
		if s.catchUp != nil {
			var once sync.Once
			onClosing = func() { once.Do(func() { close(closing) }) }
		}
		s.wg.Add(1)
		go func(c conn) {
			defer s.wg.Done()
			ended <- s.serve(c, stopCtx, onClosing)
		}(c)
		var why string
		select {
		case why = <-ended:
		case <-closing:
			why = "the server is closing; the connection stays open until the next one is"
		}
		if s.ctx.Err() != nil {
			stop()
			return
		}
		if time.Since(opened) >= s.maxB {
			attempt = 0
		}
		s.log.Info("tokens: inngest realtime connection ended; reconnecting", zap.String("reason", why))
		var ok bool
		c, ok = s.redial(&attempt)
		stop() // the old connection, if it is still open, ends now
		if !ok {
			return
		}
		s.connected(c)
	}
}

// redial opens the next connection, with backoff, and reports false at
// Close.
func (s *Subscriber) redial(attempt *int) (conn, bool) {
	for {
		if err := sleep(s.ctx, s.backoff(*attempt)); err != nil {
			return conn{}, false
		}
		*attempt++
		c, err := s.dial(s.ctx)
		if err == nil {
			return c, true
		}
		if s.ctx.Err() != nil {
			return conn{}, false
		}
		s.log.Warn("tokens: reconnecting to inngest realtime failed", zap.Int("attempt", *attempt), zap.Error(err))
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
// subscriber; messages go to the queue. When stop ends (Close, or a newer
// connection is open) a close handshake starts, during which reading goes
// on until the connection ends, cut after closeTimeout. A "closing"
// message calls closing and, without CatchUp, starts the handshake too.
// With CatchUp, the first frame asks for a catch-up: the server has
// subscribed the connection by then.
func (s *Subscriber) serve(c conn, stop context.Context, closing func()) string {
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
	stopClose := context.AfterFunc(stop, startClose)

	why := "closed"
	for first := true; ; first = false {
		typ, b, err := ws.Read(readCtx)
		if err != nil {
			if why == "closed" && stop.Err() == nil {
				why = "dropped: " + err.Error()
			}
			break
		}
		if first {
			s.requestFetch()
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
			s.take(newMessage(m))
		case "closing":
			why = "the server is closing"
			closing()
			if s.catchUp == nil {
				startClose()
			}
		}
	}

	stopClose()
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

// newMessage is the Message of a data frame.
func newMessage(m wireMessage) Message {
	msg := Message{Channel: m.Channel, Topic: m.Topic, Data: m.Data, RunID: m.RunID}
	if len(m.CreatedAt) > 0 {
		_ = msg.CreatedAt.UnmarshalJSON(m.CreatedAt)
	}
	if env, err := realtime.DecodeEnvelope(m.Data); err == nil {
		msg.ID, msg.Seq, msg.Epoch = env.ID, env.Seq, env.Epoch
	}
	return msg
}

// dispatch calls the handler with each queued message, and OnReset for
// each reset, until Close.
func (s *Subscriber) dispatch() {
	defer s.wg.Done()
	for {
		s.mu.Lock()
		if len(s.queue) == 0 {
			s.mu.Unlock()
			select {
			case <-s.qnotify:
				continue
			case <-s.ctx.Done():
				return
			}
		}
		q := s.queue[0]
		s.queue[0] = queued{}
		s.queue = s.queue[1:]
		if len(s.held) > 0 {
			s.drainLocked(s.queueSize)
		}
		s.mu.Unlock()
		select {
		case s.qspace <- struct{}{}:
		default:
		}
		if s.ctx.Err() != nil {
			return
		}
		if q.reset {
			s.callReset()
		} else {
			s.handle(q.msg)
		}
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

func (s *Subscriber) callReset() {
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("tokens: subscriber OnReset panicked", zap.Any("panic", p))
		}
	}()
	s.onReset()
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

// Duplicates returns how many messages were dropped because they had been
// delivered already: an id seen before, or, with CatchUp, a seq passed
// (the overlap of two connections, a catch-up racing the live message, the
// other transport of [Subscriber.Offer]).
func (s *Subscriber) Duplicates() uint64 { return s.duplicates.Load() }

// Repaired returns how many messages a catch-up delivered: published
// while the subscriber was away, or missed in a gap.
func (s *Subscriber) Repaired() uint64 { return s.repaired.Load() }

// Resets returns how many times, with CatchUp, messages were lost that no
// catch-up could bring back (see SubscriberOptions.OnReset).
func (s *Subscriber) Resets() uint64 { return s.resets.Load() }

// Close closes the connection (a normal websocket close, cut after a
// second), stops reconnecting, drops the messages not yet handled and
// waits for every goroutine of the subscriber, including a handler call in
// progress, to return. Do not call it from the handler. It is safe to call
// more than once.
func (s *Subscriber) Close() error {
	s.closeOnce.Do(func() {
		s.cancel()
		s.wg.Wait()
		s.mu.Lock()
		s.queue, s.held = nil, nil
		s.mu.Unlock()
		if s.ownClient {
			s.client.CloseIdleConnections()
		}
	})
	return nil
}
