package broadcast

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/coursebuilder/realtime-go/flags"
	"github.com/coursebuilder/realtime-go/realtime"
)

// Metric names, listed in the package doc for dashboards and alerts.
const (
	metricPublishes        = "realtime.broadcast.publishes"
	metricErrors           = "realtime.broadcast.errors"
	metricDuration         = "realtime.broadcast.duration"
	metricDetached         = "realtime.broadcast.detached"
	metricResolverFailures = "realtime.broadcast.resolver_failures"
	metricLogAppends       = "realtime.broadcast.log_appends"
)

// Causes of a failed mode resolution, the "cause" attribute of
// realtime.broadcast.resolver_failures and log field.
const (
	causeResolverPanic = "resolver_panic" // the Resolver panicked; the publish ran in Shadow mode
	causeUnknownMode   = "unknown_mode"   // the Resolver answered an unknown mode; the publish ran in Legacy mode
)

// outcomeOf is the "outcome" attribute and log field of one transport's
// publish: ok, error, timeout, canceled, panic or too_large (the transport
// refused the envelope as over its size limit; nothing was sent).
func outcomeOf(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, ErrPanic):
		return "panic"
	case errors.Is(err, realtime.ErrPayloadTooLarge):
		return "too_large"
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	}
	return "error"
}

type instruments struct {
	meter                                         metric.Meter
	mode                                          metric.Int64ObservableGauge
	publishes, errors, detached, resolverFailures metric.Int64Counter
	duration                                      metric.Float64Histogram
	logAppends                                    metric.Int64Counter
	// appendOK, appendDuplicate and appendError are the attribute options
	// of the three outcomes of an append, made once.
	appendOK, appendDuplicate, appendError []metric.AddOption

	mu    sync.RWMutex
	attrs map[attrKey]*attrOpts // built once per attribute combination
}

// attrOpts are ready-made option slices, so that recording a measurement
// allocates nothing on the publish path.
type attrOpts struct {
	add    []metric.AddOption
	record []metric.RecordOption
}

type attrKey struct {
	transport string
	mode      flags.Mode
	scope     flags.Scope
	outcome   string
}

func newInstruments(m metric.Meter) *instruments {
	if m == nil {
		m = noop.NewMeterProvider().Meter("")
	}
	in := &instruments{meter: m, attrs: map[attrKey]*attrOpts{}}
	// The API returns usable no-op instruments alongside any error, so an
	// error here only means a misconfigured SDK; publishing goes on.
	in.publishes, _ = m.Int64Counter(metricPublishes, metric.WithDescription("Publishes per transport, by mode, scope and outcome."))
	in.errors, _ = m.Int64Counter(metricErrors, metric.WithDescription("Failed publishes per transport, by mode, scope and outcome."))
	in.detached, _ = m.Int64Counter(metricDetached, metric.WithDescription("Publishes to the transport that does not count that outlived the shadow budget."))
	in.resolverFailures, _ = m.Int64Counter(metricResolverFailures, metric.WithDescription("Publishes whose mode could not be resolved as asked (resolver or scope panic, unknown mode), by scope and cause."))
	in.logAppends, _ = m.Int64Counter(metricLogAppends, metric.WithDescription("Appends to the replay log, by outcome (ok, duplicate, error)."))
	outcome := func(o string) []metric.AddOption {
		return []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(attribute.String("outcome", o)))}
	}
	in.appendOK, in.appendDuplicate, in.appendError = outcome("ok"), outcome("duplicate"), outcome("error")
	in.mode, _ = m.Int64ObservableGauge(metricMode, metric.WithDescription("The mode in force per scope: 1 for the mode publishes of the scope resolve to now, 0 for the other modes."))
	// A healthy app has its failure series at zero from the start, so that a
	// panel that reads them shows 0 rather than "No data".
	in.logAppends.Add(context.Background(), 0, in.appendError...)
	in.duration, _ = m.Float64Histogram(metricDuration, metric.WithUnit("s"),
		metric.WithDescription("Latency of one transport's publish, retries included."),
		metric.WithExplicitBucketBoundaries(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
	return in
}

func (in *instruments) options(k attrKey) *attrOpts {
	in.mu.RLock()
	o := in.attrs[k]
	in.mu.RUnlock()
	if o != nil {
		return o
	}
	return in.build(k)
}

// build makes and stores the options of a new attribute combination. It is
// apart from options to keep options' frame small: a shadow leg's goroutine
// calls it on its first, small stack.
func (in *instruments) build(k attrKey) *attrOpts {
	set := metric.WithAttributeSet(attribute.NewSet(
		attribute.String("transport", k.transport),
		attribute.String("mode", k.mode.String()),
		attribute.String("scope", string(k.scope)),
		attribute.String("outcome", k.outcome),
	))
	o := &attrOpts{add: []metric.AddOption{set}, record: []metric.RecordOption{set}}
	in.mu.Lock()
	if prev := in.attrs[k]; prev != nil {
		o = prev
	} else {
		in.attrs[k] = o
	}
	in.mu.Unlock()
	return o
}

// zeroSeries makes the failure series of a scope's mode exist at zero:
// errors of each transport the mode publishes to, detached publishes of
// the one that does not count, and the resolver failures of the scope, so
// that a healthy scope's panels and alerts read 0 rather than nothing.
func (in *instruments) zeroSeries(ctx context.Context, scope flags.Scope, mode flags.Mode) {
	for _, t := range []struct {
		name string
		used bool
	}{{TransportPartyKit, mode.PublishesLegacy()}, {TransportInngest, mode.PublishesRealtime()}} {
		if !t.used {
			continue
		}
		in.errors.Add(ctx, 0, in.options(attrKey{transport: t.name, mode: mode, scope: scope, outcome: "error"}).add...)
	}
	// Only the transport that does not count is ever detached.
	notCounted := ""
	switch mode {
	case flags.Shadow:
		notCounted = TransportInngest
	case flags.Primary:
		notCounted = TransportPartyKit
	}
	if notCounted != "" {
		in.detached.Add(ctx, 0, in.options(attrKey{transport: notCounted, mode: mode, scope: scope, outcome: "ok"}).add...)
	}
	for _, f := range []struct {
		cause string
		mode  flags.Mode
	}{{causeResolverPanic, inDoubt}, {causeUnknownMode, flags.Legacy}} {
		in.resolverFailures.Add(ctx, 0, metric.WithAttributes(
			attribute.String("scope", string(scope)),
			attribute.String("cause", f.cause),
			attribute.String("mode", f.mode.String())))
	}
}

// record writes the log line and the metrics of one transport's publish.
func (p *publish) record(ctx context.Context, to leg, start time.Time, err error, detached bool) {
	transport := to.name
	elapsed := time.Since(start)
	outcome := outcomeOf(err)
	in := p.b.metrics
	o := in.options(attrKey{transport: transport, mode: p.mode, scope: p.scope, outcome: outcome})
	in.publishes.Add(ctx, 1, o.add...)
	in.duration.Record(ctx, elapsed.Seconds(), o.record...)
	p.b.tallied(p.scope, p.mode, transport, elapsed, err != nil)
	if err != nil {
		in.errors.Add(ctx, 1, o.add...)
	}
	if detached {
		in.detached.Add(ctx, 1, o.add...)
	}

	level := zapcore.InfoLevel
	if err != nil {
		level = zapcore.WarnLevel
	}
	// Asking the core first keeps zap's large Check frame, and the fields,
	// off the stack when the line is not written: the goroutine of a shadow
	// leg then runs on its first small stack and never has to grow it.
	if p.b.log.Core().Enabled(level) {
		p.log(level, to, elapsed, outcome, err, detached)
	}
}

// log writes the line of one transport's publish.
func (p *publish) log(level zapcore.Level, to leg, elapsed time.Duration, outcome string, err error, detached bool) {
	ce := p.b.log.Check(level, "realtime: publish")
	if ce == nil {
		return
	}
	msg := p.env.Message()
	channel, topic, mapErr := p.b.rt.names(msg.Room, msg.Name)
	fields := []zap.Field{
		zap.String("transport", to.name),
		zap.String("mode", p.mode.String()),
		zap.String("scope", string(p.scope)),
		zap.String("channel", channel),
		zap.String("topic", topic),
		zap.String("room", msg.Room),
		zap.String("request_id", msg.RequestID),
		zap.Duration("latency", elapsed),
		zap.String("outcome", outcome),
	}
	if detached {
		fields = append(fields, zap.Bool("detached", true))
	}
	if mapErr != "" {
		fields = append(fields, zap.String("mapping_error", mapErr))
	}
	if err != nil {
		fields = append(fields, zap.String("error", errText(err)))
	}
	ce.Write(fields...)
}

// router is a realtime provider that names the channel and topic a message
// is published on, such as *inngest.Provider with its keyed channels.
type router interface {
	Channel(room string) (string, error)
	Topic(name string) (string, error)
}

// names returns the channel and topic the realtime transport publishes a
// message of room and name on, for log lines and [Broadcast.Route], and,
// when it cannot name them (a mapping func that panicked, a room it cannot
// carry), why, on one line; all empty when it names none. A panic is
// contained.
func (l *leg) names(room, name string) (channel, topic, mapErr string) {
	r, ok := l.p.(router)
	if !ok {
		return "", "", ""
	}
	defer func() {
		if rec := recover(); rec != nil {
			channel, topic = "", ""
			mapErr = oneLine(fmt.Sprintf("broadcast: the realtime provider's mapping panicked: %v", rec))
		}
	}()
	channel, cerr := r.Channel(room)
	topic, terr := r.Topic(name)
	if err := errors.Join(cerr, terr); err != nil {
		mapErr = errText(err)
	}
	return channel, topic, mapErr
}

// appended counts an append to the replay log.
func (in *instruments) appended(ctx context.Context, duplicate bool) {
	if duplicate {
		in.logAppends.Add(ctx, 1, in.appendDuplicate...)
		return
	}
	in.logAppends.Add(ctx, 1, in.appendOK...)
}

// logFailure counts and logs an append to the replay log that failed: the
// message goes out without seq.
func (b *Broadcast) logFailure(ctx context.Context, scope flags.Scope, msg realtime.Message, err error) {
	b.metrics.logAppends.Add(ctx, 1, b.metrics.appendError...)
	if ce := b.log.Check(zapcore.ErrorLevel, "realtime: replay log append failed; published without seq"); ce != nil {
		ce.Write(
			zap.String("scope", string(scope)),
			zap.String("room", msg.Room),
			zap.String("name", msg.Name),
			zap.String("id", msg.ID),
			zap.String("request_id", msg.RequestID),
			zap.String("error", errText(err)),
		)
	}
}

// modeFailure counts and logs a mode that could not be resolved as asked:
// cause is one of the Cause constants, detail the panic or the mode
// answered, used the mode the publish runs in instead.
func (b *Broadcast) modeFailure(ctx context.Context, cause string, scope flags.Scope, room, name, detail string, used flags.Mode) {
	b.metrics.resolverFailures.Add(ctx, 1, metric.WithAttributes(
		attribute.String("scope", string(scope)),
		attribute.String("cause", cause),
		attribute.String("mode", used.String()),
	))
	level := zapcore.ErrorLevel
	if cause == causeUnknownMode {
		level = zapcore.WarnLevel
	}
	if ce := b.log.Check(level, "realtime: mode resolution failed"); ce != nil {
		ce.Write(
			zap.String("cause", cause),
			zap.String("scope", string(scope)),
			zap.String("room", room),
			zap.String("name", name),
			zap.String("mode", used.String()),
			zap.String("error", oneLine(detail)),
		)
	}
}

// errText is err's message on one line, for a log field: errors.Join and
// some providers write several lines. An Error method that panics is
// contained.
func errText(err error) (s string) {
	defer func() {
		if r := recover(); r != nil {
			s = fmt.Sprintf("%T (its Error method panicked: %v)", err, r)
		}
	}()
	return oneLine(err.Error())
}

var newlines = strings.NewReplacer("\r\n", "; ", "\n", "; ", "\r", "; ")

// oneLine replaces the line breaks of s with "; ".
func oneLine(s string) string {
	if !strings.ContainsAny(s, "\r\n") {
		return s
	}
	return newlines.Replace(s)
}
