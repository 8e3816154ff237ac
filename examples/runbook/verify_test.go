package runbook_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/open-feature/go-sdk/openfeature/isolated"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/coursebuilder/realtime-go/broadcast"
	"github.com/coursebuilder/realtime-go/flags"
	"github.com/coursebuilder/realtime-go/realtime"
)

// gauge collects the metrics and returns realtime.broadcast.mode as
// scope → mode → value.
func gauge(t *testing.T, r *sdkmetric.ManualReader) map[string]map[string]int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != "realtime.broadcast.mode" {
				continue
			}
			g, ok := m.Data.(metricdata.Gauge[int64])
			if !ok {
				t.Fatalf("realtime.broadcast.mode is a %T, want an int64 gauge", m.Data)
			}
			for _, dp := range g.DataPoints {
				scope, _ := dp.Attributes.Value(attribute.Key("scope"))
				mode, _ := dp.Attributes.Value(attribute.Key("mode"))
				if out[scope.AsString()] == nil {
					out[scope.AsString()] = map[string]int64{}
				}
				out[scope.AsString()][mode.AsString()] = dp.Value
			}
		}
	}
	return out
}

// inForce returns the mode whose gauge is 1, checking the other three are 0.
func inForce(t *testing.T, modes map[string]int64) string {
	t.Helper()
	if len(modes) != 4 {
		t.Fatalf("gauge series %v, want the four modes", modes)
	}
	one := ""
	for m, v := range modes {
		switch v {
		case 1:
			if one != "" {
				t.Fatalf("two modes at 1: %v", modes)
			}
			one = m
		case 0:
		default:
			t.Fatalf("gauge %v: values are 0 or 1", modes)
		}
	}
	return one
}

// TestVerifyStepsAfterKillSwitch is the runbook's "Verify a flip" on a
// flags file: after the kill switch, without any publish, the next
// collection (a scrape) shows realtime_broadcast_mode at 1 for legacy and
// logs "realtime: mode changed" with the figures of the mode that ended;
// undoing the kill switch brings the scope's mode back.
func TestVerifyStepsAfterKillSwitch(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "app.flags")
	write := func(content string) {
		t.Helper()
		if err := os.WriteFile(path+".tmp", []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(path+".tmp", path); err != nil {
			t.Fatal(err)
		}
	}
	write("REALTIME_VIDEO_READY_MODE=primary\n")
	api := isolated.NewAPI()
	defer func() { _ = api.Shutdown(ctx) }()
	if err := api.SetProviderAndWait(ctx, flags.NewEnvProvider(&flags.EnvOptions{File: path})); err != nil {
		t.Fatal(err)
	}
	ev := flags.NewEvaluator(api.NewClient(), nil) // the app's defaults: 1s cache, dropped on change events
	defer ev.Close()

	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer func() { _ = mp.Shutdown(ctx) }()
	core, logs := observer.New(zapcore.InfoLevel)
	ok := realtime.ProviderFunc(func(context.Context, realtime.Message) error { return nil })
	b, err := broadcast.New(ok, ok, &broadcast.Options{Resolver: ev, Meter: mp.Meter("app"), Logger: zap.New(core)})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close(ctx)
	for i := range 3 {
		if err := b.Publish(ctx, realtime.Message{Room: "vid_1", Name: "video.asset.ready", RequestID: "r", Body: i}); err != nil {
			t.Fatal(err)
		}
	}
	if m := inForce(t, gauge(t, reader)["video-ready"]); m != "primary" {
		t.Fatalf("before: gauge says %s, want primary", m)
	}

	// until polls the collection, as Prometheus scrapes, until the gauge
	// shows want: the provider re-reads the file every 250ms.
	until := func(want string) {
		t.Helper()
		start := time.Now()
		deadline := start.Add(30 * time.Second)
		for inForce(t, gauge(t, reader)["video-ready"]) != want {
			if time.Now().After(deadline) {
				t.Fatalf("the gauge does not show %s 30s after the flip", want)
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Logf("the gauge showed %s %v after the file was written (collections every 50ms)", want, time.Since(start).Round(time.Millisecond))
	}
	write("REALTIME_VIDEO_READY_MODE=primary\nREALTIME_KILL_SWITCH=true\n")
	until("legacy")
	lines := logs.FilterMessage("realtime: mode changed").FilterField(zap.String("to", "legacy")).All()
	if len(lines) != 1 {
		t.Fatalf("%d mode changed lines to legacy, want 1", len(lines))
	}
	f := lines[0].ContextMap()
	if f["scope"] != "video-ready" || f["from"] != "primary" || f["inngest_publishes"] != int64(3) || f["partykit_publishes"] != int64(3) {
		t.Errorf("flip log line %v, want scope video-ready from primary with 3 publishes per transport", f)
	}

	write("REALTIME_VIDEO_READY_MODE=primary\nREALTIME_KILL_SWITCH=false\n")
	until("primary")
}
