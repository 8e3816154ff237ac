package flags

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/open-feature/go-sdk/openfeature"
	"github.com/open-feature/go-sdk/openfeature/memprovider"
)

// BenchmarkEvaluator measures one Mode call, the cost every publish pays:
// "cached" sub-benchmarks reuse a resolved mode (the default CacheTTL, no
// provider events meanwhile), "uncached" ones evaluate every call
// (CacheTTL < 0), through the goroutine, deadline and recovery. Compare
// with BenchmarkClientDirect, the same two SDK calls inline, in the same run.
func BenchmarkEvaluator(b *testing.B) {
	ctx := context.Background()
	rooms := make([]string, 64)
	for i := range rooms {
		rooms[i] = "video-" + strconv.Itoa(i)
	}
	// run calls Mode in scope, cycling through 64 rooms (every call builds
	// its evaluation context) or, with one room, reusing the cached one as
	// a stream of AI chunks to one room does.
	run := func(b *testing.B, p openfeature.FeatureProvider, scope Scope, oneRoom bool, ttl time.Duration) {
		ev := NewEvaluator(newClient(b, p), &Options{App: "astro-party", Environment: "production", CacheTTL: ttl})
		defer ev.Close()
		mask := 63
		if oneRoom {
			mask = 0
		}
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			ev.Mode(ctx, scope, rooms[i&mask])
			i++
		}
	}
	mem := func() openfeature.FeatureProvider {
		return memprovider.NewInMemoryProvider(map[string]memprovider.InMemoryFlag{
			KillSwitchKey:             anyFlagDef(false),
			ScopeVideoReady.ModeKey(): modeFlagDef("shadow"),
		})
	}
	const cached, uncached = 0, -1
	// Two evaluations: kill switch, scope flag.
	b.Run("cached/memprovider/scope-set", func(b *testing.B) { run(b, mem(), ScopeVideoReady, false, cached) })
	b.Run("cached/memprovider/scope-set/one-room", func(b *testing.B) { run(b, mem(), ScopeVideoReady, true, cached) })
	b.Run("uncached/memprovider/scope-set", func(b *testing.B) { run(b, mem(), ScopeVideoReady, false, uncached) })
	b.Run("uncached/memprovider/scope-set/one-room", func(b *testing.B) { run(b, mem(), ScopeVideoReady, true, uncached) })
	// Three: kill switch, scope flag (absent), default flag (absent).
	b.Run("uncached/memprovider/unset", func(b *testing.B) { run(b, mem(), ScopeTranscript, false, uncached) })
	b.Run("uncached/env/scope-set", func(b *testing.B) {
		b.Setenv("ENABLE_REALTIME_VIDEO_READY", "true")
		run(b, NewEnvProvider(nil), ScopeVideoReady, false, uncached)
	})
	parallel := func(b *testing.B, ttl time.Duration) {
		ev := NewEvaluator(newClient(b, mem()), &Options{App: "astro-party", Environment: "production", CacheTTL: ttl})
		defer ev.Close()
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				ev.Mode(ctx, ScopeVideoReady, rooms[i&63])
				i++
			}
		})
	}
	b.Run("cached/memprovider/parallel", func(b *testing.B) { parallel(b, cached) })
	b.Run("uncached/memprovider/parallel", func(b *testing.B) { parallel(b, uncached) })
	b.Run("fallback/not-ready", func(b *testing.B) { run(b, nil, ScopeVideoReady, false, uncached) })
}

// BenchmarkClientDirect is the floor: the same two SDK evaluations called
// inline, without the Evaluator's goroutine, deadline and recovery.
func BenchmarkClientDirect(b *testing.B) {
	ctx := context.Background()
	c := newClient(b, memprovider.NewInMemoryProvider(map[string]memprovider.InMemoryFlag{
		KillSwitchKey:             anyFlagDef(false),
		ScopeVideoReady.ModeKey(): modeFlagDef("shadow"),
	}))
	ec := openfeature.NewEvaluationContext("video-1", map[string]any{"app": "astro-party", "environment": "production", "scope": "video-ready", "room": "video-1"})
	b.ReportAllocs()
	for b.Loop() {
		_, _ = c.BooleanValueDetails(ctx, KillSwitchKey, false, ec)
		_, _ = c.StringValueDetails(ctx, ScopeVideoReady.ModeKey(), "", ec)
	}
}
