package flags

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/open-feature/go-sdk/openfeature"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
	"go.uber.org/zap"
)

// fallbackMetric is the OpenTelemetry Int64Counter an [Evaluator] adds one
// to for every call it could not answer from a flag evaluation; its
// attributes are in the package documentation (Fallbacks).
const fallbackMetric = "realtime.flag.fallbacks"

// Values of the counter's "answer" attribute: the last mode resolved for
// the scope, or Legacy because nothing was known yet.
const (
	answerLastKnown = "last_known"
	answerDefault   = "default"
)

// Attributes of the evaluation context, besides the targeting key (the
// room); the package documentation lists them for flag rules.
const (
	attrApp         = "app"
	attrEnvironment = "environment"
	attrScope       = "scope"
	attrRoom        = "room"
)

// Defaults of [Options], as documented on its fields.
const (
	defaultTimeout     = 50 * time.Millisecond
	defaultMaxInFlight = 1024
	defaultLogInterval = 10 * time.Second
	defaultCacheTTL    = time.Second
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
	// Meter creates the counter realtime.flag.fallbacks (see the package
	// documentation, Fallbacks). Defaults to a no-op meter.
	Meter metric.Meter
	// Timeout bounds one call to [Evaluator.Mode], all of its flag
	// evaluations included; past it the call answers the last known mode
	// (see the package documentation). Defaults to 50ms; zero or negative
	// means the default.
	Timeout time.Duration
	// MaxInFlight bounds the evaluations still running, counting those a
	// timed-out call left behind in a provider that ignores its context.
	// Once reached, calls answer the last known mode at once (reason
	// "saturated") instead of starting another. Defaults to 1024; zero or
	// negative means the default.
	MaxInFlight int
	// CacheTTL is how long a mode resolved for a (scope, room) is reused
	// without asking the provider again. The cache is also dropped as soon as
	// the provider reports a configuration change, or becomes ready, stale or
	// in error (OpenFeature events), so with a provider that emits events a
	// flipped flag applies to the next publish, and within CacheTTL with one
	// that does not. Defaults to 1s; zero means the default, negative
	// disables the cache (every call evaluates).
	CacheTTL time.Duration
	// LogInterval is how often at most one fallback is logged per scope and
	// reason; the next log line carries how many were suppressed meanwhile.
	// The counter counts every one. Defaults to 10s; negative logs every
	// fallback.
	LogInterval time.Duration
}

// Evaluator is the OpenFeature-backed [Resolver]. For each call to
// [Evaluator.Mode] it evaluates, with the room as targeting key:
//
//  1. [KillSwitchKey] (bool): true → Legacy.
//  2. [Scope.ModeKey] of the scope (string): a mode → that mode.
//  3. [ScopeDefault]'s ModeKey (string): a mode → that mode.
//  4. Legacy.
//
// A flag that is absent (FLAG_NOT_FOUND), disabled or empty moves on to the
// next step; anything else that goes wrong answers the last mode resolved
// for the scope — Legacy only while nothing is known — and counts a fallback.
// A resolved mode is reused for Options.CacheTTL or until the provider
// reports a change. Create one with [NewEvaluator] and [Evaluator.Close] it
// when done; the zero value and a nil *Evaluator answer Legacy to everything.
type Evaluator struct {
	client      openfeature.IClient
	log         *zap.Logger
	fallbacks   metric.Int64Counter
	timeout     time.Duration
	maxInFlight int64
	ttl         time.Duration // <= 0: no cache
	logEvery    time.Duration
	app, env    string
	seed        maphash.Seed

	inFlight atomic.Int64
	// gen is the cache generation: an entry resolved under another
	// generation is stale. Provider events add one.
	gen     atomic.Uint64
	known   [len(knownScopes)]*scopeInfo
	others  otherScopes
	handler openfeature.EventCallback
	closeMu sync.Mutex
	closed  atomic.Bool
}

// cacheEvents are the provider events that drop the cache.
var cacheEvents = [...]openfeature.EventType{
	openfeature.ProviderConfigChange, openfeature.ProviderReady,
	openfeature.ProviderError, openfeature.ProviderStale,
}

// knownScopes mirrors Scopes as an array so per-scope state can live in a
// fixed-size array indexed without a map lookup.
var knownScopes = [...]Scope{ScopeVideoUpload, ScopeVideoReady, ScopeVideoErrored, ScopeTranscript, ScopeAIStream, ScopeDefault}

// The rooms remembered per scope live in a set-associative table indexed
// by a hash of the room — cacheBuckets buckets of cacheWays entries — so it
// is bounded (512 rooms per scope) and lock-free; a room arriving in a full
// bucket evicts one of its entries.
const (
	cacheBuckets = 128
	cacheWays    = 4
)

// maxOtherScopes bounds how many scopes outside [Scopes] get a cache and a
// last known mode of their own; further ones are evaluated on every call
// and fall back to Legacy.
const maxOtherScopes = 64

// NewEvaluator returns an Evaluator that reads flags through client.
//
// Build the client from an isolated OpenFeature API rather than the global
// singleton, so that the library never touches process-wide state:
//
//	api := isolated.NewAPI()
//	if err := api.SetProviderAndWait(ctx, flags.NewEnvProvider(nil)); err != nil { … }
//	defer api.Shutdown(ctx)
//	ev := flags.NewEvaluator(api.NewClient(), &flags.Options{App: "astro-party"})
//	defer ev.Close()
//
// The Evaluator subscribes to the client's provider events to drop its
// cache (see Options.CacheTTL); [Evaluator.Close] unsubscribes. It starts no
// goroutine of its own besides the evaluations.
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
		ttl:         o.CacheTTL,
		logEvery:    o.LogInterval,
		app:         o.App,
		env:         o.Environment,
		seed:        maphash.MakeSeed(),
	}
	if e.log == nil {
		e.log = zap.NewNop()
	}
	if e.timeout <= 0 {
		e.timeout = defaultTimeout
	}
	if e.maxInFlight <= 0 {
		e.maxInFlight = defaultMaxInFlight
	}
	if e.ttl == 0 {
		e.ttl = defaultCacheTTL
	}
	if e.logEvery == 0 {
		e.logEvery = defaultLogInterval
	}
	meter := o.Meter
	if meter == nil {
		meter = noop.NewMeterProvider().Meter("")
	}
	counter, err := meter.Int64Counter(fallbackMetric,
		metric.WithDescription("Realtime mode evaluations that failed and were answered with the last known mode, or legacy when none was known."),
		metric.WithUnit("{fallback}"))
	if err != nil {
		e.log.Warn("flags: creating the fallback counter", zap.String("metric", fallbackMetric), zap.Error(err))
	}
	if counter == nil {
		counter = noop.Int64Counter{}
	}
	e.fallbacks = counter
	for i, s := range knownScopes {
		e.known[i] = e.newScopeInfo(s, new([numReasons]logGate), true)
		// A series at zero per known scope from the start, so that a healthy
		// app's fallback panel reads 0 rather than "No data".
		e.fallbacks.Add(context.Background(), 0, e.known[i].opts[reasonProviderError][1])
	}
	e.others.shared = new([numReasons]logGate)
	if client != nil && e.ttl > 0 {
		f := func(openfeature.EventDetails) { e.invalidate() }
		e.handler = &f
		for _, t := range cacheEvents {
			client.AddHandler(t, e.handler)
		}
	}
	return e
}

// invalidate drops every cached mode; the last known modes stay.
func (e *Evaluator) invalidate() {
	e.gen.Add(1)
}

// Close unsubscribes the Evaluator from its client's provider events and
// turns its cache off: later calls still answer, evaluating every time. It
// is safe to call more than once and on a nil or zero Evaluator, and always
// returns nil.
func (e *Evaluator) Close() error {
	if e == nil {
		return nil
	}
	e.closeMu.Lock()
	defer e.closeMu.Unlock()
	if e.closed.Swap(true) {
		return nil
	}
	if e.client != nil && e.handler != nil {
		for _, t := range cacheEvents {
			e.client.RemoveHandler(t, e.handler)
		}
	}
	return nil
}

// scopeInfo is what a call needs about its scope, computed once per scope.
type scopeInfo struct {
	scope Scope
	key   string         // scope.ModeKey()
	base  map[string]any // app, environment and scope attributes; read-only
	opts  *[numReasons][2]metric.AddOption
	gates *[numReasons]logGate
	// slots caches resolved modes per room; nil for an uncached scope.
	slots *[cacheBuckets]bucket
	// lastMode is the latest mode resolved in the scope, plus one; zero
	// while nothing is known.
	lastMode atomic.Uint32
}

// bucket is one set of the per-scope room cache.
type bucket [cacheWays]atomic.Pointer[cached]

// find returns the entry of room, or nil.
func (b *bucket) find(room string) *cached {
	for i := range b {
		if c := b[i].Load(); c != nil && c.room == room {
			return c
		}
	}
	return nil
}

// put stores c in the way holding its room, else in an empty way, else in
// the way victim picks.
func (b *bucket) put(c *cached, victim uint64) {
	free := -1
	for i := range b {
		old := b[i].Load()
		if old != nil && old.room == c.room {
			b[i].Store(c)
			return
		}
		if old == nil && free < 0 {
			free = i
		}
	}
	if free < 0 {
		free = int(victim % cacheWays)
	}
	b[free].Store(c)
}

// cached is one resolved mode of a room; immutable once stored.
type cached struct {
	room    string
	mode    Mode
	gen     uint64
	expires time.Time
}

// otherScopes holds the state of scopes outside [Scopes], up to
// maxOtherScopes of them.
type otherScopes struct {
	mu     sync.RWMutex
	m      map[Scope]*scopeInfo
	shared *[numReasons]logGate // log gates of the scopes past the bound
}

// evalContext returns the evaluation context of room in si's scope. It is
// built on every evaluation the mode cache misses: caching it too saved
// about 5% of an uncached Mode call, within noise, and under 1% of a
// publish.
func (si *scopeInfo) evalContext(room string) openfeature.EvaluationContext {
	attrs := make(map[string]any, len(si.base)+1)
	for k, v := range si.base {
		attrs[k] = v
	}
	attrs[attrRoom] = room
	return openfeature.NewEvaluationContext(room, attrs)
}

// newScopeInfo builds the state of scope s; stateful gives it a cache, a
// last known mode and precomputed metric options.
func (e *Evaluator) newScopeInfo(s Scope, gates *[numReasons]logGate, stateful bool) *scopeInfo {
	si := &scopeInfo{scope: s, key: s.ModeKey(), base: make(map[string]any, 4), gates: gates}
	if e.app != "" {
		si.base[attrApp] = e.app
	}
	if e.env != "" {
		si.base[attrEnvironment] = e.env
	}
	si.base[attrScope] = string(s)
	if stateful {
		si.slots = new([cacheBuckets]bucket)
		si.opts = new([numReasons][2]metric.AddOption)
		for r := reason(1); r < numReasons; r++ {
			si.opts[r][0] = addOption(s, r, answerDefault)
			si.opts[r][1] = addOption(s, r, answerLastKnown)
		}
	}
	return si
}

// info returns the state of s: precomputed for the scopes in [Scopes],
// created on first use for up to maxOtherScopes others, and built afresh
// (no cache, no last known mode, shared log gates) past that bound, so that
// arbitrary scope strings cannot grow the Evaluator.
func (e *Evaluator) info(s Scope) *scopeInfo {
	for i, k := range knownScopes {
		if k == s {
			return e.known[i]
		}
	}
	o := &e.others
	o.mu.RLock()
	si := o.m[s]
	o.mu.RUnlock()
	if si != nil {
		return si
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if si = o.m[s]; si != nil {
		return si
	}
	if len(o.m) >= maxOtherScopes {
		return e.newScopeInfo(s, o.shared, false)
	}
	if o.m == nil {
		o.m = make(map[Scope]*scopeInfo)
	}
	si = e.newScopeInfo(s, new([numReasons]logGate), true)
	o.m[s] = si
	return si
}

func addOption(s Scope, r reason, answer string) metric.AddOption {
	return metric.WithAttributeSet(attribute.NewSet(
		attribute.String("scope", string(s)), attribute.String("reason", r.String()),
		attribute.String("answer", answer)))
}

// slot is where a room's mode is cached: its bucket, and hash bits that
// pick the entry it evicts when the bucket is full.
type slot struct {
	b      *bucket
	victim uint64
}

// slot returns the cache slot of room in si; a zero slot without a cache.
func (e *Evaluator) slot(si *scopeInfo, room string) slot {
	if si.slots == nil {
		return slot{}
	}
	h := maphash.String(e.seed, room)
	return slot{b: &si.slots[h%cacheBuckets], victim: h >> 32}
}

// Mode returns the mode of a publish in scope to room. It never fails and
// never panics: whatever goes wrong resolves to the last mode known for the
// scope (Legacy while none is), is logged and counted (see the package
// documentation), and the call returns within the configured Timeout
// whatever the provider does.
func (e *Evaluator) Mode(ctx context.Context, scope Scope, room string) Mode {
	if e == nil || e.log == nil {
		return Legacy // zero value: nothing to log or count with
	}
	si := e.info(scope)
	slot := e.slot(si, room)
	if slot.b != nil && e.ttl > 0 && !e.closed.Load() {
		if c := slot.b.find(room); c != nil && c.gen == e.gen.Load() && time.Now().Before(c.expires) {
			return c.mode
		}
	}
	if ctx == nil {
		ctx = context.Background()
	}
	if e.client == nil {
		return e.fallback(si, slot, room, outcome{reason: reasonNoProvider, key: KillSwitchKey})
	}
	switch e.client.State() {
	case openfeature.NotReadyState:
		return e.fallback(si, slot, room, outcome{reason: reasonNotReady, key: KillSwitchKey})
	case openfeature.FatalState:
		return e.fallback(si, slot, room, outcome{reason: reasonFatal, key: KillSwitchKey})
	}
	if ctx.Err() != nil {
		return e.fallback(si, slot, room, outcome{reason: reasonCanceled, key: KillSwitchKey, err: ctx.Err()})
	}
	if e.inFlight.Add(1) > e.maxInFlight {
		e.inFlight.Add(-1)
		return e.fallback(si, slot, room, outcome{reason: reasonSaturated, key: KillSwitchKey})
	}

	ctx, cancel := context.WithTimeout(ctx, e.timeout)
	defer cancel()
	// Buffered, so the goroutine never blocks on a caller that gave up.
	done := make(chan outcome, 1)
	go e.run(ctx, si, slot, room, e.gen.Load(), done)
	select {
	case o := <-done:
		if o.reason == reasonNone {
			return o.mode
		}
		if ctx.Err() != nil && o.reason == reasonProviderError {
			// The provider gave up because the deadline passed.
			o.reason = ctxReason(ctx)
		}
		return e.fallback(si, slot, room, o)
	case <-ctx.Done():
		return e.fallback(si, slot, room, outcome{reason: ctxReason(ctx), key: KillSwitchKey, err: ctx.Err()})
	}
}

func ctxReason(ctx context.Context) reason {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return reasonTimeout
	}
	return reasonCanceled
}

// run resolves on its own goroutine so that Mode can stop waiting at the
// deadline, and turns a panicking provider or hook into a fallback. A
// successful resolution is remembered even when Mode has stopped waiting,
// so a late answer still becomes the scope's last known mode.
func (e *Evaluator) run(ctx context.Context, si *scopeInfo, slot slot, room string, gen uint64, done chan<- outcome) {
	key := KillSwitchKey
	defer func() {
		if r := recover(); r != nil {
			// Leave the in-flight count before answering, so that a caller
			// publishing sequentially never finds its own last call in it.
			e.inFlight.Add(-1)
			done <- outcome{reason: reasonPanic, key: key, err: fmt.Errorf("flags: provider panicked: %v", r)}
		}
	}()
	o := e.resolve(ctx, si, room, &key)
	if o.reason == reasonNone {
		e.remember(si, slot, room, o.mode, gen)
	}
	e.inFlight.Add(-1)
	done <- o
}

// remember records m as resolved for room under cache generation gen.
func (e *Evaluator) remember(si *scopeInfo, slot slot, room string, m Mode, gen uint64) {
	if si.slots == nil {
		return
	}
	si.lastMode.Store(uint32(m) + 1)
	if slot.b != nil {
		slot.b.put(&cached{room: room, mode: m, gen: gen, expires: time.Now().Add(e.ttl)}, slot.victim)
	}
}

// lastKnown returns the mode last resolved for room, else for its scope.
func (si *scopeInfo) lastKnown(slot slot, room string) (Mode, bool) {
	if slot.b != nil {
		if c := slot.b.find(room); c != nil {
			return c.mode, true
		}
	}
	if v := si.lastMode.Load(); v != 0 {
		return Mode(v - 1), true
	}
	return Legacy, false
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

var defaultModeKey = ScopeDefault.ModeKey()

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

// fallback logs (rate limited) and counts o, and returns the last known
// mode, or Legacy when none is known.
func (e *Evaluator) fallback(si *scopeInfo, slot slot, room string, o outcome) Mode {
	m, known := si.lastKnown(slot, room)
	answer, idx := answerDefault, 0
	if known {
		answer, idx = answerLastKnown, 1
	}
	if si.opts != nil {
		e.fallbacks.Add(context.Background(), 1, si.opts[o.reason][idx])
	} else {
		e.fallbacks.Add(context.Background(), 1, addOption(si.scope, o.reason, answer))
	}
	g := &si.gates[o.reason]
	if ok, suppressed := g.allow(time.Now(), e.logEvery); ok {
		fields := []zap.Field{
			zap.String("scope", string(si.scope)),
			zap.String("flag", o.key),
			zap.String("reason", o.reason.String()),
			zap.String("room", room),
			zap.String("answer", answer),
			zap.Stringer("mode", m),
		}
		if o.err != nil {
			fields = append(fields, zap.Error(o.err))
		}
		if suppressed > 0 {
			fields = append(fields, zap.Int64("suppressed", suppressed))
		}
		e.log.Warn("flags: realtime flag evaluation failed; answering the "+answerText(known)+" mode", fields...)
	}
	return m
}

func answerText(known bool) string {
	if known {
		return "last known"
	}
	return "default (legacy)"
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
