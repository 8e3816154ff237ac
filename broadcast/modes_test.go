package broadcast_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/coursebuilder/realtime-go/broadcast"
	"github.com/coursebuilder/realtime-go/flags"
	"github.com/coursebuilder/realtime-go/realtime/realtimetest"
)

func (s *switchable) set(m flags.Mode) { s.mode.Store(uint32(m)) }

// changes collects what Options.OnModeChange is given.
type changes struct {
	mu  sync.Mutex
	got []broadcast.ModeChange
}

func (c *changes) add(m broadcast.ModeChange) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.got = append(c.got, m)
}

func (c *changes) all() []broadcast.ModeChange {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]broadcast.ModeChange(nil), c.got...)
}

// TestModeChangeCarriesTheFiguresOfTheModeThatEnded: the flip log's line
// and hook name the scope, both modes, and per transport the publishes,
// errors and p99 since the previous change.
func TestModeChangeCarriesTheFiguresOfTheModeThatEnded(t *testing.T) {
	res := &switchable{}
	res.set(flags.Shadow)
	core, logs := observer.New(zap.InfoLevel)
	var seen changes
	rt := realtimetest.NewFaulty(realtimetest.Fail(errors.New("boom")), realtimetest.Succeed())
	b := newBroadcast(t, realtimetest.NewRecorder(), rt, broadcast.Options{
		Resolver: res, Logger: zap.New(core), ShadowBudget: time.Minute, OnModeChange: seen.add,
	})
	for range 3 {
		require.NoError(t, b.Publish(context.Background(), msg))
	}
	res.set(flags.Legacy) // the kill switch
	require.NoError(t, b.Publish(context.Background(), msg))

	got := seen.all()
	require.Len(t, got, 2)
	first, flip := got[0], got[1]
	assert.True(t, first.Initial)
	assert.Equal(t, flags.ScopeVideoReady, first.Scope)
	assert.Equal(t, flags.Shadow, first.To)
	assert.Empty(t, first.Figures, "nothing was published before the first mode")

	assert.False(t, flip.Initial)
	assert.Equal(t, flags.ScopeVideoReady, flip.Scope)
	assert.Equal(t, flags.Shadow, flip.From)
	assert.Equal(t, flags.Legacy, flip.To)
	assert.Equal(t, first.At, flip.Since, "the mode that ended took effect at the first change")
	assert.False(t, flip.At.Before(flip.Since))
	require.Len(t, flip.Figures, 2)
	assert.Equal(t, broadcast.TransportPartyKit, flip.Figures[0].Transport)
	assert.Equal(t, [2]int64{3, 0}, [2]int64{flip.Figures[0].Publishes, flip.Figures[0].Errors})
	assert.Equal(t, broadcast.TransportInngest, flip.Figures[1].Transport)
	assert.Equal(t, [2]int64{3, 1}, [2]int64{flip.Figures[1].Publishes, flip.Figures[1].Errors})
	for _, f := range flip.Figures {
		assert.Positive(t, f.P99, f.Transport)
	}

	lines := logs.FilterMessage("realtime: mode changed").All()
	require.Len(t, lines, 2)
	f := lines[1].ContextMap()
	assert.Equal(t, "video-ready", f["scope"])
	assert.Equal(t, "shadow", f["from"])
	assert.Equal(t, "legacy", f["to"])
	assert.Equal(t, int64(3), f["inngest_publishes"])
	assert.Equal(t, int64(1), f["inngest_errors"])
	assert.Equal(t, int64(0), f["partykit_errors"])
	assert.Contains(t, f, "partykit_p99")
	assert.Contains(t, f, "lasted")
	assert.Equal(t, true, lines[0].ContextMap()["initial"])

	// The figures start again with the new mode.
	res.set(flags.Shadow)
	require.NoError(t, b.Publish(context.Background(), msg))
	got = seen.all()
	require.Len(t, got, 3)
	require.Len(t, got[2].Figures, 1)
	assert.Equal(t, int64(1), got[2].Figures[0].Publishes, "one legacy publish since the kill switch")
}

// TestModeGaugeFollowsAFlipWithoutPublishes: the gauge reports the mode in
// force per scope, 1 for it and 0 for the other three, resolved again at
// each collection, so a rollback shows at the next scrape even when
// nothing is published; the flip is logged then too. After Close the gauge
// is gone.
func TestModeGaugeFollowsAFlipWithoutPublishes(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer func() { _ = mp.Shutdown(context.Background()) }()
	res := &switchable{}
	res.set(flags.Primary)
	var seen changes
	b := mustNew(t, realtimetest.NewRecorder(), realtimetest.NewRecorder(), &broadcast.Options{
		Resolver: res, Meter: mp.Meter("test"), OnModeChange: seen.add,
	})
	assert.Empty(t, modeGauge(t, reader), "no scope observed yet")

	// The token endpoint's Route is enough to observe a scope.
	b.Route(context.Background(), msg.Room, msg.Name)
	want := map[string]int64{"video-ready/legacy": 0, "video-ready/shadow": 0, "video-ready/primary": 1, "video-ready/realtime": 0}
	assert.Equal(t, want, modeGauge(t, reader))

	res.set(flags.Legacy)
	want["video-ready/primary"], want["video-ready/legacy"] = 0, 1
	assert.Equal(t, want, modeGauge(t, reader))
	got := seen.all()
	require.Len(t, got, 2)
	assert.Equal(t, [2]flags.Mode{flags.Primary, flags.Legacy}, [2]flags.Mode{got[1].From, got[1].To})

	require.NoError(t, b.Close(context.Background()))
	assert.Empty(t, modeGauge(t, reader), "a closed Broadcast reports no mode")
}

// TestOnModeChangePanicIsContained: a hook that panics neither reaches the
// publish nor stops the next change from being reported.
func TestOnModeChangePanicIsContained(t *testing.T) {
	res := &switchable{}
	res.set(flags.Shadow)
	core, logs := observer.New(zap.InfoLevel)
	var calls atomic.Int32
	b := newBroadcast(t, realtimetest.NewRecorder(), realtimetest.NewRecorder(), broadcast.Options{
		Resolver: res, Logger: zap.New(core),
		OnModeChange: func(broadcast.ModeChange) { calls.Add(1); panic("hook") },
	})
	require.NoError(t, b.Publish(context.Background(), msg))
	res.set(flags.Realtime)
	require.NoError(t, b.Publish(context.Background(), msg))
	assert.Equal(t, int32(2), calls.Load())
	assert.Equal(t, 2, logs.FilterMessage("realtime: Options.OnModeChange panicked").Len())
}

// modeGauge collects realtime.broadcast.mode as "scope/mode" → value.
func modeGauge(t *testing.T, reader *sdkmetric.ManualReader) map[string]int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	require.NoError(t, reader.Collect(context.Background(), &rm))
	got := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			g, ok := m.Data.(metricdata.Gauge[int64])
			if m.Name != "realtime.broadcast.mode" || !ok {
				continue
			}
			for _, dp := range g.DataPoints {
				sc, _ := dp.Attributes.Value("scope")
				md, _ := dp.Attributes.Value("mode")
				got[sc.AsString()+"/"+md.AsString()] = dp.Value
			}
		}
	}
	return got
}

// TestPublishInFlightAtAFlipIsInNoModeChange: a publish still running when
// its mode ends belongs to the figures already reported; it does not show
// up in the next mode's (the rehearsal saw a hanging Inngest's primary-mode
// failures reported as the legacy period's).
func TestPublishInFlightAtAFlipIsInNoModeChange(t *testing.T) {
	res := &switchable{}
	res.set(flags.Realtime)
	var seen changes
	rt := realtimetest.NewFaulty(realtimetest.Hang())
	b := newBroadcast(t, realtimetest.NewRecorder(), rt, broadcast.Options{Resolver: res, OnModeChange: seen.add})

	ctx, cancel := context.WithCancel(context.Background())
	hung := make(chan error, 1)
	go func() { hung <- b.Publish(ctx, msg) }()
	for rt.Calls() == 0 {
		time.Sleep(time.Millisecond) // until the hanging publish is in the transport
	}
	res.set(flags.Legacy)
	require.NoError(t, b.Publish(context.Background(), msg))
	cancel()
	require.Error(t, <-hung)
	res.set(flags.Shadow)
	require.NoError(t, b.Publish(context.Background(), msg))

	got := seen.all()
	require.Len(t, got, 3)
	assert.Empty(t, got[1].Figures, "realtime → legacy: the one realtime publish had not finished")
	require.Len(t, got[2].Figures, 1, "legacy → shadow: the late realtime publish is not the legacy period's")
	assert.Equal(t, broadcast.Figures{Transport: broadcast.TransportPartyKit, Publishes: 1, P99: got[2].Figures[0].P99}, got[2].Figures[0])
}
