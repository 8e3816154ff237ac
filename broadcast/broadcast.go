package broadcast

import (
	"context"
	"errors"
	"fmt"
	"io"
	"reflect"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/coursebuilder/realtime-go/flags"
	"github.com/coursebuilder/realtime-go/realtime"
	"github.com/coursebuilder/realtime-go/realtime/inngest"
	"github.com/coursebuilder/realtime-go/replay"
)

// Transport names, as they appear in errors, log lines and metrics.
const (
	TransportPartyKit = "partykit"
	TransportInngest  = "inngest"
)

// Defaults of [Options].
const (
	defaultShadowBudget  = 250 * time.Millisecond
	defaultShadowTimeout = 5 * time.Second
)

// ErrClosed is returned by Publish after Close.
var ErrClosed = errors.New("broadcast: closed")

// ErrPanic matches the error of a transport whose Publish panicked; the
// panic is contained and never reaches the caller.
var ErrPanic = errors.New("broadcast: provider panicked")

// ErrNilError matches the error of a transport whose Publish returned a nil
// pointer as a non-nil error, such as error((*realtime.PublishError)(nil)),
// or an error whose chain panics when errors.Is walks it. A non-nil error
// is a failure, so the publish counts as failed; the faulty value itself is
// not kept, so nothing downstream calls a method on the nil pointer.
var ErrNilError = errors.New("broadcast: provider returned a nil pointer as its error")

// Options configures [New]. A nil *Options means every default.
type Options struct {
	// Resolver picks the mode of each publish from its scope (the
	// flags.ScopeOf of its event name) and room. Defaults to
	// flags.Fixed(flags.Legacy): PartyKit only. A mode that is not
	// [flags.Mode.Known] is taken as Legacy. A Resolver that panics is
	// contained: the mode is then unknown, and the publish goes to both
	// transports in Shadow mode (see the package doc, "When the mode is in
	// doubt"). The token endpoint (package tokens) asks the same Resolver
	// through [Broadcast.Route], so browsers read where publishes go.
	Resolver flags.Resolver
	// ShadowBudget bounds how much a publish is delayed by the transport
	// whose outcome does not count (realtime in shadow mode, PartyKit in
	// primary mode), measured from the start of the publish. A transport
	// still running then goes on in the background, bounded by
	// ShadowTimeout. Defaults to 250ms.
	ShadowBudget time.Duration
	// ShadowTimeout bounds the publish to the transport whose outcome does
	// not count, measured from the start of that publish and independently
	// of the caller's context: its context is cancelled ShadowTimeout after
	// it started, whether Publish is still waiting for it or already
	// returned. A late delivery within that bound still happens (and is
	// logged) after Publish returned. Defaults to 5s.
	ShadowTimeout time.Duration
	// FallbackToLegacy makes realtime mode publish to PartyKit when Inngest
	// Realtime fails; the publish then succeeds if PartyKit accepts it.
	FallbackToLegacy bool
	// Log is the replay log every message enters once, before it fans out:
	// it numbers the message in its room (the envelope's seq and epoch) and
	// keeps it for catch-up ([Broadcast.History], and the token endpoint's
	// answer). Defaults to an in-memory log of this process
	// (replay.NewMemory), which Close closes; apps on several instances
	// share one Redis log (package replay/redislog) instead, or their seqs
	// disagree. A log given here is not closed by the Broadcast. An append
	// that fails or takes over a second does not stop the publish: the
	// message is published without seq, counted and logged (see the package
	// doc).
	Log replay.Log
	// Logger receives one line per transport per publish. Defaults to
	// zap.NewNop().
	Logger *zap.Logger
	// Meter records the metrics listed in the package doc. Defaults to a
	// no-op meter.
	Meter metric.Meter
	// OnModeChange, when set, is called with every change of a scope's
	// mode the Broadcast observes (see the package doc, "Mode changes"),
	// on the goroutine that observed it: keep it short, and do not
	// publish from it. A panic in it is contained and logged.
	OnModeChange func(ModeChange)
}

// Broadcast is a [realtime.Provider] that publishes each message to
// PartyKit, Inngest Realtime or both, as the mode of the message's scope
// says. It is safe for concurrent use.
type Broadcast struct {
	legacy, rt leg
	resolver   flags.Resolver
	budget     time.Duration
	shadowTO   time.Duration
	fallback   bool
	log        *zap.Logger
	metrics    *instruments
	history    replay.Log
	ownLog     bool // history is the Broadcast's own, closed by Close
	scopes     scopeStates
	onChange   func(ModeChange)
	gauge      metric.Registration // the callback of realtime.broadcast.mode

	// state holds the number of publishes and background legs in flight in
	// its low bits and closedBit once Close was called, so that taking a
	// place and seeing Close are one atomic step.
	state   atomic.Int64
	drained chan struct{} // closed once closed and nothing is in flight
}

const closedBit = 1 << 62

var _ realtime.Provider = (*Broadcast)(nil)

// ErrNilProvider is returned by [New] when a provider is nil, typed nil
// included (a nil *legacyparty.Provider from a failed constructor whose
// error was ignored).
var ErrNilProvider = errors.New("broadcast: nil provider")

// New returns a Broadcast over a PartyKit (legacy) and an Inngest Realtime
// provider. Both are required: New fails with an error matching
// [ErrNilProvider] when either is nil or a typed nil, rather than every
// publish failing later. An app with one transport uses that provider
// directly.
func New(legacy, rt realtime.Provider, opts *Options) (*Broadcast, error) {
	if isNil(legacy) {
		return nil, fmt.Errorf("%w: the PartyKit (legacy) provider is nil; check the error of the constructor that made it", ErrNilProvider)
	}
	if isNil(rt) {
		return nil, fmt.Errorf("%w: the Inngest Realtime provider is nil; check the error of the constructor that made it", ErrNilProvider)
	}
	var o Options
	if opts != nil {
		o = *opts
	}
	b := &Broadcast{
		legacy:   newLeg(TransportPartyKit, legacy),
		rt:       newLeg(TransportInngest, rt),
		resolver: o.Resolver,
		budget:   o.ShadowBudget,
		shadowTO: o.ShadowTimeout,
		fallback: o.FallbackToLegacy,
		log:      o.Logger,
		metrics:  newInstruments(o.Meter),
		scopes:   newScopeStates(),
		onChange: o.OnModeChange,
		drained:  make(chan struct{}),
	}
	if b.resolver == nil {
		b.resolver = flags.Fixed(flags.Legacy)
	}
	if b.budget <= 0 {
		b.budget = defaultShadowBudget
	}
	if b.shadowTO <= 0 {
		b.shadowTO = defaultShadowTimeout
	}
	if b.log == nil {
		b.log = zap.NewNop()
	}
	if b.history = o.Log; b.history == nil {
		b.history, b.ownLog = replay.NewMemory(nil), true
	}
	// As for the instruments, an error only means a misconfigured SDK:
	// the gauge is then not reported, and publishing goes on.
	b.gauge, _ = b.metrics.meter.RegisterCallback(b.modesInForce, b.metrics.mode)
	return b, nil
}

// isNil reports whether p is nil or an interface holding a nil pointer, map,
// func, channel or slice.
func isNil(p any) bool {
	if p == nil {
		return true
	}
	switch v := reflect.ValueOf(p); v.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Func, reflect.Chan, reflect.Slice, reflect.Interface:
		return v.IsNil()
	}
	return false
}

// TransportError is the failure of one transport in a publish. Publish
// returns the errors.Join of the TransportErrors of the transports whose
// outcome counts in the mode; each matches the provider's own error with
// errors.Is and errors.As.
type TransportError struct {
	// Transport is TransportPartyKit or TransportInngest.
	Transport string
	// Mode is the mode the publish ran in.
	Mode flags.Mode
	// Err is the provider's error.
	Err error
}

func (e *TransportError) Error() string {
	return fmt.Sprintf("broadcast: %s (%s mode): %v", e.Transport, e.Mode, e.Err)
}

// Unwrap returns the provider's error.
func (e *TransportError) Unwrap() error { return e.Err }

// inDoubt is the mode of a publish whose mode could not be resolved (the
// Resolver panicked): both transports are attempted, so that the message
// reaches browsers whichever transport they read, and PartyKit's outcome
// counts, as it does for every scope until a flag moves it past shadow.
const inDoubt = flags.Shadow

// Route says where the messages of one room and event name go now.
type Route struct {
	// Scope is the scope whose flag decides: flags.ScopeOf(name).
	Scope flags.Scope
	// Mode is the mode publishes run in now, as Publish resolves it.
	Mode flags.Mode
	// Channel and Topic are the Inngest channel and topic of the room and
	// name, as the realtime provider publishes and mints tokens for them
	// (keyed channels included), or empty when it does not name them or
	// cannot carry them.
	Channel, Topic string
}

// Route returns where a message of room and name would be published now:
// the one answer Publish, the token endpoint (package tokens) and the
// logs use, so that browsers listen where messages go. It never panics:
// the mode is resolved as for Publish.
func (b *Broadcast) Route(ctx context.Context, room, name string) Route {
	scope, mode := b.resolve(ctx, room, name)
	channel, topic, _ := b.rt.names(room, name)
	return Route{Scope: scope, Mode: mode, Channel: channel, Topic: topic}
}

// SubscriptionToken mints an Inngest Realtime subscription token for room
// and names through the realtime provider, so that a token handler built on
// the Broadcast (tokens.NewHandler) mints with the same mapping the
// publishes use. It fails with [realtime.ErrNotConfigured] when the realtime
// provider cannot mint tokens.
func (b *Broadcast) SubscriptionToken(ctx context.Context, room string, names []string) (inngest.Token, error) {
	m, ok := b.rt.p.(interface {
		SubscriptionToken(context.Context, string, []string) (inngest.Token, error)
	})
	if !ok {
		return inngest.Token{}, fmt.Errorf("%w: the realtime provider %T mints no subscription tokens", realtime.ErrNotConfigured, b.rt.p)
	}
	return m.SubscriptionToken(ctx, room, names)
}

// BaseURL returns the base URL of the realtime provider's Inngest API (the
// default apiBaseUrl of the token endpoint's answers), or "" when it has
// none.
func (b *Broadcast) BaseURL() string {
	if u, ok := b.rt.p.(interface{ BaseURL() string }); ok {
		return u.BaseURL()
	}
	return ""
}

// PartyKitURL returns the base URL of the PartyKit provider (for a
// *legacyparty.Provider, its BaseURL), or "" when it has none: where the
// token endpoint tells browsers that read PartyKit to join.
func (b *Broadcast) PartyKitURL() string {
	if u, ok := b.legacy.p.(interface{ BaseURL() string }); ok {
		return u.BaseURL()
	}
	return ""
}

// resolve returns the scope and the mode of a publish of name to room,
// containing a panicking Resolver and taking an unknown mode as Legacy;
// each of those is logged and counted.
func (b *Broadcast) resolve(ctx context.Context, room, name string) (flags.Scope, flags.Mode) {
	scope := flags.ScopeOf(name)
	mode, cause, detail := b.modeIn(ctx, scope, room)
	if cause != "" {
		b.modeFailure(ctx, cause, scope, room, name, detail, mode)
	}
	b.observe(ctx, scope, room, mode)
	return scope, mode
}

// modeIn asks the Resolver for the mode of scope and room and returns the
// mode to use: inDoubt when it panicked, Legacy for an unknown mode; cause
// (a cause constant) and detail (the panic, or the mode answered) say
// which, empty when the answer was used as given.
func (b *Broadcast) modeIn(ctx context.Context, scope flags.Scope, room string) (mode flags.Mode, cause, detail string) {
	mode, r := b.modeOf(ctx, scope, room)
	switch {
	case r != nil:
		return inDoubt, causeResolverPanic, fmt.Sprint(r)
	case !mode.Known():
		return mode.OrLegacy(), causeUnknownMode, mode.String()
	}
	return mode, "", ""
}

func (b *Broadcast) modeOf(ctx context.Context, scope flags.Scope, room string) (mode flags.Mode, panicked any) {
	defer func() { panicked = recover() }()
	return b.resolver.Mode(ctx, scope, room), nil
}

// enter takes a place for a publish, or reports false after Close.
func (b *Broadcast) enter() bool {
	for {
		s := b.state.Load()
		if s&closedBit != 0 {
			return false
		}
		if b.state.CompareAndSwap(s, s+1) {
			return true
		}
	}
}

// leave gives back a place taken by enter or by a background leg.
func (b *Broadcast) leave() {
	if b.state.Add(-1) == closedBit {
		close(b.drained)
	}
}

// Publish validates and encodes msg once, appends it to the replay log,
// resolves its mode and publishes the same envelope to the transports of
// that mode, concurrently when there are two. It returns a validation or
// encoding error as is (no transport is called then), [ErrClosed] after
// Close, and otherwise the joined [*TransportError]s of the transports that
// count (see [flags.Mode]).
func (b *Broadcast) Publish(ctx context.Context, msg realtime.Message) error {
	if !b.enter() {
		return ErrClosed
	}
	defer b.leave()
	env, err := realtime.NewEnvelope(ctx, msg)
	if err != nil {
		return err
	}
	scope, mode := b.resolve(ctx, msg.Room, msg.Name)
	return b.publishIn(ctx, env, scope, mode)
}

// PublishEnvelope publishes an envelope encoded already (see
// [realtime.EnvelopePublisher]) as Publish does.
func (b *Broadcast) PublishEnvelope(ctx context.Context, env *realtime.Envelope) error {
	if !b.enter() {
		return ErrClosed
	}
	defer b.leave()
	if env == nil {
		return fmt.Errorf("%w: no envelope (use realtime.NewEnvelope)", realtime.ErrInvalidMessage)
	}
	msg := env.Message()
	scope, mode := b.resolve(ctx, msg.Room, msg.Name)
	return b.publishIn(ctx, env, scope, mode)
}

// Pin resolves the mode for messages of room and name once and returns a
// Provider that publishes every message in that mode, whatever the flags say
// later: a stream that started on PartyKit ends on PartyKit. It implements
// [realtime.Pinner]. The mode is resolved as for Publish: an unknown mode is
// Legacy, and a panicking Resolver pins Shadow.
//
// In realtime mode without FallbackToLegacy, when the realtime provider
// implements [realtime.StreamPublisher], so does the pinned Provider, so
// that package chunkstream can use Inngest's native streaming publish.
func (b *Broadcast) Pin(ctx context.Context, room, name string) realtime.Provider {
	_, mode := b.resolve(ctx, room, name)
	pinned := realtime.ProviderFunc(func(ctx context.Context, msg realtime.Message) error {
		if !b.enter() {
			return ErrClosed
		}
		defer b.leave()
		env, err := realtime.NewEnvelope(ctx, msg)
		if err != nil {
			return err
		}
		return b.publishIn(ctx, env, flags.ScopeOf(msg.Name), mode)
	})
	if sp, ok := b.rt.p.(realtime.StreamPublisher); ok && mode == flags.Realtime && !b.fallback {
		return pinnedStream{ProviderFunc: pinned, b: b, sp: sp}
	}
	return pinned
}

// pinnedStream is a pinned realtime-only Provider that can also stream.
type pinnedStream struct {
	realtime.ProviderFunc
	b  *Broadcast
	sp realtime.StreamPublisher
}

// PublishStream streams r to the realtime provider.
func (p pinnedStream) PublishStream(ctx context.Context, room, name string, r io.Reader) error {
	if !p.b.enter() {
		return ErrClosed
	}
	defer p.b.leave()
	if err := safeStream(ctx, p.sp, room, name, r); err != nil {
		return &TransportError{Transport: TransportInngest, Mode: flags.Realtime, Err: err}
	}
	return nil
}

var _ realtime.Pinner = (*Broadcast)(nil)

func (b *Broadcast) publishIn(ctx context.Context, env *realtime.Envelope, scope flags.Scope, mode flags.Mode) error {
	env = b.sequence(ctx, env, scope)
	p := publish{b: b, env: env, mode: mode, scope: scope}
	switch mode {
	case flags.Realtime:
		err := p.counted(ctx, b.rt)
		if err == nil || !b.fallback || ctx.Err() != nil {
			return err
		}
		if ferr := p.counted(ctx, b.legacy); ferr != nil {
			return errors.Join(err, ferr)
		}
		return nil
	case flags.Shadow:
		return p.both(ctx, b.legacy, b.rt)
	case flags.Primary:
		return p.both(ctx, b.rt, b.legacy)
	default: // flags.Legacy; resolve never gives an unknown mode
		return p.counted(ctx, b.legacy)
	}
}

// Close stops new publishes and waits, until ctx ends, for the publishes in
// flight, background deliveries that outlived their publish's budget
// included. Once Close returned nil, no provider is called again, and the
// Broadcast's own replay log is closed. It is safe to call more than once.
func (b *Broadcast) Close(ctx context.Context) error {
	old := b.state.Or(closedBit)
	if old == 0 {
		close(b.drained)
	}
	if old&closedBit == 0 && b.gauge != nil {
		_ = b.gauge.Unregister() // the SDK's error would only repeat a failed registration
	}
	select {
	case <-b.drained: // drained wins over a ctx that is also done
		return b.closeLog()
	default:
	}
	select {
	case <-b.drained:
		return b.closeLog()
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (b *Broadcast) closeLog() error {
	if b.ownLog {
		return b.history.Close()
	}
	return nil
}

// logTimeout bounds one append to the replay log.
const logTimeout = time.Second

// sequence appends env to the replay log and returns it numbered; an
// envelope numbered already (PublishEnvelope of one) is returned as it is.
// When the append fails, env goes out without seq: a publish never waits
// for, or fails because of, the log.
func (b *Broadcast) sequence(ctx context.Context, env *realtime.Envelope, scope flags.Scope) *realtime.Envelope {
	msg := env.Message()
	if msg.Seq != 0 {
		return env
	}
	actx := ctx
	if !b.ownLog { // the Broadcast's own log is in memory and never waits
		var cancel context.CancelFunc
		actx, cancel = context.WithTimeout(ctx, logTimeout)
		defer cancel()
	}
	entry, err := safeAppend(actx, b.history, msg.Room, msg.ID, env.Bytes())
	if err != nil {
		b.logFailure(ctx, scope, msg, err)
		return env
	}
	b.metrics.appended(ctx, entry.Duplicate)
	return env.Sequenced(entry.Seq, entry.Epoch)
}

// safeAppend is log.Append with a panic contained.
func safeAppend(ctx context.Context, log replay.Log, room, id string, envelope []byte) (entry replay.Entry, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: the replay log panicked: %v", ErrPanic, r)
		}
	}()
	return log.Append(ctx, room, id, envelope)
}

// History returns up to limit messages of room with seq above after, in
// seq order, from the replay log: what a client that saw seq after missed
// (see [replay.Page]). The token endpoint (package tokens) serves it to
// browsers.
func (b *Broadcast) History(ctx context.Context, room string, after uint64, limit int) (replay.Page, error) {
	if !b.enter() {
		return replay.Page{}, ErrClosed
	}
	defer b.leave()
	return b.history.After(ctx, room, after, limit)
}

// leg is one of the two transports of a Broadcast.
type leg struct {
	name string
	p    realtime.Provider
	ep   realtime.EnvelopePublisher // p, when it takes an envelope encoded already
}

func newLeg(name string, p realtime.Provider) leg {
	ep, _ := p.(realtime.EnvelopePublisher)
	return leg{name: name, p: p, ep: ep}
}

// publish sends env to the transport, containing a panicking provider and
// a nil pointer returned as an error.
func (l *leg) publish(ctx context.Context, env *realtime.Envelope) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %v", ErrPanic, r)
		}
	}()
	if l.ep != nil {
		return soundError(l.ep.PublishEnvelope(ctx, env))
	}
	// A provider that takes no envelope encodes the message itself: its
	// envelope has the id, but no seq, which only the log gives.
	msg := env.Message()
	msg.Seq, msg.Epoch = 0, 0
	return soundError(l.p.Publish(ctx, msg))
}

// publish is one call to Publish.
type publish struct {
	b     *Broadcast
	env   *realtime.Envelope
	mode  flags.Mode
	scope flags.Scope
}

// counted publishes on the caller's goroutine and returns the transport's
// error, wrapped.
func (p *publish) counted(ctx context.Context, to leg) error {
	start := time.Now()
	err := to.publish(ctx, p.env)
	p.record(ctx, to, start, err, false)
	if err != nil {
		return &TransportError{Transport: to.name, Mode: p.mode, Err: err}
	}
	return nil
}

// both publishes to the counted transport on the caller's goroutine and to
// the other one concurrently, waiting for the other at most the budget. The
// other leg's context is detached from the caller's cancellation and ends
// ShadowTimeout after the leg started.
func (p *publish) both(ctx context.Context, to, other leg) error {
	start := time.Now()
	l := &otherLeg{p: *p, to: other, start: start, done: make(chan struct{})}
	l.ctx, l.cancel = context.WithTimeout(context.WithoutCancel(ctx), p.b.shadowTO)
	// The publish holds a place, so Close cannot have drained: the leg takes
	// its own, given back when it ends.
	p.b.state.Add(1)
	go l.run()

	err := p.counted(ctx, to)

	select {
	case <-l.done:
		return err
	default:
	}
	if rest := p.b.budget - time.Since(start); rest > 0 {
		wait := time.NewTimer(rest)
		defer wait.Stop()
		select {
		case <-l.done:
			return err
		case <-wait.C:
		}
	}
	l.detached.Store(true)
	return err
}

// otherLeg is the publish to the transport that does not count.
type otherLeg struct {
	p      publish
	to     leg
	start  time.Time
	ctx    context.Context // ends ShadowTimeout after start
	cancel context.CancelFunc

	done     chan struct{}
	detached atomic.Bool // set when Publish returned before the leg ended
}

// run publishes to the transport that does not count. A failure after the
// leg's own ShadowTimeout ran out is a timeout, whatever error the
// transport made of it.
func (l *otherLeg) run() {
	defer l.p.b.leave()
	defer l.cancel()
	defer close(l.done)
	err := l.to.publish(l.ctx, l.p.env)
	if err != nil && errors.Is(l.ctx.Err(), context.DeadlineExceeded) && !errors.Is(err, context.DeadlineExceeded) {
		err = fmt.Errorf("%w (shadow timeout): %w", context.DeadlineExceeded, err)
	}
	l.p.record(l.ctx, l.to, l.start, err, l.detached.Load())
}

// safeStream is safePublish for a streaming publish.
func safeStream(ctx context.Context, sp realtime.StreamPublisher, room, name string, r io.Reader) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %v", ErrPanic, r)
		}
	}()
	return soundError(sp.PublishStream(ctx, room, name, r))
}

// soundError returns err when it is nil or safe to inspect. A nil pointer
// in a non-nil error interface (error((*realtime.PublishError)(nil))), or
// an error whose chain panics when errors.Is walks it, becomes an error
// matching [ErrNilError] that does not hold it: it is a failure, and every
// later errors.Is, errors.As or Error on it would call a method on a nil
// pointer.
func soundError(err error) (sound error) {
	if err == nil {
		return nil
	}
	if isNil(err) {
		return fmt.Errorf("%w (%T); counted as a failed publish", ErrNilError, err)
	}
	defer func() {
		if r := recover(); r != nil {
			sound = fmt.Errorf("%w: walking the chain of %T panicked: %v", ErrNilError, err, r)
		}
	}()
	errors.Is(err, errNever) // walks the whole chain
	_ = err.Error()
	return err
}

// errNever is matched by no error: errors.Is(err, errNever) visits every
// error in err's chain.
var errNever = errors.New("broadcast: never matched")
