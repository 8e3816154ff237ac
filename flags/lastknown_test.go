package flags

import (
	"context"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/open-feature/go-sdk/openfeature"
)

// failure is how a switchableProvider fails.
type failure int32

const (
	healthy failure = iota
	failError
	failHang
	failPanic
	failInvalid
)

// switchable is a provider serving mode for the video-ready flag (and
// nothing else) until told to fail.
type switchable struct {
	stubProvider
	mode    atomic.Value // string
	fail    atomic.Int32
	hang    *blocker
	entered chan struct{}
}

func newSwitchable(t testing.TB, mode string) *switchable {
	p := &switchable{hang: newBlocker(t), entered: make(chan struct{}, 64)}
	p.mode.Store(mode)
	vr := ScopeVideoReady.ModeKey()
	p.boolFn = func(context.Context, string, openfeature.FlattenedContext) openfeature.BoolResolutionDetail {
		if failure(p.fail.Load()) == failHang {
			p.entered <- struct{}{}
			<-p.hang.ch // ignores its context on purpose
		}
		return openfeature.BoolResolutionDetail{Value: false}
	}
	p.stringFn = func(_ context.Context, flag string, _ openfeature.FlattenedContext) openfeature.StringResolutionDetail {
		switch failure(p.fail.Load()) {
		case failError:
			return stringErr(openfeature.NewGeneralResolutionError("flag service unreachable"))
		case failPanic:
			panic("provider bug")
		case failInvalid:
			return stringValue("turbo")
		}
		if flag != vr {
			return stringErr(openfeature.NewFlagNotFoundResolutionError(flag))
		}
		return stringValue(p.mode.Load().(string))
	}
	return p
}

// TestLastKnownModeSurvivesFailingProvider: once a scope is in primary or
// realtime mode — browsers read Inngest — a provider that errors, hangs,
// panics or answers garbage must not turn its publishes into legacy ones,
// which only PartyKit would receive. Every such call answers the last
// known mode (for the room, else for the scope) and is counted as a
// "last_known" fallback. The hanging case does not race a timer: the
// provider blocks until the test ends, so the deadline is the only way out.
func TestLastKnownModeSurvivesFailingProvider(t *testing.T) {
	cases := []struct {
		fail    failure
		reasons []string // of the three failing calls
	}{
		{failError, []string{"provider_error", "provider_error", "provider_error"}},
		{failHang, []string{"timeout", "timeout", "timeout"}},
		{failPanic, []string{"panic", "panic", "panic"}},
		{failInvalid, []string{"invalid_mode", "invalid_mode", "invalid_mode"}},
	}
	for _, mode := range []Mode{Primary, Realtime} {
		for _, tc := range cases {
			t.Run(mode.String()+"/"+tc.reasons[0], func(t *testing.T) {
				p := newSwitchable(t, mode.String())
				o := Options{CacheTTL: -1} // every call asks the provider
				if tc.fail == failHang {
					o.Timeout = 10 * time.Millisecond
				}
				f := newFixture(t, newClient(t, p), o)
				ctx := context.Background()
				if got := f.ev.Mode(ctx, ScopeVideoReady, room); got != mode {
					t.Fatalf("healthy: Mode = %v, want %v", got, mode)
				}
				p.fail.Store(int32(tc.fail))
				for i, r := range []string{room, "room-never-seen", room} {
					got := f.ev.Mode(ctx, ScopeVideoReady, r)
					if got != mode || !got.RealtimeCounts() {
						t.Errorf("failing call %d (%s): Mode = %v, want %v: browsers read Inngest", i, r, got, mode)
					}
				}
				if tc.fail == failHang {
					<-p.entered
					p.hang.Release()
					waitIdle(t, f.ev)
				}
				want := map[string]int64{}
				for _, r := range tc.reasons {
					want["video-ready/"+r+"/"+answerLastKnown]++
				}
				f.wantAnswers(t, want)
			})
		}
	}
}

// TestDefaultOnlyBeforeAnythingIsKnown: Legacy is the answer to a failure
// only while nothing has been resolved for the scope; afterwards the last
// known mode is, and one scope's mode never answers for another.
func TestDefaultOnlyBeforeAnythingIsKnown(t *testing.T) {
	p := newSwitchable(t, "realtime")
	p.fail.Store(int32(failError))
	f := newFixture(t, newClient(t, p), Options{CacheTTL: -1, LogInterval: -1})
	ctx := context.Background()
	if got := f.ev.Mode(ctx, ScopeVideoReady, room); got != Legacy {
		t.Errorf("nothing known yet: Mode = %v, want legacy", got)
	}
	p.fail.Store(int32(healthy))
	if got := f.ev.Mode(ctx, ScopeVideoReady, room); got != Realtime {
		t.Errorf("healthy: Mode = %v, want realtime", got)
	}
	p.fail.Store(int32(failError))
	if got := f.ev.Mode(ctx, ScopeVideoReady, room); got != Realtime {
		t.Errorf("known: Mode = %v, want realtime", got)
	}
	if got := f.ev.Mode(ctx, ScopeTranscript, room); got != Legacy {
		t.Errorf("another scope, nothing known: Mode = %v, want legacy", got)
	}
	f.wantAnswers(t, map[string]int64{
		"video-ready/provider_error/" + answerDefault:   1,
		"video-ready/provider_error/" + answerLastKnown: 1,
		"transcript/provider_error/" + answerDefault:    1,
	})
	entries := f.logs.All()
	if len(entries) != 3 {
		t.Fatalf("logged %d, want 3", len(entries))
	}
	for i, want := range []struct{ answer, mode string }{{answerDefault, "legacy"}, {answerLastKnown, "realtime"}, {answerDefault, "legacy"}} {
		m := entries[i].ContextMap()
		if m["answer"] != want.answer || m["mode"] != want.mode {
			t.Errorf("log %d: answer=%v mode=%v, want %s %s", i, m["answer"], m["mode"], want.answer, want.mode)
		}
	}
}

// TestLastKnownAfterCacheExpiry: a cached mode that has expired still
// answers a failing evaluation (synctest's clock).
func TestLastKnownAfterCacheExpiry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newSwitchable(t, "primary")
		f := newFixture(t, newClient(t, p), Options{CacheTTL: time.Second})
		synctest.Wait() // let the SDK deliver the provider's ready event
		ctx := context.Background()
		if got := f.ev.Mode(ctx, ScopeVideoReady, room); got != Primary {
			t.Fatalf("Mode = %v, want primary", got)
		}
		p.fail.Store(int32(failError))
		if got := f.ev.Mode(ctx, ScopeVideoReady, room); got != Primary {
			t.Errorf("cached: Mode = %v, want primary", got)
		}
		f.wantFallbacks(t, map[string]int64{}) // the provider was not asked
		time.Sleep(time.Second)
		if got := f.ev.Mode(ctx, ScopeVideoReady, room); got != Primary {
			t.Errorf("expired, failing: Mode = %v, want primary", got)
		}
		f.wantAnswers(t, map[string]int64{"video-ready/provider_error/" + answerLastKnown: 1})
	})
}

// TestLateAnswerBecomesLastKnown: an evaluation that outlives its call
// still records its result, so the next failure answers it. The call is
// ended by canceling its context once the provider is known to hang, not
// by a timer.
func TestLateAnswerBecomesLastKnown(t *testing.T) {
	p := newSwitchable(t, "realtime")
	p.fail.Store(int32(failHang))
	f := newFixture(t, newClient(t, p), Options{CacheTTL: -1})
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan Mode, 1)
	go func() { got <- f.ev.Mode(ctx, ScopeVideoReady, room) }()
	<-p.entered
	cancel()
	if m := <-got; m != Legacy {
		t.Errorf("hung, nothing known: Mode = %v, want legacy", m)
	}
	p.fail.Store(int32(healthy))
	p.hang.Release() // the hung evaluation now resolves realtime
	waitIdle(t, f.ev)
	p.fail.Store(int32(failError))
	if m := f.ev.Mode(context.Background(), ScopeVideoReady, room); m != Realtime {
		t.Errorf("after the late answer: Mode = %v, want realtime", m)
	}
	f.wantAnswers(t, map[string]int64{
		"video-ready/canceled/" + answerDefault:         1,
		"video-ready/provider_error/" + answerLastKnown: 1,
	})
}
