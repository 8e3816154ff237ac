package flags

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/open-feature/go-sdk/openfeature"
	"github.com/open-feature/go-sdk/openfeature/isolated"
	"github.com/open-feature/go-sdk/openfeature/memprovider"
)

const room = "video-123"

// TestFallbackMatrix checks that every way of failing to evaluate answers
// Legacy, counts one fallback with the right reason and logs one Warn.
func TestFallbackMatrix(t *testing.T) {
	videoReady := ScopeVideoReady.ModeKey()
	cases := []struct {
		name   string
		client func(t *testing.T) openfeature.IClient
		ctx    func() context.Context
		reason string
		flag   string
	}{
		{
			name:   "nil client",
			client: func(*testing.T) openfeature.IClient { return nil },
			reason: "no_provider", flag: KillSwitchKey,
		},
		{
			name:   "typed nil client",
			client: func(*testing.T) openfeature.IClient { return (*openfeature.Client)(nil) },
			reason: "no_provider", flag: KillSwitchKey,
		},
		{
			name:   "isolated API without a provider",
			client: func(t *testing.T) openfeature.IClient { return newClient(t, nil) },
			reason: "provider_not_ready", flag: KillSwitchKey,
		},
		{
			name: "provider still initialising",
			client: func(t *testing.T) openfeature.IClient {
				b := newBlocker(t)
				p := &initProvider{init: func() error { <-b.ch; return nil }}
				api := isolated.NewAPI()
				t.Cleanup(func() { _ = api.Shutdown(context.Background()) })
				t.Cleanup(b.Release) // runs before Shutdown
				if err := api.SetProvider(context.Background(), p); err != nil {
					t.Fatal(err)
				}
				return api.NewClient()
			},
			reason: "provider_not_ready", flag: KillSwitchKey,
		},
		{
			name: "provider failed fatally",
			client: func(t *testing.T) openfeature.IClient {
				p := &initProvider{init: func() error {
					return &openfeature.ProviderInitError{ErrorCode: openfeature.ProviderFatalCode, Message: "bad credentials"}
				}}
				api := isolated.NewAPI()
				t.Cleanup(func() { _ = api.Shutdown(context.Background()) })
				if err := api.SetProviderAndWait(context.Background(), p); err == nil {
					t.Fatal("SetProviderAndWait: want the init error")
				}
				return api.NewClient()
			},
			reason: "provider_fatal", flag: KillSwitchKey,
		},
		{
			name: "provider error on the kill switch",
			client: func(t *testing.T) openfeature.IClient {
				return newClient(t, &stubProvider{boolFn: func(context.Context, string, openfeature.FlattenedContext) openfeature.BoolResolutionDetail {
					return openfeature.BoolResolutionDetail{ProviderResolutionDetail: openfeature.ProviderResolutionDetail{
						ResolutionError: openfeature.NewGeneralResolutionError("flag service unreachable"), Reason: openfeature.ErrorReason}}
				}})
			},
			reason: "provider_error", flag: KillSwitchKey,
		},
		{
			name: "provider error on the scope flag",
			client: func(t *testing.T) openfeature.IClient {
				return newClient(t, &stubProvider{stringFn: func(context.Context, string, openfeature.FlattenedContext) openfeature.StringResolutionDetail {
					return stringErr(openfeature.NewGeneralResolutionError("flag service unreachable"))
				}})
			},
			reason: "provider_error", flag: videoReady,
		},
		{
			name: "scope flag of the wrong type",
			client: func(t *testing.T) openfeature.IClient {
				return newClient(t, memprovider.NewInMemoryProvider(map[string]memprovider.InMemoryFlag{
					videoReady: anyFlagDef(true),
				}))
			},
			reason: "type_mismatch", flag: videoReady,
		},
		{
			name: "kill switch of the wrong type",
			client: func(t *testing.T) openfeature.IClient {
				return newClient(t, memprovider.NewInMemoryProvider(map[string]memprovider.InMemoryFlag{
					KillSwitchKey: anyFlagDef("yes"),
					videoReady:    modeFlagDef("realtime"),
				}))
			},
			reason: "type_mismatch", flag: KillSwitchKey,
		},
		{
			name: "garbage mode in the scope flag",
			client: func(t *testing.T) openfeature.IClient {
				return newClient(t, memprovider.NewInMemoryProvider(map[string]memprovider.InMemoryFlag{
					videoReady:             modeFlagDef("turbo"),
					ScopeDefault.ModeKey(): modeFlagDef("realtime"),
				}))
			},
			reason: "invalid_mode", flag: videoReady,
		},
		{
			name: "garbage mode in the default flag",
			client: func(t *testing.T) openfeature.IClient {
				return newClient(t, memprovider.NewInMemoryProvider(map[string]memprovider.InMemoryFlag{
					ScopeDefault.ModeKey(): modeFlagDef("on"),
				}))
			},
			reason: "invalid_mode", flag: ScopeDefault.ModeKey(),
		},
		{
			name: "unparseable environment variable",
			client: func(t *testing.T) openfeature.IClient {
				env := map[string]string{"REALTIME_VIDEO_READY_MODE": "banana", "ENABLE_REALTIME_VIDEO_READY": "true"}
				setenv(t, env)
				return newClient(t, NewEnvProvider(nil))
			},
			reason: "parse_error", flag: videoReady,
		},
		{
			name: "panicking provider",
			client: func(t *testing.T) openfeature.IClient {
				return newClient(t, &stubProvider{stringFn: func(context.Context, string, openfeature.FlattenedContext) openfeature.StringResolutionDetail {
					panic("provider bug")
				}})
			},
			reason: "panic", flag: videoReady,
		},
		{
			name: "panicking hook",
			client: func(t *testing.T) openfeature.IClient {
				c := newClient(t, memprovider.NewInMemoryProvider(nil))
				c.AddHooks(panicHook{})
				return c
			},
			reason: "panic", flag: KillSwitchKey,
		},
		{
			name: "failing hook",
			client: func(t *testing.T) openfeature.IClient {
				c := newClient(t, memprovider.NewInMemoryProvider(nil))
				c.AddHooks(errHook{})
				return c
			},
			reason: "provider_error", flag: KillSwitchKey,
		},
		{
			name:   "canceled context",
			client: func(t *testing.T) openfeature.IClient { return newClient(t, memprovider.NewInMemoryProvider(nil)) },
			ctx: func() context.Context {
				ctx, cancel := context.WithCancel(context.Background())
				cancel()
				return ctx
			},
			reason: "canceled", flag: KillSwitchKey,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, tc.client(t), Options{App: "astro-party", Environment: "test"})
			ctx := context.Background()
			if tc.ctx != nil {
				ctx = tc.ctx()
			}
			if got := f.ev.Mode(ctx, ScopeVideoReady, room); got != Legacy {
				t.Errorf("Mode = %v, want legacy", got)
			}
			waitIdle(t, f.ev)
			f.wantFallbacks(t, map[string]int64{"video-ready/" + tc.reason: 1})
			assertWarn(t, f, tc.reason, tc.flag)
		})
	}
}

// assertWarn checks that exactly one Warn was logged, for reason and flag.
func assertWarn(t *testing.T, f *fixture, reason, flag string) {
	t.Helper()
	entries := f.logs.All()
	if len(entries) != 1 {
		t.Fatalf("logged %d entries, want 1: %v", len(entries), entries)
	}
	e := entries[0]
	fields := e.ContextMap()
	if e.Level.String() != "warn" || fields["reason"] != reason || fields["flag"] != flag ||
		fields["scope"] != "video-ready" || fields["room"] != room {
		t.Errorf("logged %s %q %v, want warn with reason=%s flag=%s scope=video-ready room=%s",
			e.Level, e.Message, fields, reason, flag, room)
	}
}

type panicHook struct{ openfeature.UnimplementedHook }

func (panicHook) Before(context.Context, openfeature.HookContext, openfeature.HookHints) (*openfeature.EvaluationContext, error) {
	panic("hook bug")
}

type errHook struct{ openfeature.UnimplementedHook }

func (errHook) Before(context.Context, openfeature.HookContext, openfeature.HookHints) (*openfeature.EvaluationContext, error) {
	return nil, errBoom
}

// TestSlowProvider checks that a provider that ignores its context and
// blocks cannot hold a publish past the Timeout: the provider only returns
// once Mode has, so Mode returning at all proves the bound.
func TestSlowProvider(t *testing.T) {
	b := newBlocker(t)
	entered := make(chan struct{}, 1)
	p := &stubProvider{boolFn: func(context.Context, string, openfeature.FlattenedContext) openfeature.BoolResolutionDetail {
		entered <- struct{}{}
		<-b.ch // ignores ctx on purpose
		return openfeature.BoolResolutionDetail{Value: false}
	}}
	f := newFixture(t, newClient(t, p), Options{Timeout: 20 * time.Millisecond})
	if got := f.ev.Mode(context.Background(), ScopeTranscript, room); got != Legacy {
		t.Errorf("Mode = %v, want legacy", got)
	}
	<-entered
	b.Release()
	waitIdle(t, f.ev)
	f.wantFallbacks(t, map[string]int64{"transcript/timeout": 1})
}

// TestSlowProviderHonoringContext checks a provider that stops at the
// deadline and reports an error is still counted as a timeout.
func TestSlowProviderHonoringContext(t *testing.T) {
	p := &stubProvider{stringFn: func(ctx context.Context, _ string, _ openfeature.FlattenedContext) openfeature.StringResolutionDetail {
		<-ctx.Done()
		return stringErr(openfeature.NewGeneralResolutionError(ctx.Err().Error()))
	}}
	f := newFixture(t, newClient(t, p), Options{Timeout: 10 * time.Millisecond})
	if got := f.ev.Mode(context.Background(), ScopeAIStream, room); got != Legacy {
		t.Errorf("Mode = %v, want legacy", got)
	}
	waitIdle(t, f.ev)
	f.wantFallbacks(t, map[string]int64{"ai-stream/timeout": 1})
}

// TestSaturated checks that hung evaluations are bounded: past MaxInFlight,
// calls answer at once without starting another goroutine.
func TestSaturated(t *testing.T) {
	b := newBlocker(t)
	p := &stubProvider{boolFn: func(context.Context, string, openfeature.FlattenedContext) openfeature.BoolResolutionDetail {
		<-b.ch
		return openfeature.BoolResolutionDetail{}
	}}
	f := newFixture(t, newClient(t, p), Options{Timeout: 5 * time.Millisecond, MaxInFlight: 2})
	ctx := context.Background()
	for range 5 {
		if got := f.ev.Mode(ctx, ScopeVideoUpload, room); got != Legacy {
			t.Errorf("Mode = %v, want legacy", got)
		}
	}
	if n := f.ev.inFlight.Load(); n != 2 {
		t.Errorf("in flight = %d, want 2", n)
	}
	b.Release()
	waitIdle(t, f.ev)
	f.wantFallbacks(t, map[string]int64{"video-upload/timeout": 2, "video-upload/saturated": 3})
}

// TestChain checks the kill switch → scope flag → default flag → legacy
// order, and that none of these answers is a fallback.
func TestChain(t *testing.T) {
	vr, def := ScopeVideoReady.ModeKey(), ScopeDefault.ModeKey()
	disabled := modeFlagDef("realtime")
	disabled.State = memprovider.Disabled
	cases := []struct {
		name  string
		flags map[string]memprovider.InMemoryFlag
		scope Scope
		want  Mode
	}{
		{"nothing set", nil, ScopeVideoReady, Legacy},
		{"scope flag", map[string]memprovider.InMemoryFlag{vr: modeFlagDef("shadow")}, ScopeVideoReady, Shadow},
		{"scope flag alias", map[string]memprovider.InMemoryFlag{vr: modeFlagDef(" Inngest ")}, ScopeVideoReady, Realtime},
		{"scope beats default", map[string]memprovider.InMemoryFlag{vr: modeFlagDef("primary"), def: modeFlagDef("shadow")}, ScopeVideoReady, Primary},
		{"scope legacy beats default", map[string]memprovider.InMemoryFlag{vr: modeFlagDef("legacy"), def: modeFlagDef("shadow")}, ScopeVideoReady, Legacy},
		{"default when scope absent", map[string]memprovider.InMemoryFlag{def: modeFlagDef("shadow")}, ScopeVideoReady, Shadow},
		{"default when scope empty", map[string]memprovider.InMemoryFlag{vr: modeFlagDef(""), def: modeFlagDef("primary")}, ScopeVideoReady, Primary},
		{"default when scope disabled", map[string]memprovider.InMemoryFlag{vr: disabled, def: modeFlagDef("shadow")}, ScopeVideoReady, Shadow},
		{"other scope's flag ignored", map[string]memprovider.InMemoryFlag{ScopeVideoUpload.ModeKey(): modeFlagDef("realtime")}, ScopeVideoReady, Legacy},
		{"default scope", map[string]memprovider.InMemoryFlag{def: modeFlagDef("realtime")}, ScopeDefault, Realtime},
		{"unknown scope reads its key then default", map[string]memprovider.InMemoryFlag{"realtime-quiz-mode": modeFlagDef("primary")}, Scope("quiz"), Primary},
		{"unknown scope default", map[string]memprovider.InMemoryFlag{def: modeFlagDef("shadow")}, Scope("quiz"), Shadow},
		{"kill switch false", map[string]memprovider.InMemoryFlag{KillSwitchKey: anyFlagDef(false), vr: modeFlagDef("realtime")}, ScopeVideoReady, Realtime},
		{"kill switch beats scope", map[string]memprovider.InMemoryFlag{KillSwitchKey: anyFlagDef(true), vr: modeFlagDef("realtime")}, ScopeVideoReady, Legacy},
		{"kill switch beats default", map[string]memprovider.InMemoryFlag{KillSwitchKey: anyFlagDef(true), def: modeFlagDef("realtime")}, ScopeVideoReady, Legacy},
		{"kill switch beats garbage", map[string]memprovider.InMemoryFlag{KillSwitchKey: anyFlagDef(true), vr: modeFlagDef("turbo")}, ScopeVideoReady, Legacy},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, newClient(t, memprovider.NewInMemoryProvider(tc.flags)), Options{})
			if got := f.ev.Mode(context.Background(), tc.scope, room); got != tc.want {
				t.Errorf("Mode = %v, want %v", got, tc.want)
			}
			f.wantFallbacks(t, map[string]int64{})
			if n := f.logs.Len(); n != 0 {
				t.Errorf("logged %d entries, want none: %v", n, f.logs.All())
			}
		})
	}
}

// TestEvaluationContext checks what a provider sees: the room as targeting
// key and the app, environment, scope and room attributes.
func TestEvaluationContext(t *testing.T) {
	var mu sync.Mutex
	var seen []openfeature.FlattenedContext
	record := func(flat openfeature.FlattenedContext) {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, maps.Clone(flat))
	}
	p := &stubProvider{
		boolFn: func(_ context.Context, _ string, flat openfeature.FlattenedContext) openfeature.BoolResolutionDetail {
			record(flat)
			return openfeature.BoolResolutionDetail{Value: false}
		},
		stringFn: func(_ context.Context, _ string, flat openfeature.FlattenedContext) openfeature.StringResolutionDetail {
			record(flat)
			return stringValue("")
		},
	}
	client := newClient(t, p)

	ev := NewEvaluator(client, &Options{App: "astro-party", Environment: "staging", Timeout: noDeadline})
	defer ev.Close()
	ev.Mode(context.Background(), ScopeVideoErrored, "room-7")
	want := openfeature.FlattenedContext{
		openfeature.TargetingKey: "room-7", "app": "astro-party", "environment": "staging",
		"scope": "video-errored", "room": "room-7",
	}
	mu.Lock()
	if len(seen) != 3 { // kill switch, scope flag, default flag
		t.Fatalf("%d evaluations, want 3", len(seen))
	}
	for i, got := range seen {
		if !maps.Equal(got, want) {
			t.Errorf("evaluation %d saw %v, want %v", i, got, want)
		}
	}
	seen = nil
	mu.Unlock()

	// Without app and environment those attributes are left out, and each
	// call carries its own room (the context is not shared across calls).
	ev = NewEvaluator(client, &Options{Timeout: noDeadline})
	defer ev.Close()
	ev.Mode(context.Background(), ScopeDefault, "a")
	ev.Mode(context.Background(), ScopeDefault, "b")
	mu.Lock()
	defer mu.Unlock()
	for i, r := range []string{"a", "a", "b", "b"} {
		want := openfeature.FlattenedContext{openfeature.TargetingKey: r, "scope": "default", "room": r}
		if !maps.Equal(seen[i], want) {
			t.Errorf("evaluation %d saw %v, want %v", i, seen[i], want)
		}
	}
}

// TestTargetingByRoom rolls one room forward with the in-memory provider's
// ContextEvaluator, the way a flag service targets a canary room.
func TestTargetingByRoom(t *testing.T) {
	eval := func(flag memprovider.InMemoryFlag, flat openfeature.FlattenedContext) (any, openfeature.ProviderResolutionDetail) {
		v := "legacy"
		if flat[openfeature.TargetingKey] == "canary-room" && flat["app"] == "astro-party" {
			v = "primary"
		}
		return v, openfeature.ProviderResolutionDetail{Reason: openfeature.TargetingMatchReason, Variant: v}
	}
	p := memprovider.NewInMemoryProvider(map[string]memprovider.InMemoryFlag{
		ScopeVideoReady.ModeKey(): {State: memprovider.Enabled, ContextEvaluator: &eval},
	})
	client := newClient(t, p)
	f := newFixture(t, client, Options{App: "astro-party"})
	ctx := context.Background()
	if got := f.ev.Mode(ctx, ScopeVideoReady, "canary-room"); got != Primary {
		t.Errorf("canary room: Mode = %v, want primary", got)
	}
	if got := f.ev.Mode(ctx, ScopeVideoReady, "other-room"); got != Legacy {
		t.Errorf("other room: Mode = %v, want legacy", got)
	}
	other := NewEvaluator(client, &Options{App: "epic-web", Timeout: noDeadline})
	defer other.Close()
	if got := other.Mode(ctx, ScopeVideoReady, "canary-room"); got != Legacy {
		t.Errorf("other app: Mode = %v, want legacy", got)
	}
	f.wantFallbacks(t, map[string]int64{})
}

// TestFlipBetweenCalls checks that a flag changed between two publishes
// applies to the second one, both ways, with the default cache: the
// in-memory provider emits a configuration-change event on every update,
// and the Evaluator drops its cache on it. synctest.Wait lets the SDK
// deliver the event (it does so on goroutines of its own); nothing sleeps.
func TestFlipBetweenCalls(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		vr := ScopeVideoReady.ModeKey()
		p := memprovider.NewInMemoryProvider(map[string]memprovider.InMemoryFlag{vr: modeFlagDef("legacy")})
		f := newFixture(t, newClient(t, p), Options{})
		ctx := context.Background()
		steps := []struct {
			flags map[string]memprovider.InMemoryFlag
			want  Mode
		}{
			{nil, Legacy},
			{map[string]memprovider.InMemoryFlag{vr: modeFlagDef("shadow")}, Shadow},
			{map[string]memprovider.InMemoryFlag{vr: modeFlagDef("primary")}, Primary},
			{map[string]memprovider.InMemoryFlag{vr: modeFlagDef("primary"), KillSwitchKey: anyFlagDef(true)}, Legacy},
			{map[string]memprovider.InMemoryFlag{vr: modeFlagDef("realtime")}, Realtime},
			{map[string]memprovider.InMemoryFlag{vr: modeFlagDef("legacy")}, Legacy},
		}
		for i, s := range steps {
			if s.flags != nil {
				p.UpdateFlags(s.flags)
				synctest.Wait()
			}
			for range 2 { // the second call is answered from the cache
				if got := f.ev.Mode(ctx, ScopeVideoReady, room); got != s.want {
					t.Errorf("step %d: Mode = %v, want %v", i, got, s.want)
				}
			}
		}
		f.wantFallbacks(t, map[string]int64{})
	})
}

// TestFlipWithoutCache checks that CacheTTL < 0 evaluates on every call: a
// flag changed between two publishes applies to the second one even before
// the provider's event is delivered.
func TestFlipWithoutCache(t *testing.T) {
	vr := ScopeVideoReady.ModeKey()
	p := memprovider.NewInMemoryProvider(map[string]memprovider.InMemoryFlag{vr: modeFlagDef("primary")})
	f := newFixture(t, newClient(t, p), Options{CacheTTL: -1})
	ctx := context.Background()
	if got := f.ev.Mode(ctx, ScopeVideoReady, room); got != Primary {
		t.Fatalf("Mode = %v, want primary", got)
	}
	p.UpdateFlags(map[string]memprovider.InMemoryFlag{vr: modeFlagDef("legacy")})
	if got := f.ev.Mode(ctx, ScopeVideoReady, room); got != Legacy {
		t.Errorf("after the flip: Mode = %v, want legacy", got)
	}
}

// TestEnvFlipBetweenCalls changes the process environment an EnvProvider
// reads, which emits no event: the change applies once the cached mode is
// CacheTTL old, and not before (synctest's clock).
func TestEnvFlipBetweenCalls(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, newClient(t, NewEnvProvider(nil)), Options{})
		ctx := context.Background()
		check := func(step string, want Mode) {
			t.Helper()
			if got := f.ev.Mode(ctx, ScopeVideoReady, room); got != want {
				t.Errorf("%s: Mode = %v, want %v", step, got, want)
			}
		}
		check("unset", Legacy)
		steps := []struct {
			key, value string
			want       Mode
		}{
			{"ENABLE_REALTIME_VIDEO_READY", "true", Shadow},
			{"REALTIME_VIDEO_READY_MODE", "primary", Primary},
			{"REALTIME_KILL_SWITCH", "1", Legacy},
			{"REALTIME_KILL_SWITCH", "0", Primary},
			{"REALTIME_VIDEO_READY_MODE", "", Shadow},
			{"ENABLE_REALTIME_VIDEO_READY", "false", Legacy},
		}
		prev := Legacy
		for _, s := range steps {
			t.Setenv(s.key, s.value)
			time.Sleep(defaultCacheTTL - time.Millisecond)
			check(s.key+"="+s.value+" within the TTL", prev)
			time.Sleep(time.Millisecond)
			check(s.key+"="+s.value, s.want)
			prev = s.want
		}
		f.wantFallbacks(t, map[string]int64{})
	})
}

// TestLogRateLimit checks one Warn per scope and reason per interval, with
// the suppressed count, while the counter counts them all (synctest's
// clock).
func TestLogRateLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, nil, Options{LogInterval: time.Minute})
		ctx := context.Background()
		for range 3 {
			f.ev.Mode(ctx, ScopeVideoReady, room)
		}
		f.ev.Mode(ctx, ScopeTranscript, room) // another scope has its own gate
		if n := f.logs.Len(); n != 2 {
			t.Fatalf("logged %d, want 2 (one per scope)", n)
		}
		time.Sleep(time.Minute - time.Nanosecond)
		f.ev.Mode(ctx, ScopeVideoReady, room)
		if n := f.logs.Len(); n != 2 {
			t.Fatalf("logged %d within the interval, want 2", n)
		}
		time.Sleep(time.Nanosecond)
		f.ev.Mode(ctx, ScopeVideoReady, room)
		entries := f.logs.All()
		if len(entries) != 3 {
			t.Fatalf("logged %d once the interval passed, want 3", len(entries))
		}
		if got := entries[2].ContextMap()["suppressed"]; got != int64(3) {
			t.Errorf("suppressed = %v, want 3", got)
		}
		f.wantFallbacks(t, map[string]int64{"video-ready/no_provider": 5, "transcript/no_provider": 1})
	})

	// Negative interval: every fallback is logged.
	ctx := context.Background()
	g := newFixture(t, nil, Options{LogInterval: -1})
	for range 4 {
		g.ev.Mode(ctx, Scope("quiz"), room)
	}
	if n := g.logs.Len(); n != 4 {
		t.Errorf("logged %d with LogInterval<0, want 4", n)
	}
	g.wantFallbacks(t, map[string]int64{"quiz/no_provider": 4})
}

// TestZeroEvaluator checks the zero value and a nil pointer answer Legacy.
func TestZeroEvaluator(t *testing.T) {
	var zero Evaluator
	if got := zero.Mode(context.Background(), ScopeVideoReady, room); got != Legacy {
		t.Errorf("zero Evaluator: %v", got)
	}
	var nilEv *Evaluator
	if got := nilEv.Mode(context.Background(), ScopeVideoReady, room); got != Legacy {
		t.Errorf("nil Evaluator: %v", got)
	}
	if err := zero.Close(); err != nil {
		t.Errorf("zero Evaluator: Close = %v", err)
	}
	if err := nilEv.Close(); err != nil {
		t.Errorf("nil Evaluator: Close = %v", err)
	}
	var r Resolver = NewEvaluator(nil, nil)
	//lint:ignore SA1012 a nil context must not panic either
	if got := r.Mode(nil, ScopeVideoReady, room); got != Legacy { //nolint:staticcheck
		t.Errorf("nil context: %v", got)
	}
}

// TestConcurrent hammers one Evaluator from many goroutines while the flags
// change underneath, for the race detector. It does not depend on any
// evaluation finishing within the Timeout: a call that times out answers
// the last known mode, which is one of the values the flag took, and is
// counted as a timeout — the only fallback allowed here.
func TestConcurrent(t *testing.T) {
	vr := ScopeVideoReady.ModeKey()
	p := memprovider.NewInMemoryProvider(map[string]memprovider.InMemoryFlag{vr: modeFlagDef("shadow")})
	f := newFixture(t, newClient(t, p), Options{App: "a", Environment: "e", Timeout: defaultTimeout})
	ctx := context.Background()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				s := Scopes[(g+i)%len(Scopes)]
				m := f.ev.Mode(ctx, s, fmt.Sprintf("room-%d", i%7))
				if !m.Known() || (s != ScopeVideoReady && m != Legacy) {
					t.Errorf("%s: Mode = %v", s, m)
				}
			}
		})
	}
	wg.Go(func() {
		for i := range 50 {
			m := []string{"legacy", "shadow", "primary", "realtime"}[i%4]
			p.UpdateFlags(map[string]memprovider.InMemoryFlag{vr: modeFlagDef(m)})
		}
	})
	wg.Wait()
	waitIdle(t, f.ev)
	for k := range f.fallbacks(t) {
		if !strings.HasSuffix(k, "/timeout") {
			t.Errorf("fallback %s; only timeouts may happen here", k)
		}
	}
}

func TestReasonNames(t *testing.T) {
	seen := map[string]bool{}
	for r := reason(0); r < numReasons; r++ {
		n := r.String()
		if n == "" || seen[n] || strings.ContainsAny(n, " -.") {
			t.Errorf("reason %d has name %q", r, n)
		}
		seen[n] = true
	}
}
