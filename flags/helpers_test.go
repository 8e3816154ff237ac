package flags

import (
	"context"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/open-feature/go-sdk/openfeature"
	"github.com/open-feature/go-sdk/openfeature/isolated"
	"github.com/open-feature/go-sdk/openfeature/memprovider"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// TestMain starts the tests, and the examples, from an environment without
// the variables an EnvProvider reads, whatever the shell sets: a test that
// needs one sets it with t.Setenv, which restores it when the test ends.
// It then fails the package if a test leaves a goroutine behind.
func TestMain(m *testing.M) {
	for _, k := range EnvVariables() {
		_ = os.Unsetenv(k)
	}
	goleak.VerifyTestMain(m)
}

// newClient returns a client of an isolated API whose default provider is p,
// set and initialised; the API is shut down when the test ends.
func newClient(t testing.TB, p openfeature.FeatureProvider) *openfeature.Client {
	t.Helper()
	api := isolated.NewAPI()
	t.Cleanup(func() { _ = api.Shutdown(context.Background()) })
	if p != nil {
		if err := api.SetProviderAndWait(context.Background(), p); err != nil {
			t.Fatalf("SetProviderAndWait: %v", err)
		}
	}
	return api.NewClient()
}

// fixture is an Evaluator wired to an observed logger and a manual metric
// reader.
type fixture struct {
	ev     *Evaluator
	reader *sdkmetric.ManualReader
	logs   *observer.ObservedLogs
}

func newFixture(t testing.TB, client openfeature.IClient, o Options) *fixture {
	t.Helper()
	core, logs := observer.New(zapcore.DebugLevel)
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	o.Logger = zap.New(core)
	o.Meter = mp.Meter("flags-test")
	if o.Timeout == 0 {
		// Tests that are not about the deadline must not race it on a
		// loaded machine under -race.
		o.Timeout = noDeadline
	}
	ev := NewEvaluator(client, &o)
	t.Cleanup(func() { _ = ev.Close() })
	return &fixture{ev: ev, reader: reader, logs: logs}
}

// noDeadline is the Timeout of tests whose evaluations never hang: long
// enough never to be reached, so no test depends on a timer.
const noDeadline = time.Hour

// fallbacks returns the counter's values keyed "scope/reason", summed over
// the answer attribute.
func (f *fixture) fallbacks(t testing.TB) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	for k, v := range f.fallbackAnswers(t) {
		out[k[:strings.LastIndexByte(k, '/')]] += v
	}
	return out
}

// fallbackAnswers returns the counter's values keyed "scope/reason/answer".
func (f *fixture) fallbackAnswers(t testing.TB) map[string]int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := f.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatalf("Collect: %v", err)
	}
	out := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != "realtime.flag.fallbacks" { // the documented name dashboards read
				continue
			}
			sum, ok := m.Data.(metricdata.Sum[int64])
			if !ok {
				t.Fatalf("%s is a %T, want Sum[int64]", m.Name, m.Data)
			}
			if !sum.IsMonotonic {
				t.Errorf("%s is not monotonic", m.Name)
			}
			for _, dp := range sum.DataPoints {
				s, _ := dp.Attributes.Value("scope")
				r, _ := dp.Attributes.Value("reason")
				a, _ := dp.Attributes.Value("answer")
				if dp.Attributes.Len() != 3 || (a.AsString() != "last_known" && a.AsString() != "default") {
					t.Errorf("attributes %v, want scope, reason and answer", dp.Attributes.ToSlice())
				}
				if dp.Value != 0 {
					out[s.AsString()+"/"+r.AsString()+"/"+a.AsString()] += dp.Value
				}
			}
		}
	}
	return out
}

func (f *fixture) wantFallbacks(t testing.TB, want map[string]int64) {
	t.Helper()
	wantCounts(t, f.fallbacks(t), want)
}

// wantAnswers checks the counter keyed "scope/reason/answer".
func (f *fixture) wantAnswers(t testing.TB, want map[string]int64) {
	t.Helper()
	wantCounts(t, f.fallbackAnswers(t), want)
}

func wantCounts(t testing.TB, got, want map[string]int64) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("fallbacks = %v, want %v", got, want)
		return
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("fallbacks = %v, want %v", got, want)
			return
		}
	}
}

// waitIdle waits until no evaluation goroutine of ev is running.
func waitIdle(t testing.TB, ev *Evaluator) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for ev.inFlight.Load() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d evaluations still in flight", ev.inFlight.Load())
		}
		time.Sleep(time.Millisecond)
	}
}

// stubProvider is a FeatureProvider whose boolean and string evaluations are
// functions; a nil function answers FLAG_NOT_FOUND.
type stubProvider struct {
	boolFn   func(ctx context.Context, flag string, flat openfeature.FlattenedContext) openfeature.BoolResolutionDetail
	stringFn func(ctx context.Context, flag string, flat openfeature.FlattenedContext) openfeature.StringResolutionDetail
}

func notFoundDetail(flag string) openfeature.ProviderResolutionDetail {
	return openfeature.ProviderResolutionDetail{
		ResolutionError: openfeature.NewFlagNotFoundResolutionError(flag),
		Reason:          openfeature.ErrorReason,
	}
}

func (p *stubProvider) Metadata() openfeature.Metadata { return openfeature.Metadata{Name: "stub"} }
func (p *stubProvider) Hooks() []openfeature.Hook      { return nil }

func (p *stubProvider) BooleanEvaluation(ctx context.Context, flag string, def bool, flat openfeature.FlattenedContext) openfeature.BoolResolutionDetail {
	if p.boolFn == nil {
		return openfeature.BoolResolutionDetail{Value: def, ProviderResolutionDetail: notFoundDetail(flag)}
	}
	return p.boolFn(ctx, flag, flat)
}

func (p *stubProvider) StringEvaluation(ctx context.Context, flag string, def string, flat openfeature.FlattenedContext) openfeature.StringResolutionDetail {
	if p.stringFn == nil {
		return openfeature.StringResolutionDetail{Value: def, ProviderResolutionDetail: notFoundDetail(flag)}
	}
	return p.stringFn(ctx, flag, flat)
}

func (p *stubProvider) FloatEvaluation(_ context.Context, flag string, def float64, _ openfeature.FlattenedContext) openfeature.FloatResolutionDetail {
	return openfeature.FloatResolutionDetail{Value: def, ProviderResolutionDetail: notFoundDetail(flag)}
}

func (p *stubProvider) IntEvaluation(_ context.Context, flag string, def int64, _ openfeature.FlattenedContext) openfeature.IntResolutionDetail {
	return openfeature.IntResolutionDetail{Value: def, ProviderResolutionDetail: notFoundDetail(flag)}
}

func (p *stubProvider) ObjectEvaluation(_ context.Context, flag string, def any, _ openfeature.FlattenedContext) openfeature.InterfaceResolutionDetail {
	return openfeature.InterfaceResolutionDetail{Value: def, ProviderResolutionDetail: notFoundDetail(flag)}
}

// initProvider is a stubProvider with a StateHandler whose Init is a
// function, to hold a provider NOT_READY or make it fail.
type initProvider struct {
	stubProvider
	init func() error
}

func (p *initProvider) Init(openfeature.EvaluationContext) error { return p.init() }
func (p *initProvider) Shutdown()                                {}

// stringValue is a successful string resolution of v.
func stringValue(v string) openfeature.StringResolutionDetail {
	return openfeature.StringResolutionDetail{Value: v, ProviderResolutionDetail: openfeature.ProviderResolutionDetail{Reason: openfeature.StaticReason}}
}

func stringErr(e openfeature.ResolutionError) openfeature.StringResolutionDetail {
	return openfeature.StringResolutionDetail{ProviderResolutionDetail: openfeature.ProviderResolutionDetail{ResolutionError: e, Reason: openfeature.ErrorReason}}
}

// modeFlagDef is an in-memory string flag whose value is v.
func modeFlagDef(v string) memprovider.InMemoryFlag {
	return memprovider.InMemoryFlag{State: memprovider.Enabled, DefaultVariant: "v", Variants: map[string]any{"v": v}}
}

// anyFlagDef is an in-memory flag whose value is v, of any type.
func anyFlagDef(v any) memprovider.InMemoryFlag {
	return memprovider.InMemoryFlag{State: memprovider.Enabled, DefaultVariant: "v", Variants: map[string]any{"v": v}}
}

// blocker is released once; Release is safe to call more than once.
type blocker struct {
	ch   chan struct{}
	once sync.Once
}

func newBlocker(t testing.TB) *blocker {
	b := &blocker{ch: make(chan struct{})}
	t.Cleanup(b.Release)
	return b
}

func (b *blocker) Release() { b.once.Do(func() { close(b.ch) }) }

var errBoom = errors.New("boom")
