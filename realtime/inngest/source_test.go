package inngest

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/coursebuilder/realtime-go/internal/transport"
	"github.com/coursebuilder/realtime-go/realtime"
)

// The subscriber's token cache decides when a reconnection mints a new
// token. Its schedule is tested on synctest's clock: time.Sleep moves it,
// to the nanosecond, with no wall-clock time passing.

// counter mints numbered tokens living for life. Run in a synctest
// bubble, its clock is the bubble's.
type counter struct {
	life time.Duration
	n    atomic.Int32
}

func (f *counter) fetch(context.Context) (Token, error) {
	n := f.n.Add(1)
	return Token{JWT: fmt.Sprintf("jwt-%d", n), Channel: "vid_1", Topics: []string{"video.asset.ready"}, Expires: time.Now().Add(f.life)}, nil
}

func mustGet(t *testing.T, c *tokenCache) string {
	t.Helper()
	tok, err := c.get(context.Background())
	require.NoError(t, err)
	return tok.JWT
}

func TestTokenCacheRefreshesBeforeExpiry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &counter{life: time.Minute}
		c := newTokenCache(f.fetch, 0, 0)

		assert.Equal(t, "jwt-1", mustGet(t, c))
		time.Sleep(50*time.Second - time.Nanosecond)
		assert.Equal(t, "jwt-1", mustGet(t, c), "just over 10s left: kept")
		time.Sleep(time.Nanosecond)
		assert.Equal(t, "jwt-2", mustGet(t, c), "10s left (the default margin): renewed")
		assert.Equal(t, "jwt-2", mustGet(t, c))
		assert.EqualValues(t, 2, f.n.Load())
	})
}

func TestTokenCacheMargin(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &counter{life: time.Minute}
		c := newTokenCache(f.fetch, 30*time.Second, 0)

		assert.Equal(t, "jwt-1", mustGet(t, c))
		time.Sleep(30*time.Second - time.Nanosecond)
		assert.Equal(t, "jwt-1", mustGet(t, c))
		time.Sleep(time.Nanosecond)
		assert.Equal(t, "jwt-2", mustGet(t, c))
	})
}

func TestTokenCacheRenewsShortLivedTokensHalfWay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &counter{life: 8 * time.Second} // shorter than the 10s margin
		c := newTokenCache(f.fetch, 0, 0)

		assert.Equal(t, "jwt-1", mustGet(t, c))
		time.Sleep(4*time.Second - time.Nanosecond)
		assert.Equal(t, "jwt-1", mustGet(t, c), "kept, not fetched on every call")
		time.Sleep(time.Nanosecond)
		assert.Equal(t, "jwt-2", mustGet(t, c), "renewed half way through its life")
	})
}

func TestTokenCacheDoesNotKeepTokensItCannotDate(t *testing.T) {
	var n atomic.Int32
	expired := newTokenCache(func(context.Context) (Token, error) {
		n.Add(1)
		return Token{JWT: "old", Expires: time.Now().Add(-time.Second)}, nil
	}, 0, 0)
	assert.Equal(t, "old", mustGet(t, expired), "handed out: Inngest decides")
	assert.Equal(t, "old", mustGet(t, expired))
	assert.EqualValues(t, 2, n.Load(), "but not kept")

	undated := newTokenCache(func(context.Context) (Token, error) {
		n.Add(1)
		return Token{JWT: "undated"}, nil
	}, 0, 0)
	mustGet(t, undated)
	mustGet(t, undated)
	assert.EqualValues(t, 4, n.Load())
}

func TestTokenCacheInvalidate(t *testing.T) {
	f := &counter{life: time.Hour}
	c := newTokenCache(f.fetch, 0, 0)

	first, err := c.get(context.Background())
	require.NoError(t, err)
	c.invalidate(Token{JWT: "some-other"})
	assert.Equal(t, "jwt-1", mustGet(t, c), "another token's refusal changes nothing")
	c.invalidate(first)
	assert.Equal(t, "jwt-2", mustGet(t, c))
	c.invalidate(first)
	assert.Equal(t, "jwt-2", mustGet(t, c), "a stale refusal does not discard the newer token")
}

// TestTokenCacheFetchFailures: a failure is wrapped (errors.Is and
// errors.As reach it), a panic and an empty token are errors, and none is
// remembered.
func TestTokenCacheFetchFailures(t *testing.T) {
	boom := transport.StatusError("inngest", 503, "", 0)
	for name, fetch := range map[string]func(context.Context) (Token, error){
		"error": func(context.Context) (Token, error) { return Token{}, boom },
		"panic": func(context.Context) (Token, error) { panic("boom") },
		"empty": func(context.Context) (Token, error) {
			return Token{Expires: time.Now().Add(time.Minute)}, nil
		},
	} {
		t.Run(name, func(t *testing.T) {
			healthy := false
			c := newTokenCache(func(ctx context.Context) (Token, error) {
				if healthy {
					return Token{JWT: "good", Expires: time.Now().Add(time.Minute)}, nil
				}
				return fetch(ctx)
			}, 0, 0)
			_, err := c.get(context.Background())
			assert.ErrorContains(t, err, "tokens: fetch token: ")
			if name == "error" {
				var pe *realtime.PublishError
				assert.ErrorAs(t, err, &pe)
				assert.ErrorIs(t, err, realtime.ErrUnavailable)
			}
			healthy = true
			assert.Equal(t, "good", mustGet(t, c), "the failure is not remembered")
		})
	}
}

// TestTokenCacheTimeout: a fetch that does not return is canceled after
// the timeout, 30s by default (synctest's clock), or when the caller's ctx
// ends.
func TestTokenCacheTimeout(t *testing.T) {
	hang := func(ctx context.Context) (Token, error) {
		<-ctx.Done()
		return Token{}, ctx.Err()
	}
	for name, c := range map[string]struct {
		timeout, want time.Duration
	}{
		"set":     {10 * time.Millisecond, 10 * time.Millisecond},
		"default": {0, 30 * time.Second},
	} {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				start := time.Now()
				_, err := newTokenCache(hang, 0, c.timeout).get(context.Background())
				assert.ErrorIs(t, err, context.DeadlineExceeded)
				assert.Equal(t, c.want, time.Since(start), "on the bubble's clock")
			})
		})
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := newTokenCache(hang, 0, 0).get(ctx)
	assert.ErrorIs(t, err, context.Canceled)
	assert.False(t, errors.Is(err, context.DeadlineExceeded))
}
