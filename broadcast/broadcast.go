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
)

// Transport names, as they appear in errors, log lines and metrics.
const (
	TransportPartyKit = "partykit"
	TransportInngest  = "inngest"
)

// Defaults for [Options].
const (
	DefaultShadowBudget  = 250 * time.Millisecond
	DefaultShadowTimeout = 5 * time.Second
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
	// Resolver picks the mode of each publish from its scope and room.
	// Defaults to flags.Fixed(flags.Legacy): PartyKit only. A mode that is
	// not [flags.Mode.Known] is taken as Legacy. A Resolver that panics is
	// contained: the mode is then unknown, and the publish goes to both
	// transports in Shadow mode (see the package doc, "When the mode is in
	// doubt").
	Resolver flags.Resolver
	// Scope maps an event name to its scope. Defaults to flags.ScopeOf. A
	// Scope func that panics is contained like a panicking Resolver; the
	// scope is then flags.ScopeDefault in logs and metrics.
	Scope func(name string) flags.Scope
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
	// Mapping is the room→channel and name→topic mapping of the realtime
	// provider, used only to name the channel and topic in log lines. When
	// the realtime provider names its own wire channel (an
	// *inngest.Provider: its Channel method, keyed channels included), the
	// channel field is that one, so that it matches the token's. A Mapping
	// func that panics leaves those fields empty and adds a mapping_error
	// field; the publish is not affected.
	Mapping inngest.Mapping
	// Logger receives one line per transport per publish. Defaults to
	// zap.NewNop().
	Logger *zap.Logger
	// Meter records the metrics listed in the package doc. Defaults to a
	// no-op meter.
	Meter metric.Meter
}

// Broadcast is a [realtime.Provider] that publishes each message to
// PartyKit, Inngest Realtime or both, as the mode of the message's scope
// says. It is safe for concurrent use.
type Broadcast struct {
	legacy, rt realtime.Provider
	resolver   flags.Resolver
	scope      func(string) flags.Scope
	budget     time.Duration
	shadowTO   time.Duration
	fallback   bool
	mapping    inngest.Mapping
	log        *zap.Logger
	metrics    *instruments

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
		legacy:   legacy,
		rt:       rt,
		resolver: o.Resolver,
		scope:    o.Scope,
		budget:   o.ShadowBudget,
		shadowTO: o.ShadowTimeout,
		fallback: o.FallbackToLegacy,
		mapping:  o.Mapping,
		log:      o.Logger,
		metrics:  newInstruments(o.Meter),
		drained:  make(chan struct{}),
	}
	if b.resolver == nil {
		b.resolver = flags.Fixed(flags.Legacy)
	}
	if b.scope == nil {
		b.scope = flags.ScopeOf
	}
	if b.budget <= 0 {
		b.budget = DefaultShadowBudget
	}
	if b.shadowTO <= 0 {
		b.shadowTO = DefaultShadowTimeout
	}
	if b.log == nil {
		b.log = zap.NewNop()
	}
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
// Resolver or the Scope func panicked): both transports are attempted, so
// that the message reaches browsers whichever transport they read, and
// PartyKit's outcome counts, as it does for every scope until a flag moves
// it past shadow.
const inDoubt = flags.Shadow

// Mode returns the mode a message would be published in now: the
// resolver's answer for its scope, Legacy for an answer that is not
// [flags.Mode.Known], and Shadow when the resolver or the Scope func
// panicked.
func (b *Broadcast) Mode(ctx context.Context, msg realtime.Message) flags.Mode {
	_, mode := b.resolve(ctx, msg.Room, msg.Name)
	return mode
}

// resolve returns the scope and the mode of a publish of name to room,
// containing a panicking Scope func or Resolver and taking an unknown mode
// as Legacy; each of those is logged and counted.
func (b *Broadcast) resolve(ctx context.Context, room, name string) (flags.Scope, flags.Mode) {
	scope, ok := b.scopeOf(ctx, room, name)
	if !ok {
		return scope, inDoubt
	}
	mode, r := b.modeOf(ctx, scope, room)
	switch {
	case r != nil:
		b.modeFailure(ctx, CauseResolverPanic, scope, room, name, fmt.Sprint(r), inDoubt)
		return scope, inDoubt
	case !mode.Known():
		b.modeFailure(ctx, CauseUnknownMode, scope, room, name, mode.String(), mode.OrLegacy())
		return scope, mode.OrLegacy()
	}
	return scope, mode
}

// scopeOf returns the scope of name, or flags.ScopeDefault and false when
// the Scope func panicked, which it logs and counts.
func (b *Broadcast) scopeOf(ctx context.Context, room, name string) (flags.Scope, bool) {
	scope, r := b.safeScope(name)
	if r != nil {
		b.modeFailure(ctx, CauseScopePanic, flags.ScopeDefault, room, name, fmt.Sprint(r), inDoubt)
		return flags.ScopeDefault, false
	}
	return scope, true
}

func (b *Broadcast) safeScope(name string) (scope flags.Scope, panicked any) {
	defer func() { panicked = recover() }()
	return b.scope(name), nil
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

// Publish validates msg, resolves its mode and publishes to the transports
// of that mode, concurrently when there are two. It returns a validation
// error as is, [ErrClosed] after Close, and otherwise the joined
// [*TransportError]s of the transports that count (see [flags.Mode]).
func (b *Broadcast) Publish(ctx context.Context, msg realtime.Message) error {
	if !b.enter() {
		return ErrClosed
	}
	defer b.leave()
	if err := msg.Validate(); err != nil {
		return err
	}
	scope, mode := b.resolve(ctx, msg.Room, msg.Name)
	return b.publishIn(ctx, msg, scope, mode)
}

// Pin resolves the mode for messages of room and name once and returns a
// Provider that publishes every message in that mode, whatever the flags say
// later: a stream that started on PartyKit ends on PartyKit. It implements
// [realtime.Pinner]. The mode is resolved as for Publish: an unknown mode is
// Legacy, and a panicking Resolver or Scope func pins Shadow.
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
		if err := msg.Validate(); err != nil {
			return err
		}
		scope, _ := b.scopeOf(ctx, msg.Room, msg.Name)
		return b.publishIn(ctx, msg, scope, mode)
	})
	if sp, ok := b.rt.(realtime.StreamPublisher); ok && mode == flags.Realtime && !b.fallback {
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

func (b *Broadcast) publishIn(ctx context.Context, msg realtime.Message, scope flags.Scope, mode flags.Mode) error {
	p := publish{b: b, msg: msg, mode: mode, scope: scope}
	switch mode {
	case flags.Realtime:
		err := p.counted(ctx, TransportInngest, b.rt)
		if err == nil || !b.fallback || ctx.Err() != nil {
			return err
		}
		if ferr := p.counted(ctx, TransportPartyKit, b.legacy); ferr != nil {
			return errors.Join(err, ferr)
		}
		return nil
	case flags.Shadow:
		return p.both(ctx, TransportPartyKit, b.legacy, TransportInngest, b.rt)
	case flags.Primary:
		return p.both(ctx, TransportInngest, b.rt, TransportPartyKit, b.legacy)
	default: // flags.Legacy; resolve never gives an unknown mode
		return p.counted(ctx, TransportPartyKit, b.legacy)
	}
}

// Close stops new publishes and waits, until ctx ends, for the publishes in
// flight, background deliveries that outlived their publish's budget
// included. Once Close returned nil, no provider is called again. It is
// safe to call more than once.
func (b *Broadcast) Close(ctx context.Context) error {
	if b.state.Or(closedBit) == 0 {
		close(b.drained)
	}
	select {
	case <-b.drained: // drained wins over a ctx that is also done
		return nil
	default:
	}
	select {
	case <-b.drained:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// publish is one call to Publish.
type publish struct {
	b     *Broadcast
	msg   realtime.Message
	mode  flags.Mode
	scope flags.Scope
}

// counted publishes on the caller's goroutine and returns the transport's
// error, wrapped.
func (p *publish) counted(ctx context.Context, name string, to realtime.Provider) error {
	start := time.Now()
	err := safePublish(ctx, to, p.msg)
	p.record(ctx, name, start, err, false)
	if err != nil {
		return &TransportError{Transport: name, Mode: p.mode, Err: err}
	}
	return nil
}

// both publishes to the counted transport on the caller's goroutine and to
// the other one concurrently, waiting for the other at most the budget. The
// other leg's context is detached from the caller's cancellation and ends
// ShadowTimeout after the leg started.
func (p *publish) both(ctx context.Context, name string, to realtime.Provider, otherName string, other realtime.Provider) error {
	start := time.Now()
	leg := &otherLeg{p: *p, name: otherName, to: other, start: start, done: make(chan struct{})}
	leg.ctx, leg.cancel = context.WithTimeout(context.WithoutCancel(ctx), p.b.shadowTO)
	// The publish holds a place, so Close cannot have drained: the leg takes
	// its own, given back when it ends.
	p.b.state.Add(1)
	go leg.run()

	err := p.counted(ctx, name, to)

	select {
	case <-leg.done:
		return err
	default:
	}
	if rest := p.b.budget - time.Since(start); rest > 0 {
		wait := time.NewTimer(rest)
		defer wait.Stop()
		select {
		case <-leg.done:
			return err
		case <-wait.C:
		}
	}
	leg.detached.Store(true)
	return err
}

// otherLeg is the publish to the transport that does not count.
type otherLeg struct {
	p      publish
	name   string
	to     realtime.Provider
	start  time.Time
	ctx    context.Context // ends ShadowTimeout after start
	cancel context.CancelFunc

	done     chan struct{}
	detached atomic.Bool // set when Publish returned before the leg ended
}

// run publishes to the transport that does not count.
func (l *otherLeg) run() {
	defer l.p.b.leave()
	defer l.cancel()
	defer close(l.done)
	err := safePublish(l.ctx, l.to, l.p.msg)
	l.p.record(l.ctx, l.name, l.start, err, l.detached.Load())
}

// safePublish contains a panicking provider and a nil pointer returned as
// an error.
func safePublish(ctx context.Context, to realtime.Provider, msg realtime.Message) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %v", ErrPanic, r)
		}
	}()
	return soundError(to.Publish(ctx, msg))
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
