package broadcast_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/coursebuilder/realtime-go/broadcast"
	"github.com/coursebuilder/realtime-go/flags"
	"github.com/coursebuilder/realtime-go/internal/transport"
	"github.com/coursebuilder/realtime-go/realtime"
	"github.com/coursebuilder/realtime-go/realtime/inngest"
	"github.com/coursebuilder/realtime-go/realtime/realtimetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var msg = realtime.Message{Room: "vid_1", Name: "video.asset.ready", RequestID: "req_1", Body: map[string]string{"secret-body": "do-not-log"}}

func newBroadcast(t *testing.T, legacy, rt realtime.Provider, opts broadcast.Options) *broadcast.Broadcast {
	t.Helper()
	if opts.ShadowBudget == 0 {
		opts.ShadowBudget = 20 * time.Millisecond
	}
	if opts.ShadowTimeout == 0 {
		opts.ShadowTimeout = 200 * time.Millisecond
	}
	b := mustNew(t, legacy, rt, &opts)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		require.NoError(t, b.Close(ctx), "background deliveries end within ShadowTimeout")
	})
	return b
}

// faults a transport can have; each must be contained unless it counts.
var faults = map[string]func() realtimetest.Outcome{
	"down": func() realtimetest.Outcome {
		return realtimetest.Fail(transport.NetworkError("x", errors.New("connection refused")))
	},
	"5xx":   func() realtimetest.Outcome { return realtimetest.Fail(transport.StatusError("x", 503, "", 0)) },
	"4xx":   func() realtimetest.Outcome { return realtimetest.Fail(transport.StatusError("x", 400, "bad", 0)) },
	"panic": func() realtimetest.Outcome { return realtimetest.Panic("provider bug") },
	"hang":  func() realtimetest.Outcome { return realtimetest.Hang() },
	"slow":  func() realtimetest.Outcome { return realtimetest.Delay(100*time.Millisecond, realtimetest.Succeed()) },
}

// TestModeFaultMatrix runs every mode against every fault on each side and
// checks what the caller gets and what each transport delivered.
func TestModeFaultMatrix(t *testing.T) {
	modes := []flags.Mode{flags.Legacy, flags.Shadow, flags.Primary, flags.Realtime}
	for _, mode := range modes {
		for _, side := range []string{broadcast.TransportPartyKit, broadcast.TransportInngest} {
			for name, fault := range faults {
				t.Run(fmt.Sprintf("%s/%s/%s", mode, side, name), func(t *testing.T) {
					legacy, rt := realtimetest.NewFaulty(), realtimetest.NewFaulty()
					faulty := legacy
					if side == broadcast.TransportInngest {
						faulty = rt
					}
					faulty.SetScript(fault())
					b := newBroadcast(t, legacy, rt, broadcast.Options{Resolver: flags.Fixed(mode)})

					ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
					defer cancel()
					err := b.Publish(ctx, msg)

					sends := map[string]bool{broadcast.TransportPartyKit: mode.PublishesLegacy(), broadcast.TransportInngest: mode.PublishesRealtime()}
					counts := map[string]bool{broadcast.TransportPartyKit: !mode.RealtimeCounts(), broadcast.TransportInngest: mode.RealtimeCounts()}
					failing := name != "slow"

					if sends[side] && counts[side] && failing {
						require.Error(t, err)
						var te *broadcast.TransportError
						require.ErrorAs(t, err, &te)
						assert.Equal(t, side, te.Transport)
						assert.Equal(t, mode, te.Mode)
						if name == "panic" {
							assert.ErrorIs(t, err, broadcast.ErrPanic)
						}
					} else {
						require.NoError(t, err, "a fault on a transport that does not count never fails the call")
					}

					healthy, healthyName := rt, broadcast.TransportInngest
					if side == broadcast.TransportInngest {
						healthy, healthyName = legacy, broadcast.TransportPartyKit
					}
					if sends[healthyName] {
						assert.Equal(t, 1, healthy.Len(), "the healthy transport delivered the message exactly once")
					} else {
						assert.Zero(t, healthy.Calls(), "a transport outside the mode is never called")
					}
					if !sends[side] {
						assert.Zero(t, faulty.Calls())
					}
				})
			}
		}
	}
}

func TestRealtimeModeFallsBackToPartyKit(t *testing.T) {
	legacy := realtimetest.NewFaulty()
	rt := realtimetest.NewFaulty(realtimetest.Fail(transport.StatusError("inngest", 503, "", 0)))
	b := newBroadcast(t, legacy, rt, broadcast.Options{Resolver: flags.Fixed(flags.Realtime), FallbackToLegacy: true})
	require.NoError(t, b.Publish(context.Background(), msg))
	assert.Equal(t, 1, legacy.Len())

	legacy.SetScript(realtimetest.Fail(transport.StatusError("partykit", 500, "", 0)))
	err := b.Publish(context.Background(), msg)
	require.ErrorIs(t, err, realtime.ErrUnavailable)
	assert.Contains(t, err.Error(), "broadcast: inngest (realtime mode)")
	assert.Contains(t, err.Error(), "broadcast: partykit (realtime mode)")
}

func TestShadowRunsBothConcurrently(t *testing.T) {
	// Each transport waits for the other to have started: only a concurrent
	// fan-out can finish.
	started := [2]chan struct{}{make(chan struct{}), make(chan struct{})}
	meet := func(mine, other int) realtime.Provider {
		return realtime.ProviderFunc(func(ctx context.Context, _ realtime.Message) error {
			close(started[mine])
			select {
			case <-started[other]:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	}
	b := newBroadcast(t, meet(0, 1), meet(1, 0), broadcast.Options{Resolver: flags.Fixed(flags.Shadow), ShadowBudget: time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, b.Publish(ctx, msg))
}

func TestSlowShadowDeliveryStillLandsAfterTheCallReturns(t *testing.T) {
	legacy := realtimetest.NewFaulty()
	rt := realtimetest.NewFaulty(realtimetest.Delay(50*time.Millisecond, realtimetest.Succeed()))
	core, logs := observer.New(zapcore.InfoLevel)
	b := newBroadcast(t, legacy, rt, broadcast.Options{Resolver: flags.Fixed(flags.Shadow), ShadowBudget: time.Millisecond, Logger: zap.New(core)})
	require.NoError(t, b.Publish(context.Background(), msg))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := rt.WaitFor(ctx, 1)
	require.NoError(t, err, "the late realtime delivery happened in the background")
	require.NoError(t, b.Close(ctx))
	late := logs.FilterField(zap.Bool("detached", true)).All()
	require.Len(t, late, 1)
	assert.Equal(t, broadcast.TransportInngest, late[0].ContextMap()["transport"])
}

func TestCallerCancellationDoesNotCutTheShadowDelivery(t *testing.T) {
	legacy := realtimetest.NewFaulty()
	rt := realtimetest.NewFaulty(realtimetest.Delay(20*time.Millisecond, realtimetest.Succeed()))
	b := newBroadcast(t, legacy, rt, broadcast.Options{Resolver: flags.Fixed(flags.Shadow), ShadowBudget: time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	require.NoError(t, b.Publish(ctx, msg))
	cancel()
	wctx, wcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer wcancel()
	_, err := rt.WaitFor(wctx, 1)
	require.NoError(t, err)
}

type switchable struct{ mode atomic.Uint32 }

func (s *switchable) Mode(context.Context, flags.Scope, string) flags.Mode {
	return flags.Mode(s.mode.Load())
}

func TestFlagFlipTakesEffectOnTheNextPublish(t *testing.T) {
	legacy, rt := realtimetest.NewRecorder(), realtimetest.NewRecorder()
	sw := &switchable{}
	b := newBroadcast(t, legacy, rt, broadcast.Options{Resolver: sw})
	steps := []struct {
		mode        flags.Mode
		legacy, inn int
	}{
		{flags.Legacy, 1, 0}, {flags.Realtime, 1, 1}, {flags.Legacy, 2, 1}, {flags.Shadow, 3, 2}, {flags.Primary, 4, 3}, {flags.Legacy, 5, 3},
	}
	for _, s := range steps {
		sw.mode.Store(uint32(s.mode))
		require.NoError(t, b.Publish(context.Background(), msg))
		require.NoError(t, b.Close(context.Background())) // wait for any background leg
		b = newBroadcast(t, legacy, rt, broadcast.Options{Resolver: sw})
		assert.Equal(t, s.legacy, legacy.Len(), "PartyKit after %s", s.mode)
		assert.Equal(t, s.inn, rt.Len(), "Inngest after %s", s.mode)
	}
}

func TestScopesResolveSeparately(t *testing.T) {
	legacy, rt := realtimetest.NewRecorder(), realtimetest.NewRecorder()
	resolver := resolverFunc(func(_ context.Context, s flags.Scope, _ string) flags.Mode {
		if s == flags.ScopeVideoReady {
			return flags.Realtime
		}
		return flags.Legacy
	})
	b := newBroadcast(t, legacy, rt, broadcast.Options{Resolver: resolver})
	require.NoError(t, b.Publish(context.Background(), realtime.Message{Room: "v", Name: "video.asset.ready"}))
	require.NoError(t, b.Publish(context.Background(), realtime.Message{Room: "v", Name: "transcript.ready"}))
	assert.Equal(t, []string{"video.asset.ready"}, names(rt.Messages()))
	assert.Equal(t, []string{"transcript.ready"}, names(legacy.Messages()))
}

type resolverFunc func(context.Context, flags.Scope, string) flags.Mode

func (f resolverFunc) Mode(ctx context.Context, s flags.Scope, room string) flags.Mode {
	return f(ctx, s, room)
}

func names(ms []realtime.Message) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Name)
	}
	return out
}

func TestNewRefusesNilProviders(t *testing.T) {
	var typedNil *realtimetest.Recorder
	ok := realtimetest.NewRecorder()
	for _, c := range []struct {
		name       string
		legacy, rt realtime.Provider
		want       string
	}{
		{"nil legacy", nil, ok, "PartyKit"},
		{"typed nil legacy", typedNil, ok, "PartyKit"},
		{"nil realtime", ok, nil, "Inngest"},
		{"typed nil realtime", ok, typedNil, "Inngest"},
		{"typed nil func realtime", ok, realtime.ProviderFunc(nil), "Inngest"},
	} {
		t.Run(c.name, func(t *testing.T) {
			b, err := broadcast.New(c.legacy, c.rt, nil)
			require.ErrorIs(t, err, broadcast.ErrNilProvider)
			assert.Nil(t, b)
			assert.Contains(t, err.Error(), c.want)
			assert.True(t, strings.HasPrefix(err.Error(), "broadcast: "))
		})
	}
}

func TestInvalidMessagesReachNoTransport(t *testing.T) {
	legacy, rt := realtimetest.NewFaulty(), realtimetest.NewFaulty()
	b := newBroadcast(t, legacy, rt, broadcast.Options{Resolver: flags.Fixed(flags.Shadow)})
	err := b.Publish(context.Background(), realtime.Message{Room: "", Name: "video.asset.ready"})
	var ve *realtime.ValidationError
	require.ErrorAs(t, err, &ve)
	assert.Zero(t, legacy.Calls()+rt.Calls())
}

func TestClosedRefusesNewPublishes(t *testing.T) {
	b := mustNew(t, realtimetest.NewRecorder(), realtimetest.NewRecorder(), nil)
	require.NoError(t, b.Close(context.Background()))
	require.NoError(t, b.Close(context.Background()))
	assert.ErrorIs(t, b.Publish(context.Background(), msg), broadcast.ErrClosed)
}

func TestOneLogLinePerTransportWithoutBody(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	legacy := realtimetest.NewFaulty()
	rt := realtimetest.NewFaulty(realtimetest.Fail(transport.StatusError("inngest", http.StatusServiceUnavailable, "", 0)))
	b := newBroadcast(t, legacy, rt, broadcast.Options{
		Resolver: flags.Fixed(flags.Shadow), Logger: zap.New(core), ShadowBudget: time.Second,
	})
	require.NoError(t, b.Publish(context.Background(), msg))
	require.NoError(t, b.Close(context.Background()))

	entries := logs.FilterMessage("realtime: publish").All()
	require.Len(t, entries, 2)
	byTransport := map[string]map[string]any{}
	for _, e := range entries {
		f := e.ContextMap()
		byTransport[f["transport"].(string)] = f
		assert.NotContains(t, fmt.Sprint(f), "do-not-log", "the body is never logged")
		for _, k := range []string{"mode", "scope", "channel", "topic", "room", "latency", "outcome"} {
			assert.Contains(t, f, k)
		}
	}
	assert.Equal(t, "ok", byTransport["partykit"]["outcome"])
	assert.Equal(t, "error", byTransport["inngest"]["outcome"])
	assert.Equal(t, "", byTransport["inngest"]["channel"], "a fake realtime provider names no channel (see TestLogLineNamesTheWireChannel)")
	assert.Equal(t, "shadow", byTransport["inngest"]["mode"])
	assert.Equal(t, "video-ready", byTransport["inngest"]["scope"])
	assert.Contains(t, byTransport["inngest"]["error"], "503")
}

func TestMetricsCountPublishesAndErrors(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer func() { _ = mp.Shutdown(context.Background()) }()
	legacy := realtimetest.NewFaulty()
	rt := realtimetest.NewFaulty(realtimetest.Fail(errors.New("boom")), realtimetest.Succeed())
	b := newBroadcast(t, legacy, rt, broadcast.Options{Resolver: flags.Fixed(flags.Shadow), Meter: mp.Meter("test"), ShadowBudget: time.Second})
	for range 3 {
		require.NoError(t, b.Publish(context.Background(), msg))
	}
	require.NoError(t, b.Close(context.Background()))

	var rm metricdata.ResourceMetrics
	require.NoError(t, reader.Collect(context.Background(), &rm))
	got := map[string]int64{}
	var histCount uint64
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, dp := range d.DataPoints {
					tr, _ := dp.Attributes.Value(attribute.Key("transport"))
					oc, _ := dp.Attributes.Value(attribute.Key("outcome"))
					got[m.Name+"/"+tr.AsString()+"/"+oc.AsString()] += dp.Value
				}
			case metricdata.Histogram[float64]:
				for _, dp := range d.DataPoints {
					histCount += dp.Count
				}
			}
		}
	}
	assert.Equal(t, map[string]int64{
		"realtime.broadcast.publishes/partykit/ok":   3,
		"realtime.broadcast.publishes/inngest/ok":    2,
		"realtime.broadcast.publishes/inngest/error": 1,
		"realtime.broadcast.errors/inngest/error":    1,
		// Zero series, there from the first publish of the scope's mode.
		"realtime.broadcast.errors/partykit/error": 0,
		"realtime.broadcast.detached/inngest/ok":   0,
		"realtime.broadcast.log_appends//error":    0,
		"realtime.broadcast.resolver_failures//":   0,
		"realtime.broadcast.log_appends//ok":       3,
	}, got)
	assert.Equal(t, uint64(6), histCount)
}

func TestPinKeepsTheModeForAWholeStream(t *testing.T) {
	legacy, rt := realtimetest.NewRecorder(), realtimetest.NewRecorder()
	sw := &switchable{}
	b := newBroadcast(t, legacy, rt, broadcast.Options{Resolver: sw})
	stream := b.Pin(context.Background(), "chat_1", "ai.message")
	chunk := realtime.Message{Room: "chat_1", Name: "ai.message", RequestID: "chat_1", Body: "Hel"}
	require.NoError(t, stream.Publish(context.Background(), chunk))
	sw.mode.Store(uint32(flags.Realtime)) // the flag flips mid-stream
	require.NoError(t, stream.Publish(context.Background(), chunk))
	assert.Equal(t, 2, legacy.Len(), "the pinned stream stays on PartyKit")
	assert.Zero(t, rt.Len())
	require.NoError(t, b.Publish(context.Background(), chunk))
	assert.Equal(t, 1, rt.Len(), "an unpinned publish follows the flag")
}

type streamer struct {
	*realtimetest.Recorder
	streamed atomic.Int32
}

func (s *streamer) PublishStream(context.Context, string, string, io.Reader) error {
	s.streamed.Add(1)
	return nil
}

func TestPinStreamsOnlyInRealtimeModeWithoutFallback(t *testing.T) {
	for _, c := range []struct {
		mode     flags.Mode
		fallback bool
		streams  bool
	}{{flags.Realtime, false, true}, {flags.Realtime, true, false}, {flags.Shadow, false, false}, {flags.Legacy, false, false}} {
		rt := &streamer{Recorder: realtimetest.NewRecorder()}
		b := newBroadcast(t, realtimetest.NewRecorder(), rt, broadcast.Options{Resolver: flags.Fixed(c.mode), FallbackToLegacy: c.fallback})
		sp, ok := b.Pin(context.Background(), "chat", "ai.message").(realtime.StreamPublisher)
		require.Equal(t, c.streams, ok, "mode %s, fallback %v", c.mode, c.fallback)
		if ok {
			require.NoError(t, sp.PublishStream(context.Background(), "chat", "ai.message", strings.NewReader("x")))
			assert.Equal(t, int32(1), rt.streamed.Load())
		}
	}
}

// mustNew is broadcast.New for tests, which always pass two providers.
func mustNew(t testing.TB, legacy, rt realtime.Provider, opts *broadcast.Options) *broadcast.Broadcast {
	t.Helper()
	b, err := broadcast.New(legacy, rt, opts)
	require.NoError(t, err)
	return b
}

// TestLogLineNamesTheWireChannel: with an Inngest provider of keyed
// channels, the channel in the log line is the one on the wire (and in the
// token answer), not the readable room name, so the runbook's "compare the
// log's channel with the token's" works.
func TestLogLineNamesTheWireChannel(t *testing.T) {
	t.Setenv("INNGEST_SIGNING_KEY_FALLBACK", "")
	t.Setenv("INNGEST_ENV", "")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	rt, err := inngest.New(&inngest.Options{BaseURL: srv.URL, SigningKey: conformanceKey, ChannelSecret: conformanceSecret})
	require.NoError(t, err)
	defer rt.Close()
	core, logs := observer.New(zapcore.DebugLevel)
	b := newBroadcast(t, realtimetest.NewRecorder(), rt, broadcast.Options{Resolver: flags.Fixed(flags.Realtime), Logger: zap.New(core)})
	require.NoError(t, b.Publish(context.Background(), msg))

	wire, err := rt.Channel(msg.Room)
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(wire, "rtk1_"), wire)
	entries := logs.FilterMessage("realtime: publish").All()
	require.Len(t, entries, 1)
	assert.Equal(t, wire, entries[0].ContextMap()["channel"])

	// Route names the same channel, and the topic.
	topic, err := rt.Topic(msg.Name)
	require.NoError(t, err)
	assert.Equal(t, broadcast.Route{Scope: flags.ScopeVideoReady, Mode: flags.Realtime, Channel: wire, Topic: topic},
		b.Route(context.Background(), msg.Room, msg.Name))
}
