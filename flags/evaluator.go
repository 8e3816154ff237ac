package flags

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/open-feature/go-sdk/openfeature"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
	"go.uber.org/zap"
)

// FallbackMetric is the name of the OpenTelemetry Int64Counter an
// [Evaluator] adds one to for every call it answers with Legacy because a
// flag could not be evaluated. Its attributes are "scope" and "reason"; the
// reasons are listed in the package documentation.
const FallbackMetric = "realtime.flag.fallbacks"

// Attribute names of the evaluation context an [Evaluator] sends with every
// flag evaluation, besides the targeting key (the room).
const (
	AttrApp         = "app"
	AttrEnvironment = "environment"
	AttrScope       = "scope"
	AttrRoom        = "room"
)

// Defaults of [Options].
const (
	DefaultTimeout     = 50 * time.Millisecond
	DefaultMaxInFlight = 1024
	DefaultLogInterval = 10 * time.Second
)

// Options configures an [Evaluator]. A nil *Options means every default.
// The module takes optional settings as an *Options struct throughout: the
// zero value of each field is its default, so a struct literal names only what
// it changes.
type Options struct {
	// App is the application, sent as the "app" attribute so a flag can
	// target one app ("astro-party"). Omitted from the context when empty.
	App string
	// Environment is the deployment, sent as the "environment" attribute
	// ("production", "staging"). Omitted from the context when empty.
	Environment string
	// Logger receives a Warn for each fallback, rate limited by LogInterval.
	// Defaults to zap.NewNop().
	Logger *zap.Logger
	// Meter creates the [FallbackMetric] counter. Defaults to a no-op meter.
	Meter metric.Meter
	// Timeout bounds one call to [Evaluator.Mode], all of its flag
	// evaluations included; past it the call answers Legacy. Defaults to
	// [DefaultTimeout] (50ms); zero or negative means the default.
	Timeout time.Duration
	// MaxInFlight bounds the evaluations still running, counting those a
	// timed-out call left behind in a provider that ignores its context.
	// Once reached, calls answer Legacy at once (reason "saturated") instead
	// of starting another. Defaults to [DefaultMaxInFlight] (1024); zero or
	// negative means the default.
	MaxInFlight int
	// LogInterval is how often at most one fallback is logged per scope and
	// reason; the next log line carries how many were suppressed meanwhile.
	// The counter counts every one. Defaults to [DefaultLogInterval] (10s);
	// negative logs every fallback.
	LogInterval time.Duration
	// Now is the clock of LogInterval. Defaults to time.Now.
	Now func() time.Time
}

// Evaluator is the OpenFeature-backed [Resolver]. For each call to
// [Evaluator.Mode] it evaluates, with the room as targeting key:
//
//  1. [KillSwitchKey] (bool): true → Legacy.
//  2. ModeKey(scope) (string): a mode → that mode.
//  3. ModeKey([ScopeDefault]) (string): a mode → that mode.
//  4. Legacy.
//
// A flag that is absent (FLAG_NOT_FOUND), disabled or empty moves on to the
// next step; anything else that goes wrong answers Legacy at once and counts
// a fallback. Create one with [NewEvaluator]; the zero value and a nil
// *Evaluator answer Legacy to everything.
type Evaluator struct {
	client      openfeature.IClient
	log         *zap.Logger
	fallbacks   metric.Int64Counter
	timeout     time.Duration
	maxInFlight int64
	logEvery    time.Duration
	now         func() time.Time
	app, env    string

	inFlight   atomic.Int64
	known      [len(knownScopes)]*scopeInfo
	otherGates [numReasons]logGate // shared by scopes not in Scopes
}

// knownScopes mirrors Scopes as an array so per-scope state can live in a
// fixed-size array indexed without a map lookup.
var knownScopes = [...]Scope{ScopeVideoUpload, ScopeVideoReady, ScopeVideoErrored, ScopeTranscript, ScopeAIStream, ScopeDefault}

// NewEvaluator returns an Evaluator that reads flags through client.
//
// Build the client from an isolated OpenFeature API rather than the global
// singleton, so that the library never touches process-wide state:
//
//	api := isolated.NewAPI()
//	if err := api.SetProviderAndWait(ctx, flags.NewEnvProvider(nil)); err != nil { … }
//	defer api.Shutdown(ctx)
//	ev := flags.NewEvaluator(api.NewClient(), &flags.Options{App: "astro-party"})
//
// A nil client is allowed: every call then answers Legacy and counts a
// "no_provider" fallback.
func NewEvaluator(client openfeature.IClient, opts *Options) *Evaluator {
	var o Options
	if opts != nil {
		o = *opts
	}
	if c, ok := client.(*openfeature.Client); ok && c == nil {
		client = nil
	}
	e := &Evaluator{
		client:      client,
		log:         o.Logger,
		timeout:     o.Timeout,
		maxInFlight: int64(o.MaxInFlight),
		logEvery:    o.LogInterval,
		now:         o.Now,
		app:         o.App,
		env:         o.Environment,
	}
	if e.log == nil {
		e.log = zap.NewNop()
	}
	if e.timeout <= 0 {
		e.timeout = DefaultTimeout
	}
	if e.maxInFlight <= 0 {
		e.maxInFlight = DefaultMaxInFlight
	}
	if e.logEvery == 0 {
		e.logEvery = DefaultLogInterval
	}
	if e.now == nil {
		e.now = time.Now
	}
	meter := o.Meter
	if meter == nil {
		meter = noop.NewMeterProvider().Meter("")
	}
	counter, err := meter.Int64Counter(FallbackMetric,
		metric.WithDescription("Realtime mode evaluations answered with legacy because a flag could not be evaluated."),
		metric.WithUnit("{fallback}"))
	if err != nil {
		e.log.Warn("flags: creating the fallback counter", zap.String("metric", FallbackMetric), zap.Error(err))
	}
	if counter == nil {
		counter = noop.Int64Counter{}
	}
	e.fallbacks = counter
	for i, s := range knownScopes {
		si := e.newScopeInfo(s, new([numReasons]logGate))
		si.opts = new([numReasons]metric.AddOption)
		si.last = new(atomic.Pointer[roomContext])
		for r := reason(1); r < numReasons; r++ {
			si.opts[r] = addOption(s, r)
		}
		e.known[i] = si
	}
	return e
}

// scopeInfo is what a call needs about its scope, computed once for each
// scope in [Scopes].
type scopeInfo struct {
	scope Scope
	key   string         // ModeKey(scope)
	base  map[string]any // app, environment and scope attributes; read-only
	opts  *[numReasons]metric.AddOption
	gates *[numReasons]logGate
	// last caches the evaluation context of the scope's latest room: a
	// stream of publishes to one room (AI chunks, a video's pipeline) then
	// reuses it instead of building two maps per call. One entry per scope
	// keeps it bounded without a lock; nil for scopes outside Scopes.
	last *atomic.Pointer[roomContext]
}

// roomContext is an immutable evaluation context for one room.
type roomContext struct {
	room string
	ec   openfeature.EvaluationContext
}

// evalContext returns the evaluation context of room in si's scope. The
// SDK treats an EvaluationContext as immutable (it copies attributes before
// merging), so one value can be shared by concurrent evaluations.
func (si *scopeInfo) evalContext(room string) openfeature.EvaluationContext {
	if si.last != nil {
		if rc := si.last.Load(); rc != nil && rc.room == room {
			return rc.ec
		}
	}
	attrs := make(map[string]any, len(si.base)+1)
	for k, v := range si.base {
		attrs[k] = v
	}
	attrs[AttrRoom] = room
	ec := openfeature.NewEvaluationContext(room, attrs)
	if si.last != nil {
		si.last.Store(&roomContext{room: room, ec: ec})
	}
	return ec
}

func (e *Evaluator) newScopeInfo(s Scope, gates *[numReasons]logGate) *scopeInfo {
	si := &scopeInfo{scope: s, key: ModeKey(s), base: make(map[string]any, 4), gates: gates}
	if e.app != "" {
		si.base[AttrApp] = e.app
	}
	if e.env != "" {
		si.base[AttrEnvironment] = e.env
	}
	si.base[AttrScope] = string(s)
	return si
}

// info returns the precomputed scopeInfo of s, or builds one for a scope
// outside [Scopes], which shares one set of log gates with every such scope
// so that arbitrary scope strings cannot grow the Evaluator.
func (e *Evaluator) info(s Scope) *scopeInfo {
	for i, k := range knownScopes {
		if k == s {
			return e.known[i]
		}
	}
	return e.newScopeInfo(s, &e.otherGates)
}

func addOption(s Scope, r reason) metric.AddOption {
	return metric.WithAttributeSet(attribute.NewSet(
		attribute.String("scope", string(s)), attribute.String("reason", r.String())))
}

// Mode returns the mode of a publish in scope to room. It never fails and
// never panics: whatever goes wrong resolves to Legacy, is logged and counted
// (see the package documentation), and the call returns within the
// configured Timeout whatever the provider does.
func (e *Evaluator) Mode(ctx context.Context, scope Scope, room string) Mode {
	if e == nil || e.log == nil {
		return Legacy // zero value: nothing to log or count with
	}
	if ctx == nil {
		ctx = context.Background()
	}
	si := e.info(scope)
	if e.client == nil {
		return e.fallback(si, room, outcome{reason: reasonNoProvider, key: KillSwitchKey})
	}
	switch e.client.State() {
	case openfeature.NotReadyState:
		return e.fallback(si, room, outcome{reason: reasonNotReady, key: KillSwitchKey})
	case openfeature.FatalState:
		return e.fallback(si, room, outcome{reason: reasonFatal, key: KillSwitchKey})
	}
	if ctx.Err() != nil {
		return e.fallback(si, room, outcome{reason: reasonCanceled, key: KillSwitchKey, err: ctx.Err()})
	}
	if e.inFlight.Add(1) > e.maxInFlight {
		e.inFlight.Add(-1)
		return e.fallback(si, room, outcome{reason: reasonSaturated, key: KillSwitchKey})
	}

	ctx, cancel := context.WithTimeout(ctx, e.timeout)
	defer cancel()
	// Buffered, so the goroutine never blocks on a caller that gave up.
	done := make(chan outcome, 1)
	go e.run(ctx, si, room, done)
	select {
	case o := <-done:
		if o.reason == reasonNone {
			return o.mode
		}
		if ctx.Err() != nil && o.reason == reasonProviderError {
			// The provider gave up because the deadline passed.
			o.reason = ctxReason(ctx)
		}
		return e.fallback(si, room, o)
	case <-ctx.Done():
		return e.fallback(si, room, outcome{reason: ctxReason(ctx), key: KillSwitchKey, err: ctx.Err()})
	}
}

func ctxReason(ctx context.Context) reason {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return reasonTimeout
	}
	return reasonCanceled
}

// run resolves on its own goroutine so that Mode can stop waiting at the
// deadline, and turns a panicking provider or hook into a fallback.
func (e *Evaluator) run(ctx context.Context, si *scopeInfo, room string, done chan<- outcome) {
	defer e.inFlight.Add(-1)
	key := KillSwitchKey
	defer func() {
		if r := recover(); r != nil {
			done <- outcome{reason: reasonPanic, key: key, err: fmt.Errorf("flags: provider panicked: %v", r)}
		}
	}()
	done <- e.resolve(ctx, si, room, &key)
}

// resolve walks the kill switch, the scope's flag and the default flag.
// *key follows the flag being evaluated, for the panic report.
func (e *Evaluator) resolve(ctx context.Context, si *scopeInfo, room string, key *string) outcome {
	ec := si.evalContext(room)
	kill, err := e.client.BooleanValueDetails(ctx, KillSwitchKey, false, ec)
	if err != nil {
		if kill.ErrorCode != openfeature.FlagNotFoundCode {
			return outcome{reason: codeReason(kill.ErrorCode), key: KillSwitchKey, err: err}
		}
	} else if kill.Value {
		return outcome{mode: Legacy}
	}

	*key = si.key
	m, set, o := e.modeFlag(ctx, si.key, ec)
	if o.reason != reasonNone || set {
		o.mode = m
		return o
	}
	if si.scope == ScopeDefault {
		return outcome{mode: Legacy}
	}
	*key = defaultModeKey
	m, set, o = e.modeFlag(ctx, defaultModeKey, ec)
	if o.reason != reasonNone || set {
		o.mode = m
		return o
	}
	return outcome{mode: Legacy}
}

var defaultModeKey = ModeKey(ScopeDefault)

// modeFlag evaluates one mode flag. set is false when the flag is absent,
// disabled or empty, so the caller moves on to the next one.
func (e *Evaluator) modeFlag(ctx context.Context, key string, ec openfeature.EvaluationContext) (Mode, bool, outcome) {
	d, err := e.client.StringValueDetails(ctx, key, "", ec)
	if err != nil {
		if d.ErrorCode == openfeature.FlagNotFoundCode {
			return Legacy, false, outcome{}
		}
		return Legacy, false, outcome{reason: codeReason(d.ErrorCode), key: key, err: err}
	}
	if strings.TrimSpace(d.Value) == "" {
		return Legacy, false, outcome{}
	}
	m, err := ParseMode(d.Value)
	if err != nil {
		return Legacy, false, outcome{reason: reasonInvalidMode, key: key, err: err}
	}
	return m, true, outcome{}
}

// outcome is the result of one resolution; reason is reasonNone on success.
type outcome struct {
	mode   Mode
	reason reason
	key    string // the flag whose evaluation failed
	err    error
}

// fallback logs (rate limited) and counts o, and returns Legacy.
func (e *Evaluator) fallback(si *scopeInfo, room string, o outcome) Mode {
	if si.opts != nil {
		e.fallbacks.Add(context.Background(), 1, si.opts[o.reason])
	} else {
		e.fallbacks.Add(context.Background(), 1, addOption(si.scope, o.reason))
	}
	g := &si.gates[o.reason]
	if ok, suppressed := g.allow(e.now(), e.logEvery); ok {
		fields := []zap.Field{
			zap.String("scope", string(si.scope)),
			zap.String("flag", o.key),
			zap.String("reason", o.reason.String()),
			zap.String("room", room),
		}
		if o.err != nil {
			fields = append(fields, zap.Error(o.err))
		}
		if suppressed > 0 {
			fields = append(fields, zap.Int64("suppressed", suppressed))
		}
		e.log.Warn("flags: realtime flag evaluation fell back to legacy", fields...)
	}
	return Legacy
}

// logGate lets one log line through per interval and counts the rest.
type logGate struct {
	next       atomic.Int64 // unix nanoseconds before which lines are suppressed
	suppressed atomic.Int64
}

func (g *logGate) allow(now time.Time, every time.Duration) (bool, int64) {
	if every < 0 {
		return true, 0
	}
	t := now.UnixNano()
	n := g.next.Load()
	if t >= n && g.next.CompareAndSwap(n, t+int64(every)) {
		return true, g.suppressed.Swap(0)
	}
	g.suppressed.Add(1)
	return false, 0
}

// reason is why a call fell back to Legacy; its String is the "reason"
// attribute of the counter.
type reason uint8

const (
	reasonNone reason = iota
	reasonNoProvider
	reasonNotReady
	reasonFatal
	reasonTimeout
	reasonCanceled
	reasonSaturated
	reasonProviderError
	reasonTypeMismatch
	reasonParseError
	reasonInvalidMode
	reasonPanic
	numReasons
)

var reasonNames = [numReasons]string{
	reasonNone:          "none",
	reasonNoProvider:    "no_provider",
	reasonNotReady:      "provider_not_ready",
	reasonFatal:         "provider_fatal",
	reasonTimeout:       "timeout",
	reasonCanceled:      "canceled",
	reasonSaturated:     "saturated",
	reasonProviderError: "provider_error",
	reasonTypeMismatch:  "type_mismatch",
	reasonParseError:    "parse_error",
	reasonInvalidMode:   "invalid_mode",
	reasonPanic:         "panic",
}

func (r reason) String() string { return reasonNames[r] }

func codeReason(c openfeature.ErrorCode) reason {
	switch c {
	case openfeature.TypeMismatchCode:
		return reasonTypeMismatch
	case openfeature.ParseErrorCode:
		return reasonParseError
	case openfeature.ProviderNotReadyCode:
		return reasonNotReady
	case openfeature.ProviderFatalCode:
		return reasonFatal
	}
	return reasonProviderError
}
