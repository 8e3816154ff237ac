package broadcast_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/coursebuilder/realtime-go/broadcast"
	"github.com/coursebuilder/realtime-go/flags"
	"github.com/coursebuilder/realtime-go/realtime"
	"github.com/coursebuilder/realtime-go/realtime/realtimetest"
)

var allModes = []flags.Mode{flags.Legacy, flags.Shadow, flags.Primary, flags.Realtime}

// meter is an SDK meter with a manual reader, and sums reads its counters.
type meter struct {
	reader *sdkmetric.ManualReader
	mp     *sdkmetric.MeterProvider
}

func newMeter(t *testing.T) *meter {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	return &meter{reader: reader, mp: mp}
}

// sums returns each counter's value by name and the given attributes, as
// "name/value1/value2".
func (m *meter) sums(t *testing.T, keys ...string) map[string]int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	require.NoError(t, m.reader.Collect(context.Background(), &rm))
	got := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, metric := range sm.Metrics {
			d, ok := metric.Data.(metricdata.Sum[int64])
			if !ok {
				continue
			}
			for _, dp := range d.DataPoints {
				k := metric.Name
				for _, key := range keys {
					v, _ := dp.Attributes.Value(attribute.Key(key))
					k += "/" + v.AsString()
				}
				got[k] += dp.Value
			}
		}
	}
	return got
}

// TestTypedNilErrorIsAContainedFailure: a provider returning a nil
// *realtime.PublishError as an error crashed the process from the shadow
// goroutine (errors.Is called its Unwrap on the nil pointer). It is now a
// failure matching ErrNilError, in every mode on either leg, logged and
// counted.
func TestTypedNilErrorIsAContainedFailure(t *testing.T) {
	typedNil := realtime.ProviderFunc(func(context.Context, realtime.Message) error {
		return error((*realtime.PublishError)(nil))
	})
	for _, mode := range allModes {
		for _, side := range []string{broadcast.TransportPartyKit, broadcast.TransportInngest} {
			t.Run(fmt.Sprintf("%s/%s", mode, side), func(t *testing.T) {
				healthy := realtimetest.NewRecorder()
				var legacy, rt realtime.Provider = typedNil, healthy
				if side == broadcast.TransportInngest {
					legacy, rt = healthy, typedNil
				}
				core, logs := observer.New(zapcore.InfoLevel)
				m := newMeter(t)
				b := newBroadcast(t, legacy, rt, broadcast.Options{Resolver: flags.Fixed(mode), Logger: zap.New(core), Meter: m.mp.Meter("test"), ShadowBudget: time.Minute})

				err := b.Publish(context.Background(), msg)
				require.NoError(t, b.Close(context.Background()))

				sends := side == broadcast.TransportPartyKit && mode.PublishesLegacy() || side == broadcast.TransportInngest && mode.PublishesRealtime()
				counts := (side == broadcast.TransportInngest) == mode.RealtimeCounts()
				if !sends {
					require.NoError(t, err)
					return
				}
				if counts {
					require.ErrorIs(t, err, broadcast.ErrNilError, "a non-nil error is a failure, not a success")
					var te *broadcast.TransportError
					require.ErrorAs(t, err, &te)
					assert.Equal(t, side, te.Transport)
					var pe *realtime.PublishError
					assert.False(t, errors.As(err, &pe), "the nil pointer is not handed on")
					assert.Contains(t, err.Error(), "*realtime.PublishError")
				} else {
					require.NoError(t, err, "a failure of the transport that does not count is contained")
				}
				lines := logs.FilterField(zap.String("transport", side)).All()
				require.Len(t, lines, 1)
				assert.Equal(t, zapcore.WarnLevel, lines[0].Level)
				assert.Equal(t, "error", lines[0].ContextMap()["outcome"])
				assert.Contains(t, lines[0].ContextMap()["error"], "nil pointer")
				assert.Equal(t, int64(1), m.sums(t, "transport", "outcome")["realtime.broadcast.errors/"+side+"/error"])
			})
		}
	}
}

// TestTypedNilDeepInTheChainIsContained: a nil pointer wrapped inside
// another error panics when errors.Is walks the chain; it is contained too.
func TestTypedNilDeepInTheChainIsContained(t *testing.T) {
	wrapped := realtime.ProviderFunc(func(context.Context, realtime.Message) error {
		return fmt.Errorf("wrapped: %w", (*realtime.PublishError)(nil))
	})
	for _, mode := range []flags.Mode{flags.Shadow, flags.Realtime} {
		b := newBroadcast(t, realtimetest.NewRecorder(), wrapped, broadcast.Options{Resolver: flags.Fixed(mode)})
		err := b.Publish(context.Background(), msg)
		require.NoError(t, b.Close(context.Background()))
		if mode == flags.Realtime {
			require.ErrorIs(t, err, broadcast.ErrNilError)
		} else {
			require.NoError(t, err)
		}
	}
}

type panicResolver struct{}

func (panicResolver) Mode(context.Context, flags.Scope, string) flags.Mode { panic("flag SDK bug") }

// TestPanickingResolverPublishesToBoth: a Resolver that panics reached the
// caller of Publish, Pin and Mode. The mode is then in doubt, and the
// publish goes to both transports (Shadow), logged and counted.
func TestPanickingResolverPublishesToBoth(t *testing.T) {
	legacy, rt := realtimetest.NewRecorder(), realtimetest.NewRecorder()
	core, logs := observer.New(zapcore.InfoLevel)
	m := newMeter(t)
	b := newBroadcast(t, legacy, rt, broadcast.Options{Resolver: panicResolver{}, Logger: zap.New(core), Meter: m.mp.Meter("test"), ShadowBudget: time.Minute})

	require.NoError(t, b.Publish(context.Background(), msg))
	assert.Equal(t, flags.Shadow, b.Route(context.Background(), msg.Room, msg.Name).Mode)
	pinned := b.Pin(context.Background(), msg.Room, msg.Name)
	require.NoError(t, pinned.Publish(context.Background(), msg))
	require.NoError(t, b.Close(context.Background()))

	assert.Equal(t, 2, legacy.Len(), "PartyKit got the publish and the pinned publish")
	assert.Equal(t, 2, rt.Len(), "Inngest got the publish and the pinned publish")
	failures := logs.FilterMessage("realtime: mode resolution failed").All()
	require.Len(t, failures, 3, "Publish, Mode and Pin each resolved once")
	f := failures[0].ContextMap()
	assert.Equal(t, "resolver_panic", f["cause"])
	assert.Equal(t, "shadow", f["mode"])
	assert.Equal(t, "video-ready", f["scope"])
	assert.Contains(t, f["error"], "flag SDK bug")
	assert.Equal(t, zapcore.ErrorLevel, failures[0].Level)
	assert.Equal(t, int64(3), m.sums(t, "cause", "scope")["realtime.broadcast.resolver_failures/resolver_panic/video-ready"])
}

// TestPanickingRealtimeMappingIsContained: the realtime provider's
// mapping, which names the channel and topic in log lines and in Route,
// crashed the process from a shadow leg when it panicked.
func TestPanickingRealtimeMappingIsContained(t *testing.T) {
	for _, mode := range allModes {
		t.Run(mode.String(), func(t *testing.T) {
			legacy, rec := realtimetest.NewRecorder(), realtimetest.NewRecorder()
			rt := panickingRouter{rec}
			core, logs := observer.New(zapcore.InfoLevel)
			b := newBroadcast(t, legacy, rt, broadcast.Options{
				Resolver: flags.Fixed(mode), Logger: zap.New(core), ShadowBudget: time.Minute,
			})
			require.NoError(t, b.Publish(context.Background(), msg))
			route := b.Route(context.Background(), msg.Room, msg.Name)
			assert.Equal(t, broadcast.Route{Scope: flags.ScopeVideoReady, Mode: mode}, route)
			require.NoError(t, b.Close(context.Background()))
			assert.Equal(t, mode.PublishesLegacy(), legacy.Len() == 1)
			assert.Equal(t, mode.PublishesRealtime(), rec.Len() == 1)
			lines := logs.FilterMessage("realtime: publish").All()
			require.NotEmpty(t, lines)
			for _, l := range lines {
				f := l.ContextMap()
				assert.Equal(t, "", f["channel"])
				assert.Contains(t, f["mapping_error"], "panicked", "%v", f)
				assert.Equal(t, "ok", f["outcome"])
			}
		})
	}
}

// panickingRouter is a realtime provider whose channel mapping panics.
type panickingRouter struct{ realtime.Provider }

func (panickingRouter) Channel(string) (string, error)    { panic("mapping bug") }
func (panickingRouter) Topic(name string) (string, error) { return name, nil }

// TestUnknownModeIsLegacy: a Resolver answering a mode outside the four
// made Broadcast publish as primary. Unknown means Legacy, in Publish, Pin
// and Mode, logged and counted.
func TestUnknownModeIsLegacy(t *testing.T) {
	legacy, rt := realtimetest.NewRecorder(), realtimetest.NewRecorder()
	m := newMeter(t)
	b := newBroadcast(t, legacy, rt, broadcast.Options{Resolver: flags.Fixed(flags.Mode(7)), Meter: m.mp.Meter("test")})
	require.NoError(t, b.Publish(context.Background(), msg))
	assert.Equal(t, flags.Legacy, b.Route(context.Background(), msg.Room, msg.Name).Mode)
	require.NoError(t, b.Pin(context.Background(), msg.Room, msg.Name).Publish(context.Background(), msg))
	require.NoError(t, b.Close(context.Background()))
	assert.Equal(t, 2, legacy.Len())
	assert.Zero(t, rt.Len(), "an unknown mode never publishes to Inngest")
	assert.Equal(t, int64(3), m.sums(t, "cause", "mode")["realtime.broadcast.resolver_failures/unknown_mode/legacy"])
}

// TestNoLegStartsAfterCloseReturned: Close racing Publish let a shadow leg
// start after Close returned (and -race reported the WaitGroup reused).
// Many goroutines publish in shadow mode while Close runs; no provider may
// be called once Close returned.
func TestNoLegStartsAfterCloseReturned(t *testing.T) {
	for range 30 {
		var closed atomic.Bool
		var late, calls atomic.Int64
		p := realtime.ProviderFunc(func(context.Context, realtime.Message) error {
			if closed.Load() {
				late.Add(1)
			}
			calls.Add(1)
			return nil
		})
		for _, mode := range []flags.Mode{flags.Shadow, flags.Primary, flags.Legacy} {
			b := mustNew(t, p, p, &broadcast.Options{Resolver: flags.Fixed(mode)})
			var wg sync.WaitGroup
			started := make(chan struct{})
			var once sync.Once
			for range 8 {
				wg.Go(func() {
					for {
						err := b.Publish(context.Background(), msg)
						once.Do(func() { close(started) })
						if errors.Is(err, broadcast.ErrClosed) {
							return
						}
						if err != nil {
							t.Error(err)
							return
						}
					}
				})
			}
			<-started
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			require.NoError(t, b.Close(ctx))
			cancel()
			closed.Store(true)
			wg.Wait()
			closed.Store(false)
		}
		require.Zero(t, late.Load(), "a provider was called after Close returned")
		require.NotZero(t, calls.Load())
	}
}

// TestShadowTimeoutCountsFromTheStartOfTheLeg: ShadowTimeout started only
// when the leg detached, after the counted transport returned, so a slow
// counted transport stretched the bound (a 100ms timeout gave a 481ms
// leg). The leg's context now ends ShadowTimeout after the leg started.
func TestShadowTimeoutCountsFromTheStartOfTheLeg(t *testing.T) {
	for _, counted := range []time.Duration{0, 50 * time.Millisecond, 300 * time.Millisecond} {
		t.Run(fmt.Sprintf("counted-%s", counted), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				legacy := realtime.ProviderFunc(func(context.Context, realtime.Message) error {
					time.Sleep(counted)
					return nil
				})
				cancelledAfter := make(chan time.Duration, 1)
				hang := realtime.ProviderFunc(func(ctx context.Context, _ realtime.Message) error {
					start := time.Now()
					<-ctx.Done()
					cancelledAfter <- time.Since(start)
					return ctx.Err()
				})
				b := mustNew(t, legacy, hang, &broadcast.Options{
					Resolver: flags.Fixed(flags.Shadow), ShadowBudget: 10 * time.Millisecond, ShadowTimeout: 100 * time.Millisecond,
				})
				start := time.Now()
				require.NoError(t, b.Publish(context.Background(), msg))
				assert.Equal(t, max(counted, 10*time.Millisecond), time.Since(start), "Publish waits for the counted transport, and for the other one up to the budget")
				assert.Equal(t, 100*time.Millisecond, <-cancelledAfter, "the leg's context ends ShadowTimeout after the leg started")
				require.NoError(t, b.Close(context.Background()))
			})
		})
	}
}

// TestMessagesOverInngestsLimitStillReachPartyKit: between 512 KiB and
// PartyKit's own limit, PartyKit delivers in legacy and shadow modes; the
// Inngest refusal is counted and logged as too_large in shadow mode and
// returned in primary and realtime modes.
func TestMessagesOverInngestsLimitStillReachPartyKit(t *testing.T) {
	big := realtime.Message{Room: "vid_1", Name: "video.asset.ready", Body: strings.Repeat("x", 600<<10)}
	_, err := big.Encode()
	var tl *realtime.TooLargeError
	require.ErrorAs(t, err, &tl, "the message is over Inngest's limit")

	for _, mode := range allModes {
		t.Run(mode.String(), func(t *testing.T) {
			// A fake PartyKit with its own 1 MiB limit (realtimetest's
			// Recorder applies Inngest's).
			var party atomic.Int64
			partyKit := &limited{limit: 1 << 20, n: &party}
			inn := realtimetest.NewRecorder()
			inngest := realtime.ProviderFunc(func(ctx context.Context, msg realtime.Message) error {
				if _, err := msg.Encode(); err != nil {
					return err
				}
				return inn.Publish(ctx, msg)
			})
			core, logs := observer.New(zapcore.InfoLevel)
			m := newMeter(t)
			b := newBroadcast(t, partyKit, inngest, broadcast.Options{Resolver: flags.Fixed(mode), Logger: zap.New(core), Meter: m.mp.Meter("test"), ShadowBudget: time.Minute})

			err := b.Publish(context.Background(), big)
			require.NoError(t, b.Close(context.Background()))
			assert.Zero(t, inn.Len())
			assert.Equal(t, mode.PublishesLegacy(), party.Load() == 1, "PartyKit delivers whatever its own limit allows")
			switch mode {
			case flags.Legacy, flags.Shadow:
				require.NoError(t, err)
			default:
				var tl *realtime.TooLargeError
				require.ErrorAs(t, err, &tl, "the size error reaches the caller through the TransportError")
				assert.ErrorIs(t, err, realtime.ErrPayloadTooLarge)
				var te *broadcast.TransportError
				require.ErrorAs(t, err, &te)
				assert.Equal(t, broadcast.TransportInngest, te.Transport)
			}
			if mode.PublishesRealtime() {
				lines := logs.FilterField(zap.String("transport", broadcast.TransportInngest)).All()
				require.Len(t, lines, 1)
				assert.Equal(t, "too_large", lines[0].ContextMap()["outcome"])
				assert.Equal(t, zapcore.WarnLevel, lines[0].Level)
				assert.Equal(t, int64(1), m.sums(t, "transport", "outcome")["realtime.broadcast.errors/inngest/too_large"])
			}
		})
	}
}

// TestErrorLogFieldIsOneLine: errors.Join writes one line per error; the
// log field holds them on one line, separated by "; ".
func TestErrorLogFieldIsOneLine(t *testing.T) {
	joined := errors.Join(errors.New("first failure"), errors.New("second failure"))
	require.Contains(t, joined.Error(), "\n")
	core, logs := observer.New(zapcore.InfoLevel)
	b := newBroadcast(t, realtimetest.NewRecorder(), realtimetest.NewFaulty(realtimetest.Fail(joined)),
		broadcast.Options{Resolver: flags.Fixed(flags.Shadow), Logger: zap.New(core), ShadowBudget: time.Minute})
	require.NoError(t, b.Publish(context.Background(), msg))
	require.NoError(t, b.Close(context.Background()))
	lines := logs.FilterField(zap.String("transport", broadcast.TransportInngest)).All()
	require.Len(t, lines, 1)
	assert.Equal(t, "first failure; second failure", lines[0].ContextMap()["error"])
}

type nilStreamer struct{ *realtimetest.Recorder }

func (nilStreamer) PublishStream(context.Context, string, string, io.Reader) error {
	return error((*realtime.PublishError)(nil))
}

// TestTypedNilErrorFromAStreamIsAFailure: the pinned stream of realtime
// mode hands on a nil *PublishError as ErrNilError, not as the nil pointer.
func TestTypedNilErrorFromAStreamIsAFailure(t *testing.T) {
	b := newBroadcast(t, realtimetest.NewRecorder(), nilStreamer{realtimetest.NewRecorder()}, broadcast.Options{Resolver: flags.Fixed(flags.Realtime)})
	sp, ok := b.Pin(context.Background(), "chat", "ai.message").(realtime.StreamPublisher)
	require.True(t, ok)
	err := sp.PublishStream(context.Background(), "chat", "ai.message", strings.NewReader("x"))
	require.ErrorIs(t, err, broadcast.ErrNilError)
	var pe *realtime.PublishError
	assert.False(t, errors.As(err, &pe))
}

// TestCloseWaitsForACountedPublishInFlight: Close waited only for
// background legs; a publish on the caller's goroutine could still reach
// its provider after Close returned.
func TestCloseWaitsForACountedPublishInFlight(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	var closed, late atomic.Bool
	slow := realtime.ProviderFunc(func(context.Context, realtime.Message) error {
		close(entered)
		<-release
		late.Store(closed.Load())
		return nil
	})
	b := mustNew(t, slow, realtimetest.NewRecorder(), &broadcast.Options{Resolver: flags.Fixed(flags.Legacy)})
	done := make(chan error, 1)
	go func() { done <- b.Publish(context.Background(), msg) }()
	<-entered
	closeDone := make(chan error, 1)
	go func() {
		err := b.Close(context.Background())
		closed.Store(true)
		closeDone <- err
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	assert.ErrorIs(t, b.Close(ctx), context.DeadlineExceeded, "Close waits while a publish is in flight")
	close(release)
	require.NoError(t, <-done)
	require.NoError(t, <-closeDone)
	assert.False(t, late.Load(), "the publish ended before Close returned")
	assert.ErrorIs(t, b.Publish(context.Background(), msg), broadcast.ErrClosed)
}

// limited is an in-memory transport with its own size limit that takes
// the envelope Broadcast encoded, as the real transports do.
type limited struct {
	limit int
	n     *atomic.Int64
}

func (l *limited) Publish(ctx context.Context, msg realtime.Message) error {
	env, err := realtime.NewEnvelope(ctx, msg)
	if err != nil {
		return err
	}
	return l.PublishEnvelope(ctx, env)
}

func (l *limited) PublishEnvelope(_ context.Context, env *realtime.Envelope) error {
	if n := len(env.Bytes()); n > l.limit {
		return &realtime.TooLargeError{Size: n, Limit: l.limit}
	}
	l.n.Add(1)
	return nil
}
