package broadcast

import (
	"context"
	"errors"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/coursebuilder/realtime-go/flags"
)

// Metric names, documented in the package doc for dashboards and alerts.
const (
	MetricPublishes = "realtime.broadcast.publishes"
	MetricErrors    = "realtime.broadcast.errors"
	MetricDuration  = "realtime.broadcast.duration"
	MetricDetached  = "realtime.broadcast.detached"
)

// Outcomes of one transport's publish, the "outcome" attribute and log field.
const (
	OutcomeOK       = "ok"
	OutcomeError    = "error"
	OutcomeTimeout  = "timeout"
	OutcomeCanceled = "canceled"
	OutcomePanic    = "panic"
)

func outcomeOf(err error) string {
	switch {
	case err == nil:
		return OutcomeOK
	case errors.Is(err, ErrPanic):
		return OutcomePanic
	case errors.Is(err, context.DeadlineExceeded):
		return OutcomeTimeout
	case errors.Is(err, context.Canceled):
		return OutcomeCanceled
	}
	return OutcomeError
}

type instruments struct {
	publishes, errors, detached metric.Int64Counter
	duration                    metric.Float64Histogram

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
	in := &instruments{attrs: map[attrKey]*attrOpts{}}
	// The API returns usable no-op instruments alongside any error, so an
	// error here only means a misconfigured SDK; publishing goes on.
	in.publishes, _ = m.Int64Counter(MetricPublishes, metric.WithDescription("Publishes per transport, by mode, scope and outcome."))
	in.errors, _ = m.Int64Counter(MetricErrors, metric.WithDescription("Failed publishes per transport, by mode, scope and outcome."))
	in.detached, _ = m.Int64Counter(MetricDetached, metric.WithDescription("Publishes to the transport that does not count that outlived the shadow budget."))
	in.duration, _ = m.Float64Histogram(MetricDuration, metric.WithUnit("s"),
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

// record writes the log line and the metrics of one transport's publish.
func (p *publish) record(ctx context.Context, transport string, start time.Time, err error, detached bool) {
	elapsed := time.Since(start)
	outcome := outcomeOf(err)
	in := p.b.metrics
	o := in.options(attrKey{transport: transport, mode: p.mode, scope: p.scope, outcome: outcome})
	in.publishes.Add(ctx, 1, o.add...)
	in.duration.Record(ctx, elapsed.Seconds(), o.record...)
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
		p.log(level, transport, elapsed, outcome, err, detached)
	}
}

// log writes the line of one transport's publish.
func (p *publish) log(level zapcore.Level, transport string, elapsed time.Duration, outcome string, err error, detached bool) {
	ce := p.b.log.Check(level, "realtime: publish")
	if ce == nil {
		return
	}
	channel, _ := p.b.mapping.ChannelFor(p.msg.Room)
	topic, _ := p.b.mapping.TopicFor(p.msg.Name)
	fields := []zap.Field{
		zap.String("transport", transport),
		zap.String("mode", p.mode.String()),
		zap.String("scope", string(p.scope)),
		zap.String("channel", channel),
		zap.String("topic", topic),
		zap.String("room", p.msg.Room),
		zap.String("request_id", p.msg.RequestID),
		zap.Duration("latency", elapsed),
		zap.String("outcome", outcome),
	}
	if detached {
		fields = append(fields, zap.Bool("detached", true))
	}
	if err != nil {
		fields = append(fields, zap.Error(err))
	}
	ce.Write(fields...)
}
