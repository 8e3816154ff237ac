package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/zap"

	"github.com/coursebuilder/realtime-go/broadcast"
	"github.com/coursebuilder/realtime-go/examples/internal/flagsource"
	"github.com/coursebuilder/realtime-go/flags"
	"github.com/coursebuilder/realtime-go/legacyparty"
	"github.com/coursebuilder/realtime-go/realtime"
	"github.com/coursebuilder/realtime-go/realtime/inngest"
)

// EventName is the representative video event the canary publishes.
const EventName = "video.asset.ready"

// Defaults of [Config].
const (
	DefaultDeadline         = 5 * time.Second
	DefaultQuiet            = 200 * time.Millisecond
	DefaultSubscribeTimeout = 15 * time.Second
	DefaultProbeInterval    = 250 * time.Millisecond
	DefaultProbeWindow      = 2 * time.Second
	DefaultProbeAttempts    = 3
)

// Config is what [Check] needs. Inngest and PartyKit are the providers of
// the two transports, configured or nil; the Broadcast the canary publishes
// through is built over them, as an app builds its own.
type Config struct {
	// Inngest publishes to Inngest Realtime and mints the subscriber's
	// token; nil when Inngest is not configured.
	Inngest *inngest.Provider
	// PartyKit publishes to PartyKit; its BaseURL is where the subscriber's
	// websocket connects. Nil when PartyKit is not configured.
	PartyKit *legacyparty.Provider
	// Resolver gives the mode of every scope, as the app's does; the
	// Broadcast publishes the event (scope video-ready) in the mode it
	// gives at the time. Defaults to flags.Fixed(flags.Legacy), like
	// broadcast.New.
	Resolver flags.Resolver
	// Room is the room (and Inngest channel) of the canary event. Defaults
	// to "canary-" and random characters: a room no browser watches.
	Room string
	// RequestID of the canary event. Defaults to a random "canary-…" id.
	RequestID string
	// Deadline bounds the wait for the deliveries, from the start of the
	// publish. Defaults to DefaultDeadline (5s).
	Deadline time.Duration
	// Quiet is how long the canary keeps listening once every transport
	// delivered, to see a duplicate. Defaults to DefaultQuiet (200ms).
	Quiet time.Duration
	// SubscribeTimeout bounds subscribing, readiness included. Defaults to
	// DefaultSubscribeTimeout (15s).
	SubscribeTimeout time.Duration
	// WaitSubscribed, if set, returns once the server of transport
	// (broadcast.TransportInngest or broadcast.TransportPartyKit) has
	// subscribed the canary's fresh connection to channel and topic (for
	// PartyKit: the room and ""). The local mode sets it
	// (inngestrt.Server.WaitSubscribed). When nil, readiness is proven by
	// probes; see the package documentation.
	WaitSubscribed func(ctx context.Context, transport, channel, topic string) error
	// ProbeInterval, ProbeWindow and ProbeAttempts shape the probes: one
	// every ProbeInterval until the subscriber sees one, for ProbeWindow,
	// then a fresh subscription, ProbeAttempts times in all. Defaults:
	// 250ms, 2s, 3.
	ProbeInterval time.Duration
	ProbeWindow   time.Duration
	ProbeAttempts int
	// Logger receives the Broadcast's per-transport lines and the
	// subscriber's diagnostics. Defaults to zap.NewNop().
	Logger *zap.Logger
	// OnModeChange is the Broadcast's broadcast.Options.OnModeChange: it
	// is called with every change of a scope's mode the canary's Broadcast
	// observes, the first one included.
	OnModeChange func(broadcast.ModeChange)
}

// Report is the outcome of one canary run.
type Report struct {
	Room, Name, RequestID string
	Scope                 flags.Scope
	// Flags is the mode the resolver gave; Mode is what the Broadcast does
	// with the transports it has.
	Flags, Mode flags.Mode
	// Scopes is the mode of every scope as the resolver gives it for Room:
	// what the app would publish in.
	Scopes []flagsource.ScopeMode
	// Envelope is what the Broadcast sent, as realtime.Message.Encode
	// spells it, with the seq and epoch its replay log gave it.
	Envelope []byte
	// Published says whether Broadcast.Publish was called at all: the
	// canary does not publish when no enabled transport has a subscriber.
	Published bool
	// PublishErr and PublishLatency are those of Broadcast.Publish: the
	// error of the transport that counts in the mode, and how long the
	// caller waited.
	PublishErr     error
	PublishLatency time.Duration
	// Transports lists PartyKit then Inngest.
	Transports []TransportResult
}

// TransportResult is what one transport did with the canary event.
type TransportResult struct {
	// Name is broadcast.TransportPartyKit or broadcast.TransportInngest.
	Name string
	// Configured: the transport has a provider. Enabled: the mode
	// publishes to it, so the canary subscribed and expects the event.
	Configured, Enabled bool
	// SubscribeErr is why the subscriber could not be set up.
	SubscribeErr error
	// Published: the provider's Publish returned (it may still be running
	// past the Broadcast's shadow budget, then it is false), with
	// PublishErr after PublishLatency from the start of Broadcast.Publish.
	Published      bool
	PublishErr     error
	PublishLatency time.Duration
	// Copies is how many times the subscriber received the event;
	// DeliveryLatency is from the start of Broadcast.Publish to the first.
	Copies          int
	DeliveryLatency time.Duration
	// Payload is the first copy as received. PayloadEqual: it parses to
	// the same JSON value as the envelope. SameBytes: byte for byte.
	Payload      []byte
	PayloadEqual bool
	SameBytes    bool
}

// Received reports whether the subscriber got the event.
func (t TransportResult) Received() bool { return t.Copies > 0 }

// Failures lists what is wrong with the transport; none when it is not
// enabled.
func (t TransportResult) Failures() []string {
	if !t.Enabled {
		return nil
	}
	var f []string
	if t.SubscribeErr != nil {
		return []string{"subscribe: " + t.SubscribeErr.Error()}
	}
	if t.PublishErr != nil {
		f = append(f, "publish: "+t.PublishErr.Error())
	}
	switch {
	case t.Copies == 0:
		f = append(f, "not received")
	case !t.PayloadEqual:
		f = append(f, "payload differs from the envelope: "+string(t.Payload))
	}
	if t.Copies > 1 {
		f = append(f, fmt.Sprintf("received %d times", t.Copies))
	}
	return f
}

// OK reports whether every transport the mode enables received the event,
// intact and once, and no publish failed.
func (r *Report) OK() bool {
	if !r.Published || r.PublishErr != nil {
		return false
	}
	enabled := 0
	for _, t := range r.Transports {
		if t.Enabled {
			enabled++
		}
		if len(t.Failures()) > 0 {
			return false
		}
	}
	return enabled > 0
}

// Print writes the report: one line per transport, then PASS or FAIL with
// the reasons.
func (r *Report) Print(w io.Writer) {
	fmt.Fprintf(w, "event:   %s room=%s requestId=%s scope=%s\n", r.Name, r.Room, r.RequestID, r.Scope)
	if len(r.Scopes) > 0 {
		fmt.Fprintf(w, "scopes:  %s\n", flagsource.Format(r.Scopes))
	}
	fmt.Fprintf(w, "mode:    flags=%s effective=%s\n", r.Flags, r.Mode)
	switch {
	case !r.Published:
		fmt.Fprintln(w, "publish: not attempted (no enabled transport has a subscriber)")
	case r.PublishErr != nil:
		fmt.Fprintf(w, "publish: Broadcast.Publish returned after %v (error: %v)\n", roundLatency(r.PublishLatency), r.PublishErr)
	default:
		fmt.Fprintf(w, "publish: Broadcast.Publish returned after %v (ok)\n", roundLatency(r.PublishLatency))
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "transport\treceived\tpayload = envelope\tpublish latency\tdelivery latency")
	for _, t := range r.Transports {
		switch {
		case !t.Configured:
			fmt.Fprintf(tw, "%s\t-\t-\t-\t-  (not configured)\n", t.Name)
			continue
		case !t.Enabled:
			fmt.Fprintf(tw, "%s\t-\t-\t-\t-  (not published to in %s mode)\n", t.Name, r.Mode)
			continue
		case t.SubscribeErr != nil:
			fmt.Fprintf(tw, "%s\t-\t-\t-\t-  (no subscriber)\n", t.Name)
			continue
		}
		received, equal, delivery := "no", "-", "-"
		if t.Received() {
			received, delivery = "yes", roundLatency(t.DeliveryLatency).String()
			if t.Copies > 1 {
				received = fmt.Sprintf("yes (%d copies)", t.Copies)
			}
			switch {
			case t.PayloadEqual && t.SameBytes:
				equal = "yes (same bytes)"
			case t.PayloadEqual:
				equal = "yes (as JSON; re-spelled)"
			default:
				equal = "NO"
			}
		}
		publish := "still running"
		switch {
		case t.Published && t.PublishErr != nil:
			publish = roundLatency(t.PublishLatency).String() + " (error)"
		case t.Published:
			publish = roundLatency(t.PublishLatency).String()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", t.Name, received, equal, publish, delivery)
	}
	_ = tw.Flush()
	if r.OK() {
		fmt.Fprintln(w, "PASS")
		return
	}
	fmt.Fprintln(w, "FAIL")
	if r.PublishErr != nil {
		fmt.Fprintf(w, "  broadcast: %v\n", r.PublishErr)
	}
	enabled := false
	for _, t := range r.Transports {
		enabled = enabled || t.Enabled
		for _, f := range t.Failures() {
			fmt.Fprintf(w, "  %s: %s\n", t.Name, f)
		}
	}
	if !enabled {
		fmt.Fprintln(w, "  no transport is enabled: nothing was checked")
	}
}

func roundLatency(d time.Duration) time.Duration {
	if d >= time.Millisecond {
		return d.Round(100 * time.Microsecond)
	}
	return d.Round(time.Microsecond)
}

// videoResource is a body like the one the TypeScript pipeline broadcasts
// with video.asset.ready: the video resource after Mux said it is ready.
type videoResource struct {
	ID            string    `json:"id"`
	Type          string    `json:"type"`
	State         string    `json:"state"`
	Title         string    `json:"title"`
	MuxAssetID    string    `json:"muxAssetId"`
	MuxPlaybackID string    `json:"muxPlaybackId"`
	Duration      float64   `json:"duration"`
	AspectRatio   string    `json:"aspectRatio"`
	Transcript    *string   `json:"transcript"`
	SRT           *string   `json:"srt"`
	CreatedAt     time.Time `json:"createdAt"`
	UpdatedAt     time.Time `json:"updatedAt"`
}

// Event returns the canary message for room and requestID, which is also
// its ID.
func Event(room, requestID string, now time.Time) realtime.Message {
	return realtime.Message{
		Room:      room,
		Name:      EventName,
		RequestID: requestID,
		ID:        requestID,
		Body: videoResource{
			ID:            room,
			Type:          "videoResource",
			State:         "ready",
			Title:         "Canary: <video> & ready — “réalisé” 🎬",
			MuxAssetID:    "canary-asset-" + requestID,
			MuxPlaybackID: "canary-playback-" + requestID,
			Duration:      93.4,
			AspectRatio:   "16:9",
			CreatedAt:     now.Add(-2 * time.Minute).UTC().Truncate(time.Millisecond),
			UpdatedAt:     now.UTC().Truncate(time.Millisecond),
		},
	}
}

// randomID is "canary-" and 12 lowercase base32 characters.
func randomID() string {
	return "canary-" + strings.ToLower(rand.Text()[:12])
}

// receipt is one message a subscriber received.
type receipt struct {
	transport string
	requestID string
	data      []byte
	at        time.Time
}

// collector gathers receipts from the subscribers' goroutines without ever
// blocking them.
type collector struct {
	mu       sync.Mutex
	receipts []receipt
	notify   chan struct{}
}

func newCollector() *collector { return &collector{notify: make(chan struct{}, 1)} }

func (c *collector) add(transport string, data []byte, at time.Time) {
	var env struct {
		RequestID string `json:"requestId"`
	}
	if json.Unmarshal(data, &env) != nil || env.RequestID == "" {
		return // not an envelope: nothing the canary sent
	}
	c.mu.Lock()
	c.receipts = append(c.receipts, receipt{transport, env.RequestID, append([]byte(nil), data...), at})
	c.mu.Unlock()
	select {
	case c.notify <- struct{}{}:
	default:
	}
}

// of returns the receipts of transport for requestID, in arrival order.
func (c *collector) of(transport, requestID string) []receipt {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []receipt
	for _, r := range c.receipts {
		if r.transport == transport && r.requestID == requestID {
			out = append(out, r)
		}
	}
	return out
}

// seenPrefix reports whether transport delivered a request id starting
// with prefix.
func (c *collector) seenPrefix(transport, prefix string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, r := range c.receipts {
		if r.transport == transport && strings.HasPrefix(r.requestID, prefix) {
			return true
		}
	}
	return false
}

// subscriber is one transport's subscription.
type subscriber interface{ Close() error }

// duplicateCounter is a subscription that drops the second copy of a
// message and counts it, as inngest.Subscriber does.
type duplicateCounter interface{ Duplicates() uint64 }

// timed is a transport that records how the publish of the current run
// went. It takes the envelope the Broadcast made, as the transports do.
type timed struct {
	p     realtime.EnvelopePublisher
	mu    sync.Mutex
	start time.Time
	done  bool
	dur   time.Duration
	err   error
	fin   chan struct{} // closed when the run's publish returned
}

// reset starts a run whose publish starts at start.
func (t *timed) reset(start time.Time) {
	t.mu.Lock()
	t.start, t.done, t.dur, t.err, t.fin = start, false, 0, nil, make(chan struct{})
	t.mu.Unlock()
}

func (t *timed) Publish(ctx context.Context, msg realtime.Message) error {
	env, err := realtime.NewEnvelope(ctx, msg)
	if err != nil {
		return err
	}
	return t.PublishEnvelope(ctx, env)
}

func (t *timed) PublishEnvelope(ctx context.Context, env *realtime.Envelope) error {
	err := t.p.PublishEnvelope(ctx, env)
	t.mu.Lock()
	if !t.done && t.fin != nil {
		t.done, t.dur, t.err = true, time.Since(t.start), err
		close(t.fin)
	}
	t.mu.Unlock()
	return err
}

// wait returns once the run's publish returned, or ctx is done.
func (t *timed) wait(ctx context.Context) {
	t.mu.Lock()
	fin := t.fin
	t.mu.Unlock()
	if fin == nil {
		return
	}
	select {
	case <-ctx.Done():
	case <-fin:
	}
}

func (t *timed) result() (done bool, d time.Duration, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.done, t.dur, t.err
}

// effective is the Resolver of the canary's Broadcast: the flags' mode,
// except that with one transport not configured every publish goes to the
// other one (as an app without it would have to).
type effective struct {
	r                 flags.Resolver
	inngest, partykit bool
}

func (e effective) Mode(ctx context.Context, scope flags.Scope, room string) flags.Mode {
	switch {
	case !e.inngest:
		return flags.Legacy
	case !e.partykit:
		return flags.Realtime
	}
	return e.r.Mode(ctx, scope, room)
}

// Canary is a Broadcast over the configured transports that runs the
// check again and again: one Broadcast for the life of the Canary, so
// that it observes, and reports through cfg.OnModeChange, every change of
// mode between runs, with the figures of the runs in the mode that ended.
type Canary struct {
	cfg           Config
	b             *broadcast.Broadcast
	legacyT, rtT  *timed
	room, request string // the configured ones, "" for fresh ones per run
}

// New builds the Canary's Broadcast over cfg's providers, its mode from
// cfg.Resolver on every publish. Close it when done.
func New(cfg Config) (*Canary, error) {
	if cfg.Deadline <= 0 {
		cfg.Deadline = DefaultDeadline
	}
	if cfg.Quiet <= 0 {
		cfg.Quiet = DefaultQuiet
	}
	if cfg.SubscribeTimeout <= 0 {
		cfg.SubscribeTimeout = DefaultSubscribeTimeout
	}
	if cfg.ProbeInterval <= 0 {
		cfg.ProbeInterval = DefaultProbeInterval
	}
	if cfg.ProbeWindow <= 0 {
		cfg.ProbeWindow = DefaultProbeWindow
	}
	if cfg.ProbeAttempts <= 0 {
		cfg.ProbeAttempts = DefaultProbeAttempts
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.Resolver == nil {
		cfg.Resolver = flags.Fixed(flags.Legacy)
	}
	if cfg.Inngest == nil && cfg.PartyKit == nil {
		return nil, errors.New("canary: neither Inngest nor PartyKit is configured")
	}
	c := &Canary{cfg: cfg, room: cfg.Room, request: cfg.RequestID}

	// The facade, as an app builds it; each provider timed. A transport
	// that is not configured is stood in for, and the mode keeps every
	// publish on the one that is.
	var legacy, rt realtime.Provider = absent("partykit"), absent("inngest")
	if cfg.PartyKit != nil {
		c.legacyT = &timed{p: cfg.PartyKit}
		legacy = c.legacyT
	}
	if cfg.Inngest != nil {
		c.rtT = &timed{p: cfg.Inngest}
		rt = c.rtT
	}
	b, err := broadcast.New(legacy, rt, &broadcast.Options{
		Resolver:     effective{r: cfg.Resolver, inngest: cfg.Inngest != nil, partykit: cfg.PartyKit != nil},
		Logger:       cfg.Logger,
		OnModeChange: cfg.OnModeChange,
	})
	if err != nil {
		return nil, fmt.Errorf("canary: %w", err)
	}
	c.b = b
	return c, nil
}

// Close closes the Broadcast, waiting within ctx for publishes still
// running.
func (c *Canary) Close(ctx context.Context) error { return c.b.Close(ctx) }

// Check publishes the canary event through a Broadcast over cfg's
// providers and checks that a subscriber on every transport the mode
// enables receives it within cfg.Deadline. It returns an error only when
// the run could not be set up (an invalid configuration); a transport
// that cannot be subscribed to, does not deliver or delivers something
// else is a failure in the Report (see [Report.OK]).
func Check(ctx context.Context, cfg Config) (*Report, error) {
	c, err := New(cfg)
	if err != nil {
		return nil, err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.cfg.Deadline+time.Second)
		defer cancel()
		_ = c.Close(cctx)
	}()
	return c.Check(ctx)
}

// Check runs the canary once: in a fresh room with a fresh request id
// unless the Config named them, in the mode the Resolver gives now.
func (c *Canary) Check(ctx context.Context) (*Report, error) {
	cfg, b := c.cfg, c.b
	if cfg.Room = c.room; cfg.Room == "" {
		cfg.Room = randomID()
	}
	if cfg.RequestID = c.request; cfg.RequestID == "" {
		cfg.RequestID = randomID()
	}
	msg := Event(cfg.Room, cfg.RequestID, time.Now())
	envelope, err := msg.Encode()
	if err != nil {
		return nil, fmt.Errorf("canary: %w", err)
	}
	scope := flags.ScopeOf(msg.Name)
	rep := &Report{
		Room: msg.Room, Name: msg.Name, RequestID: msg.RequestID, Scope: scope,
		Flags: cfg.Resolver.Mode(ctx, scope, msg.Room).OrLegacy(), Envelope: envelope,
		Scopes: flagsource.Modes(ctx, cfg.Resolver, msg.Room),
	}
	// The mode the Broadcast publishes in: the one answer it gives the
	// token endpoint and the logs too.
	rep.Mode = b.Route(ctx, msg.Room, msg.Name).Mode
	rep.Transports = []TransportResult{
		{Name: broadcast.TransportPartyKit, Configured: cfg.PartyKit != nil, Enabled: cfg.PartyKit != nil && rep.Mode.PublishesLegacy()},
		{Name: broadcast.TransportInngest, Configured: cfg.Inngest != nil, Enabled: cfg.Inngest != nil && rep.Mode.PublishesRealtime()},
	}
	pk, in := &rep.Transports[0], &rep.Transports[1]

	// Subscribe first, on every enabled transport.
	col := newCollector()
	subCtx, cancelSub := context.WithTimeout(ctx, cfg.SubscribeTimeout)
	var subs []subscriber
	defer func() {
		for _, s := range subs {
			_ = s.Close()
		}
	}()
	var wg sync.WaitGroup
	var mu sync.Mutex
	for _, t := range []*TransportResult{pk, in} {
		if !t.Enabled {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := subscribeReady(subCtx, cfg, t.Name, col)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				t.SubscribeErr = err
				return
			}
			subs = append(subs, s)
		}()
	}
	wg.Wait()
	cancelSub()

	// Publish through the facade, then wait for the deliveries. Without a
	// single subscriber there is nothing to check against: the failures
	// say why.
	if (!pk.Enabled || pk.SubscribeErr != nil) && (!in.Enabled || in.SubscribeErr != nil) {
		return rep, nil
	}
	// The Go subscriber delivers an id once and counts the second copies
	// it drops: those that arrive from now on are copies of the event.
	var dups duplicateCounter
	var dupsBefore uint64
	for _, s := range subs {
		if d, ok := s.(duplicateCounter); ok {
			dups, dupsBefore = d, d.Duplicates()
		}
	}
	start := time.Now()
	for _, t := range []*timed{c.legacyT, c.rtT} {
		if t != nil {
			t.reset(start)
		}
	}
	rep.Published = true
	rep.PublishErr = b.Publish(ctx, msg)
	rep.PublishLatency = time.Since(start)
	rep.Envelope = sentEnvelope(ctx, b, msg, envelope)
	collect(ctx, col, msg.RequestID, start, []*TransportResult{pk, in}, cfg.Deadline, cfg.Quiet)

	// Wait for a leg that outlived the shadow budget, within the deadline.
	waitCtx, cancelWait := context.WithDeadline(context.WithoutCancel(ctx), start.Add(cfg.Deadline+time.Second))
	for _, tt := range []struct {
		r *TransportResult
		t *timed
	}{{pk, c.legacyT}, {in, c.rtT}} {
		if tt.t == nil || !tt.r.Enabled {
			continue
		}
		tt.t.wait(waitCtx)
		tt.r.Published, tt.r.PublishLatency, tt.r.PublishErr = tt.t.result()
	}
	cancelWait()

	// Results per transport.
	for _, t := range []*TransportResult{pk, in} {
		got := col.of(t.Name, msg.RequestID)
		t.Copies = len(got)
		if len(got) == 0 {
			continue
		}
		if t.Name == broadcast.TransportInngest && dups != nil {
			t.Copies += int(dups.Duplicates() - dupsBefore)
		}
		t.DeliveryLatency = got[0].at.Sub(start)
		t.Payload = got[0].data
		t.SameBytes = string(got[0].data) == string(rep.Envelope)
		t.PayloadEqual = jsonEqual(got[0].data, rep.Envelope)
	}
	return rep, nil
}

// sentEnvelope returns the envelope b sent for msg: the one its replay log
// holds for msg.ID, or envelope (msg's, without seq) when the log has none.
func sentEnvelope(ctx context.Context, b *broadcast.Broadcast, msg realtime.Message, envelope []byte) []byte {
	page, err := b.History(ctx, msg.Room, 0, 10)
	if err != nil {
		return envelope
	}
	for _, e := range page.Entries {
		if e.ID == msg.ID {
			return e.Envelope
		}
	}
	return envelope
}

// collect waits until every enabled transport with a subscriber delivered
// requestID, or deadline after start, then listens quiet longer for
// duplicates.
func collect(ctx context.Context, col *collector, requestID string, start time.Time, ts []*TransportResult, deadline, quiet time.Duration) {
	pending := func() bool {
		for _, t := range ts {
			if t.Enabled && t.SubscribeErr == nil && len(col.of(t.Name, requestID)) == 0 {
				return true
			}
		}
		return false
	}
	timer := time.NewTimer(time.Until(start.Add(deadline)))
	defer timer.Stop()
	for pending() {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
			return
		case <-col.notify:
		}
	}
	q := time.NewTimer(quiet)
	defer q.Stop()
	select {
	case <-ctx.Done():
	case <-q.C:
	}
}

// jsonEqual reports whether a and b parse to the same JSON value, numbers
// as float64 as a browser's JSON.parse reads them.
func jsonEqual(a, b []byte) bool {
	var va, vb any
	if json.Unmarshal(a, &va) != nil || json.Unmarshal(b, &vb) != nil {
		return false
	}
	return reflect.DeepEqual(va, vb)
}

// subscribeReady subscribes to the canary room on transport and returns
// once a message published now is delivered: the server says so
// (cfg.WaitSubscribed), or a probe came through.
func subscribeReady(ctx context.Context, cfg Config, transport string, col *collector) (subscriber, error) {
	probePrefix := cfg.RequestID + "-probe-"
	for attempt := 1; ; attempt++ {
		s, channel, topic, err := subscribe(ctx, cfg, transport, col)
		if err != nil {
			return nil, err
		}
		if cfg.WaitSubscribed != nil {
			if err := cfg.WaitSubscribed(ctx, transport, channel, topic); err != nil {
				_ = s.Close()
				return nil, fmt.Errorf("waiting for the server to subscribe: %w", err)
			}
			return s, nil
		}
		err = probe(ctx, cfg, transport, col, fmt.Sprintf("%s%d-", probePrefix, attempt))
		if err == nil {
			return s, nil
		}
		_ = s.Close()
		if attempt >= cfg.ProbeAttempts || ctx.Err() != nil {
			return nil, fmt.Errorf("subscribed %d times but no probe came through: %w", attempt, err)
		}
		cfg.Logger.Info("canary: no probe came through; subscribing again",
			zap.String("transport", transport), zap.Int("attempt", attempt), zap.Error(err))
	}
}

// probe publishes probe messages straight to transport (not through the
// Broadcast) until the subscriber receives one, for cfg.ProbeWindow.
func probe(ctx context.Context, cfg Config, transport string, col *collector, prefix string) error {
	var p realtime.Provider = cfg.Inngest
	if transport == broadcast.TransportPartyKit {
		p = cfg.PartyKit
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.ProbeWindow)
	defer cancel()
	tick := time.NewTicker(cfg.ProbeInterval)
	defer tick.Stop()
	var lastErr error
	for n := 1; ; n++ {
		msg := realtime.Message{Room: cfg.Room, Name: EventName, RequestID: fmt.Sprintf("%s%d", prefix, n), Body: map[string]any{"canaryProbe": true}}
		if err := p.Publish(ctx, msg); err != nil && ctx.Err() == nil {
			lastErr = err
		}
		for {
			if col.seenPrefix(transport, prefix) {
				return nil
			}
			select {
			case <-ctx.Done():
				if lastErr != nil {
					return fmt.Errorf("probe publish: %w", lastErr)
				}
				return ctx.Err()
			case <-col.notify:
				continue
			case <-tick.C:
			}
			break
		}
	}
}

// subscribe opens one subscription to the canary room on transport and
// says which channel and topic it is for.
func subscribe(ctx context.Context, cfg Config, transport string, col *collector) (s subscriber, channel, topic string, err error) {
	if transport == broadcast.TransportPartyKit {
		s, err := subscribePartyKit(ctx, cfg.PartyKit, cfg.Room, col)
		return s, cfg.Room, "", err
	}
	// A browser gets its token from the app's token endpoint; the canary
	// holds the signing key and mints it the same way (Provider.TokenFunc:
	// POST /v1/realtime/token), then connects to /v1/realtime/connect.
	if channel, err = cfg.Inngest.Channel(cfg.Room); err == nil {
		topic, err = cfg.Inngest.Topic(EventName)
	}
	if err != nil {
		return nil, "", "", fmt.Errorf("inngest channel and topic: %w", err)
	}
	sub, err := inngest.Subscribe(ctx, cfg.Inngest.BaseURL(), cfg.Inngest.TokenFunc(cfg.Room, EventName), func(m inngest.Message) {
		col.add(broadcast.TransportInngest, m.Data, time.Now())
	}, &inngest.SubscriberOptions{Logger: cfg.Logger})
	if err != nil {
		return nil, "", "", err
	}
	return sub, channel, topic, nil
}

// partySub is a browser-style websocket to a PartyKit room, as partysocket
// opens it: ws(s)://host/party/<room>.
type partySub struct {
	c    *websocket.Conn
	tcp  func() net.Conn // the connection under c, cut if the close handshake hangs
	done chan struct{}
}

// partyCloseTimeout bounds the close handshake: the PartyKit dev server's
// workerd never answers a close frame (see harness/internal/wsconn).
const partyCloseTimeout = 500 * time.Millisecond

func subscribePartyKit(ctx context.Context, p *legacyparty.Provider, room string, col *collector) (*partySub, error) {
	u, err := p.PublishURL(room) // http(s)://host/party/<room escaped>
	if err != nil {
		return nil, err
	}
	u = "ws" + strings.TrimPrefix(u, "http")
	var (
		mu  sync.Mutex
		tcp net.Conn
		d   net.Dialer
	)
	client := &http.Client{Transport: &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := d.DialContext(ctx, network, addr)
			if err == nil {
				mu.Lock()
				tcp = c
				mu.Unlock()
			}
			return c, err
		},
	}}
	c, resp, err := websocket.Dial(ctx, u, &websocket.DialOptions{HTTPClient: client})
	if err != nil {
		client.CloseIdleConnections()
		if resp != nil {
			return nil, fmt.Errorf("partykit: connect %s: status %d: %w", u, resp.StatusCode, err)
		}
		return nil, fmt.Errorf("partykit: connect %s: %w", u, err)
	}
	c.SetReadLimit(4 << 20)
	s := &partySub{c: c, done: make(chan struct{}), tcp: func() net.Conn { mu.Lock(); defer mu.Unlock(); return tcp }}
	go func() {
		defer close(s.done)
		for {
			typ, b, err := c.Read(context.Background())
			if err != nil {
				return
			}
			if typ == websocket.MessageText {
				col.add(broadcast.TransportPartyKit, b, time.Now())
			}
		}
	}()
	return s, nil
}

// Close closes the websocket, cutting the connection when the server does
// not answer the close frame, and waits for the reader.
func (s *partySub) Close() error {
	closed := make(chan struct{})
	go func() {
		_ = s.c.Close(websocket.StatusNormalClosure, "") // the server may be gone already
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(partyCloseTimeout):
		if tcp := s.tcp(); tcp != nil {
			_ = tcp.Close()
		}
		<-closed
	}
	<-s.done
	return nil
}

// absent stands in for a transport that is not configured: every publish to
// it fails with realtime.ErrNotConfigured.
func absent(transport string) realtime.Provider {
	return realtime.ProviderFunc(func(context.Context, realtime.Message) error {
		return fmt.Errorf("%w: %s is not configured", realtime.ErrNotConfigured, transport)
	})
}
