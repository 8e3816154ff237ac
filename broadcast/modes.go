package broadcast

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/coursebuilder/realtime-go/flags"
)

// metricMode is the gauge of the mode in force per scope.
const metricMode = "realtime.broadcast.mode"

// ModeChange is a change of a scope's mode that a Broadcast observed: the
// migration plan's communication log of every flip, with the figures of
// the mode that ended. Each one is logged ("realtime: mode changed") and
// passed to Options.OnModeChange.
type ModeChange struct {
	// Scope is the scope whose mode changed.
	Scope flags.Scope
	// From is the mode in force until At, To the one from At on. For the
	// first mode a Broadcast sees for a scope, Initial is true and From is
	// meaningless.
	From, To flags.Mode
	Initial  bool
	// Since is when From took effect (when it was first observed); At is
	// when To was. Since equals At when Initial.
	Since, At time.Time
	// Figures are the publishes of the scope in From that finished between
	// Since and At, one entry per transport that was published to,
	// PartyKit first. One still in flight at At is in no ModeChange.
	Figures []Figures
}

// Figures sums up one transport's publishes of one scope while a mode was
// in force.
type Figures struct {
	// Transport is TransportPartyKit or TransportInngest.
	Transport string
	// Publishes counts every publish to the transport, Errors the ones
	// that failed (whatever the outcome: timeouts and cancellations too).
	Publishes, Errors int64
	// P99 is the 99th percentile of the publishes' latency, interpolated
	// within the buckets of realtime.broadcast.duration as Prometheus's
	// histogram_quantile does; 0 without publishes.
	P99 time.Duration
}

// durationBounds are the bucket bounds, in seconds, of
// realtime.broadcast.duration and of the figures of a ModeChange.
var durationBounds = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// tally counts one transport's publishes while a mode is in force.
type tally struct {
	publishes, errors int64
	buckets           [14]int64 // len(durationBounds)+1, the last one +Inf
}

func (t *tally) add(elapsed time.Duration, failed bool) {
	t.publishes++
	if failed {
		t.errors++
	}
	i, _ := slices.BinarySearch(durationBounds, elapsed.Seconds())
	t.buckets[i]++
}

// p99 interpolates the 99th percentile linearly within its bucket, as
// histogram_quantile does (the +Inf bucket answers the highest bound).
func (t *tally) p99() time.Duration {
	if t.publishes == 0 {
		return 0
	}
	rank := 0.99 * float64(t.publishes)
	var seen int64
	for i, n := range t.buckets {
		if n == 0 || float64(seen+n) < rank {
			seen += n
			continue
		}
		if i == len(durationBounds) {
			return seconds(durationBounds[i-1])
		}
		lower := 0.0
		if i > 0 {
			lower = durationBounds[i-1]
		}
		upper := durationBounds[i]
		return seconds(lower + (upper-lower)*(rank-float64(seen))/float64(n))
	}
	return seconds(durationBounds[len(durationBounds)-1])
}

func seconds(s float64) time.Duration { return time.Duration(math.Round(s * float64(time.Second))) }

// scopeState is what a Broadcast knows of one scope's mode.
type scopeState struct {
	mu       sync.Mutex
	seen     bool       // a mode was observed
	mode     flags.Mode // the mode observed last
	since    time.Time  // when mode was first observed
	room     string     // the room seen last, to resolve the mode again at collection
	partykit tally
	inngest  tally
}

// scopeStates are the states of the known scopes ([flags.Scopes], every
// scope [flags.ScopeOf] gives), made once by New and only read after.
type scopeStates map[flags.Scope]*scopeState

func newScopeStates() scopeStates {
	s := make(scopeStates, len(flags.Scopes))
	for _, sc := range flags.Scopes {
		s[sc] = &scopeState{}
	}
	return s
}

// observe records that a publish (or a Route, or a collection) of scope
// resolved to mode; it reports a change, with the figures of the mode that
// ended, when mode is not the one observed before.
func (b *Broadcast) observe(ctx context.Context, scope flags.Scope, room string, mode flags.Mode) {
	st := b.scopes[scope]
	if st == nil {
		return
	}
	st.mu.Lock()
	st.room = room
	if st.seen && st.mode == mode {
		st.mu.Unlock()
		return
	}
	now := time.Now()
	c := ModeChange{Scope: scope, From: st.mode, To: mode, Initial: !st.seen, Since: st.since, At: now}
	if c.Initial {
		c.Since = now
	}
	for _, f := range []struct {
		name string
		t    *tally
	}{{TransportPartyKit, &st.partykit}, {TransportInngest, &st.inngest}} {
		if f.t.publishes > 0 {
			c.Figures = append(c.Figures, Figures{Transport: f.name, Publishes: f.t.publishes, Errors: f.t.errors, P99: f.t.p99()})
		}
		*f.t = tally{}
	}
	st.seen, st.mode, st.since = true, mode, now
	st.mu.Unlock()

	b.metrics.zeroSeries(ctx, scope, mode)
	b.changed(c)
}

// tallied counts one transport's publish in the figures of its scope's
// mode. A publish that finishes after its mode ended (one in flight at a
// flip, a shadow leg in the background) belongs to figures already
// reported, and is left out of the new mode's.
func (b *Broadcast) tallied(scope flags.Scope, mode flags.Mode, transport string, elapsed time.Duration, failed bool) {
	st := b.scopes[scope]
	if st == nil {
		return
	}
	st.mu.Lock()
	switch {
	case st.mode != mode:
	case transport == TransportPartyKit:
		st.partykit.add(elapsed, failed)
	default:
		st.inngest.add(elapsed, failed)
	}
	st.mu.Unlock()
}

// changed logs a mode change and passes it to Options.OnModeChange, whose
// panic is contained.
func (b *Broadcast) changed(c ModeChange) {
	if ce := b.log.Check(zapcore.InfoLevel, "realtime: mode changed"); ce != nil {
		fields := []zap.Field{
			zap.String("scope", string(c.Scope)),
			zap.String("to", c.To.String()),
		}
		if c.Initial {
			fields = append(fields, zap.Bool("initial", true))
		} else {
			fields = append(fields, zap.String("from", c.From.String()), zap.Duration("lasted", c.At.Sub(c.Since)))
		}
		for _, f := range c.Figures {
			fields = append(fields,
				zap.Int64(f.Transport+"_publishes", f.Publishes),
				zap.Int64(f.Transport+"_errors", f.Errors),
				zap.Duration(f.Transport+"_p99", f.P99))
		}
		ce.Write(fields...)
	}
	if b.onChange == nil {
		return
	}
	defer func() {
		if r := recover(); r != nil {
			b.log.Error("realtime: Options.OnModeChange panicked", zap.String("scope", string(c.Scope)), zap.String("error", oneLine(fmt.Sprint(r))))
		}
	}()
	b.onChange(c)
}

// modesInForce reports the gauge realtime.broadcast.mode: for every scope
// observed, the mode resolved now (for the room seen last) at 1 and the
// other modes at 0. Resolving again here is what moves the gauge, and logs
// the change, after a flip even while nothing is published.
func (b *Broadcast) modesInForce(ctx context.Context, o metric.Observer) error {
	for _, sc := range flags.Scopes {
		st := b.scopes[sc]
		st.mu.Lock()
		seen, room := st.seen, st.room
		st.mu.Unlock()
		if !seen {
			continue
		}
		// Not counted nor logged as a failure: the publishes are.
		mode, _, _ := b.modeIn(ctx, sc, room)
		b.observe(ctx, sc, room, mode)
		for _, m := range allModes {
			v := int64(0)
			if m == mode {
				v = 1
			}
			o.ObserveInt64(b.metrics.mode, v, metric.WithAttributeSet(attribute.NewSet(
				attribute.String("scope", string(sc)), attribute.String("mode", m.String()))))
		}
	}
	return nil
}

var allModes = [...]flags.Mode{flags.Legacy, flags.Shadow, flags.Primary, flags.Realtime}
