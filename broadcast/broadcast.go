package broadcast

import (
	"context"
	"errors"
	"fmt"
	"io"
	"reflect"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/coursebuilder/realtime-go/flags"
	"github.com/coursebuilder/realtime-go/realtime"
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

// Options configures [New]. A nil *Options means every default.
type Options struct {
	// Resolver picks the mode of each publish from its scope and room.
	// Defaults to flags.Fixed(flags.Legacy): PartyKit only.
	Resolver flags.Resolver
	// Scope maps an event name to its scope. Defaults to flags.ScopeOf.
	Scope func(name string) flags.Scope
	// ShadowBudget bounds how much a publish is delayed by the transport
	// whose outcome does not count (realtime in shadow mode, PartyKit in
	// primary mode), measured from the start of the publish. A transport
	// still running then goes on in the background, bounded by
	// ShadowTimeout. Defaults to 250ms.
	ShadowBudget time.Duration
	// ShadowTimeout bounds the transport whose outcome does not count,
	// independently of the caller's context, so that a late delivery still
	// happens (and is logged) after Publish returned. Defaults to 5s.
	ShadowTimeout time.Duration
	// FallbackToLegacy makes realtime mode publish to PartyKit when Inngest
	// Realtime fails; the publish then succeeds if PartyKit accepts it.
	FallbackToLegacy bool
	// Mapping is the room→channel and name→topic mapping of the realtime
	// provider, used only to name the channel and topic in log lines.
	Mapping realtime.Mapping
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
	mapping    realtime.Mapping
	log        *zap.Logger
	metrics    *instruments

	closed   atomic.Bool
	inflight sync.WaitGroup
}

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
func isNil(p realtime.Provider) bool {
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

// Mode returns the mode a message would be published in now, after the
// resolver and the transports that are configured.
func (b *Broadcast) Mode(ctx context.Context, msg realtime.Message) flags.Mode {
	return b.effective(b.resolver.Mode(ctx, b.scope(msg.Name), msg.Room))
}

func (b *Broadcast) effective(m flags.Mode) flags.Mode {
	switch {
	case b.rt == nil:
		return flags.Legacy
	case b.legacy == nil:
		return flags.Realtime
	}
	return m
}

// Publish validates msg, resolves its mode and publishes to the transports
// of that mode, concurrently when there are two. It returns a validation
// error as is, [ErrClosed] after Close, and otherwise the joined
// [*TransportError]s of the transports that count (see [flags.Mode]).
func (b *Broadcast) Publish(ctx context.Context, msg realtime.Message) error {
	if b.closed.Load() {
		return ErrClosed
	}
	if err := msg.Validate(); err != nil {
		return err
	}
	scope := b.scope(msg.Name)
	return b.publishIn(ctx, msg, scope, b.effective(b.resolver.Mode(ctx, scope, msg.Room)))
}

// Pin resolves the mode for messages of room and name once and returns a
// Provider that publishes every message in that mode, whatever the flags say
// later: a stream that started on PartyKit ends on PartyKit. It implements
// [realtime.Pinner].
//
// In realtime mode without FallbackToLegacy, when the realtime provider
// implements [realtime.StreamPublisher], so does the pinned Provider, so
// that package chunkstream can use Inngest's native streaming publish.
func (b *Broadcast) Pin(ctx context.Context, room, name string) realtime.Provider {
	scope := b.scope(name)
	mode := b.effective(b.resolver.Mode(ctx, scope, room))
	pinned := realtime.ProviderFunc(func(ctx context.Context, msg realtime.Message) error {
		if b.closed.Load() {
			return ErrClosed
		}
		if err := msg.Validate(); err != nil {
			return err
		}
		return b.publishIn(ctx, msg, b.scope(msg.Name), mode)
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
	if p.b.closed.Load() {
		return ErrClosed
	}
	if err := p.sp.PublishStream(ctx, room, name, r); err != nil {
		return &TransportError{Transport: TransportInngest, Mode: flags.Realtime, Err: err}
	}
	return nil
}

var _ realtime.Pinner = (*Broadcast)(nil)

func (b *Broadcast) publishIn(ctx context.Context, msg realtime.Message, scope flags.Scope, mode flags.Mode) error {
	p := publish{b: b, msg: msg, mode: mode, scope: scope}
	switch mode {
	case flags.Legacy:
		return p.counted(ctx, TransportPartyKit, b.legacy)
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
	default: // flags.Primary
		return p.both(ctx, TransportInngest, b.rt, TransportPartyKit, b.legacy)
	}
}

// Close stops new publishes and waits, until ctx ends, for background
// deliveries that outlived their publish's budget. It is safe to call more
// than once.
func (b *Broadcast) Close(ctx context.Context) error {
	b.closed.Store(true)
	done := make(chan struct{})
	go func() { b.inflight.Wait(); close(done) }()
	select {
	case <-done:
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
// the other one concurrently, waiting for the other at most the budget.
func (p *publish) both(ctx context.Context, name string, to realtime.Provider, otherName string, other realtime.Provider) error {
	start := time.Now()
	leg := &otherLeg{done: make(chan struct{})}
	p.b.inflight.Add(1)
	go p.runOther(ctx, leg, otherName, other, start)

	err := p.counted(ctx, name, to)

	select {
	case <-leg.done:
	default:
		// The other leg was started just now and, in memory or on a fast
		// transport, is about to end: let it run before arming a timer.
		runtime.Gosched()
		select {
		case <-leg.done:
			return err
		default:
		}
		wait := time.NewTimer(p.b.budget - time.Since(start))
		select {
		case <-leg.done:
		case <-wait.C:
			leg.detach()
		}
		wait.Stop()
	}
	return err
}

// otherLeg is the publish to the transport that does not count.
type otherLeg struct {
	done     chan struct{}
	detached atomic.Bool // set when Publish returned before the leg ended

	mu     sync.Mutex
	cancel context.CancelFunc
	rest   time.Duration // ShadowTimeout left once the budget is spent
	timer  *time.Timer
}

func (l *otherLeg) setCancel(cancel context.CancelFunc, rest time.Duration) {
	l.mu.Lock()
	l.cancel, l.rest = cancel, max(rest, 0)
	if l.detached.Load() && l.timer == nil {
		l.timer = time.AfterFunc(l.rest, cancel)
	}
	l.mu.Unlock()
}

// detach marks the leg as outliving its publish and starts the
// ShadowTimeout clock on it.
func (l *otherLeg) detach() {
	l.mu.Lock()
	l.detached.Store(true)
	if l.cancel != nil && l.timer == nil {
		l.timer = time.AfterFunc(l.rest, l.cancel)
	}
	l.mu.Unlock()
}

// runOther publishes to the transport that does not count, detached from
// the caller's cancellation and bounded by ShadowTimeout.
func (p publish) runOther(ctx context.Context, leg *otherLeg, name string, to realtime.Provider, start time.Time) {
	defer p.b.inflight.Done()
	defer close(leg.done)
	// Detached from the caller's cancellation; bounded by ShadowTimeout only
	// once the leg outlives its budget, so the common path arms no timer.
	octx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	leg.setCancel(cancel, p.b.shadowTO-p.b.budget)
	err := safePublish(octx, to, p.msg)
	leg.mu.Lock()
	if leg.timer != nil {
		leg.timer.Stop()
	}
	leg.mu.Unlock()
	p.record(octx, name, start, err, leg.detached.Load())
}

// safePublish contains a panicking provider.
func safePublish(ctx context.Context, to realtime.Provider, msg realtime.Message) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %v", ErrPanic, r)
		}
	}()
	return to.Publish(ctx, msg)
}
