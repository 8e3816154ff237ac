package flags

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/open-feature/go-sdk/openfeature"
	"github.com/open-feature/go-sdk/openfeature/memprovider"
)

// countingMem is an in-memory provider (with its configuration-change
// events) that counts the evaluations it serves.
type countingMem struct {
	*memprovider.InMemoryProvider
	n atomic.Int64
}

func (p *countingMem) BooleanEvaluation(ctx context.Context, flag string, def bool, flat openfeature.FlattenedContext) openfeature.BoolResolutionDetail {
	p.n.Add(1)
	return p.InMemoryProvider.BooleanEvaluation(ctx, flag, def, flat)
}

func (p *countingMem) StringEvaluation(ctx context.Context, flag string, def string, flat openfeature.FlattenedContext) openfeature.StringResolutionDetail {
	p.n.Add(1)
	return p.InMemoryProvider.StringEvaluation(ctx, flag, def, flat)
}

func newCountingMem(mode string) *countingMem {
	return &countingMem{InMemoryProvider: memprovider.NewInMemoryProvider(map[string]memprovider.InMemoryFlag{
		ScopeVideoReady.ModeKey(): modeFlagDef(mode),
	})}
}

// TestCachedModeSkipsProvider: within CacheTTL and without a provider
// event, a second publish to the same room reuses the resolved mode instead
// of evaluating the two flags again; another room is resolved on its own.
func TestCachedModeSkipsProvider(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newCountingMem("shadow")
		f := newFixture(t, newClient(t, p), Options{})
		synctest.Wait() // the SDK's ready event, if still in flight, is delivered
		ctx := context.Background()
		for range 3 {
			if got := f.ev.Mode(ctx, ScopeVideoReady, room); got != Shadow {
				t.Fatalf("Mode = %v, want shadow", got)
			}
		}
		if n := p.n.Load(); n != 2 {
			t.Errorf("provider evaluated %d flags for three calls, want 2 (kill switch and scope flag, once)", n)
		}
		f.ev.Mode(ctx, ScopeVideoReady, "another-room")
		if n := p.n.Load(); n != 4 {
			t.Errorf("provider evaluated %d flags, want 4 after a second room", n)
		}
	})
}

// TestCacheDroppedOnConfigChangeEvent: the provider's configuration-change
// event drops the cache, so the next call sees the new value well within
// CacheTTL. synctest.Wait only lets the SDK's goroutines deliver the event;
// the fake clock does not move.
func TestCacheDroppedOnConfigChangeEvent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newCountingMem("realtime")
		f := newFixture(t, newClient(t, p), Options{CacheTTL: time.Hour})
		synctest.Wait()
		ctx := context.Background()
		start := time.Now()
		if got := f.ev.Mode(ctx, ScopeVideoReady, room); got != Realtime {
			t.Fatalf("Mode = %v, want realtime", got)
		}
		p.UpdateFlags(map[string]memprovider.InMemoryFlag{ScopeVideoReady.ModeKey(): modeFlagDef("legacy")})
		synctest.Wait()
		if got := f.ev.Mode(ctx, ScopeVideoReady, room); got != Legacy {
			t.Errorf("after the change event: Mode = %v, want legacy (flipping off reverts to PartyKit on the next publish)", got)
		}
		if d := time.Since(start); d != 0 {
			t.Errorf("fake clock moved %v", d)
		}
	})
}

// eventStub is a stub provider whose events the test sends.
type eventStub struct {
	stubProvider
	events chan openfeature.Event
}

func (p *eventStub) EventChannel() <-chan openfeature.Event { return p.events }

// TestCacheDroppedOnProviderEvents: ready, error and stale events drop the
// cache as a configuration change does.
func TestCacheDroppedOnProviderEvents(t *testing.T) {
	for _, et := range []openfeature.EventType{openfeature.ProviderConfigChange, openfeature.ProviderReady, openfeature.ProviderError, openfeature.ProviderStale} {
		t.Run(string(et), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var mode atomic.Value
				mode.Store("primary")
				p := &eventStub{events: make(chan openfeature.Event, 1)}
				p.stringFn = func(_ context.Context, flag string, _ openfeature.FlattenedContext) openfeature.StringResolutionDetail {
					if flag != ScopeVideoReady.ModeKey() {
						return stringErr(openfeature.NewFlagNotFoundResolutionError(flag))
					}
					return stringValue(mode.Load().(string))
				}
				f := newFixture(t, newClient(t, p), Options{CacheTTL: time.Hour})
				synctest.Wait()
				ctx := context.Background()
				if got := f.ev.Mode(ctx, ScopeVideoReady, room); got != Primary {
					t.Fatalf("Mode = %v, want primary", got)
				}
				mode.Store("shadow")
				if got := f.ev.Mode(ctx, ScopeVideoReady, room); got != Primary {
					t.Fatalf("cached: Mode = %v, want primary", got)
				}
				p.events <- openfeature.Event{ProviderName: "stub", EventType: et}
				synctest.Wait()
				if got := f.ev.Mode(ctx, ScopeVideoReady, room); got != Shadow {
					t.Errorf("after %s: Mode = %v, want shadow", et, got)
				}
			})
		})
	}
}

// TestCacheExpiresAfterTTL: with a provider that emits no events, a
// changed flag applies once the cached mode is CacheTTL old, not before.
func TestCacheExpiresAfterTTL(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mode atomic.Value
		mode.Store("realtime")
		p := &stubProvider{stringFn: func(_ context.Context, flag string, _ openfeature.FlattenedContext) openfeature.StringResolutionDetail {
			if flag != ScopeAIStream.ModeKey() {
				return stringErr(openfeature.NewFlagNotFoundResolutionError(flag))
			}
			return stringValue(mode.Load().(string))
		}}
		const ttl = 300 * time.Millisecond
		f := newFixture(t, newClient(t, p), Options{CacheTTL: ttl})
		synctest.Wait()
		ctx := context.Background()
		if got := f.ev.Mode(ctx, ScopeAIStream, room); got != Realtime {
			t.Fatalf("Mode = %v, want realtime", got)
		}
		mode.Store("legacy")
		time.Sleep(ttl - time.Nanosecond)
		if got := f.ev.Mode(ctx, ScopeAIStream, room); got != Realtime {
			t.Errorf("just before the TTL: Mode = %v, want realtime (cached)", got)
		}
		time.Sleep(time.Nanosecond)
		if got := f.ev.Mode(ctx, ScopeAIStream, room); got != Legacy {
			t.Errorf("at the TTL: Mode = %v, want legacy", got)
		}
	})
}

// TestCloseStopsCaching: after Close the Evaluator unsubscribes and asks
// the provider on every call; Close is idempotent.
func TestCloseStopsCaching(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newCountingMem("shadow")
		f := newFixture(t, newClient(t, p), Options{})
		synctest.Wait()
		for range 2 {
			if err := f.ev.Close(); err != nil {
				t.Fatalf("Close = %v", err)
			}
		}
		ctx := context.Background()
		for range 2 {
			if got := f.ev.Mode(ctx, ScopeVideoReady, room); got != Shadow {
				t.Fatalf("Mode = %v, want shadow", got)
			}
		}
		if n := p.n.Load(); n != 4 {
			t.Errorf("provider evaluated %d flags for two calls after Close, want 4", n)
		}
	})
}

// TestOtherScopesBounded: scopes outside Scopes get state of their own up
// to a bound, past which they are still answered correctly.
func TestOtherScopesBounded(t *testing.T) {
	p := memprovider.NewInMemoryProvider(map[string]memprovider.InMemoryFlag{ScopeDefault.ModeKey(): modeFlagDef("shadow")})
	f := newFixture(t, newClient(t, p), Options{})
	for i := range 2 * maxOtherScopes {
		if got := f.ev.Mode(context.Background(), Scope("quiz-"+strconv.Itoa(i)), room); got != Shadow {
			t.Fatalf("scope %d: Mode = %v, want shadow", i, got)
		}
	}
	f.ev.others.mu.RLock()
	n := len(f.ev.others.m)
	f.ev.others.mu.RUnlock()
	if n != maxOtherScopes {
		t.Errorf("%d other scopes held, want %d", n, maxOtherScopes)
	}
	f.wantFallbacks(t, map[string]int64{})
}
