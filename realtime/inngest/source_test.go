package inngest_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/coursebuilder/realtime-go/internal/transport"
	"github.com/coursebuilder/realtime-go/realtime"
	"github.com/coursebuilder/realtime-go/realtime/inngest"
)

// counter is a TokenFunc that mints numbered tokens living for life. Run
// in a synctest bubble, its clock is the bubble's.
type counter struct {
	life time.Duration
	n    atomic.Int32
}

func (f *counter) fetch(context.Context) (inngest.Token, error) {
	n := f.n.Add(1)
	return inngest.Token{JWT: fmt.Sprintf("jwt-%d", n), Channel: "vid_1", Topics: []string{"video.asset.ready"}, Expires: time.Now().Add(f.life)}, nil
}

func mustToken(t *testing.T, s *inngest.TokenSource) string {
	t.Helper()
	tok, err := s.Token(context.Background())
	require.NoError(t, err)
	return tok.JWT
}

// The tests of the refresh schedule run on synctest's clock: time.Sleep
// moves it, to the nanosecond, with no wall-clock time passing.

func TestTokenSourceRefreshesBeforeExpiry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &counter{life: time.Minute}
		s := inngest.NewTokenSource(f.fetch, nil)
		defer s.Close()

		assert.Equal(t, "jwt-1", mustToken(t, s))
		time.Sleep(50*time.Second - time.Nanosecond)
		assert.Equal(t, "jwt-1", mustToken(t, s), "just over 10s left: kept")
		time.Sleep(time.Nanosecond)
		assert.Equal(t, "jwt-2", mustToken(t, s), "10s left (the default margin): renewed")
		assert.Equal(t, "jwt-2", mustToken(t, s))
		assert.EqualValues(t, 2, f.n.Load())
	})
}

func TestTokenSourceMargin(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &counter{life: time.Minute}
		s := inngest.NewTokenSource(f.fetch, &inngest.TokenSourceOptions{Margin: 30 * time.Second})
		defer s.Close()

		assert.Equal(t, "jwt-1", mustToken(t, s))
		time.Sleep(30*time.Second - time.Nanosecond)
		assert.Equal(t, "jwt-1", mustToken(t, s))
		time.Sleep(time.Nanosecond)
		assert.Equal(t, "jwt-2", mustToken(t, s))
	})
}

func TestTokenSourceShortLivedTokensAreRenewedHalfWay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &counter{life: 8 * time.Second} // shorter than the 10s margin
		s := inngest.NewTokenSource(f.fetch, nil)
		defer s.Close()

		assert.Equal(t, "jwt-1", mustToken(t, s))
		time.Sleep(4*time.Second - time.Nanosecond)
		assert.Equal(t, "jwt-1", mustToken(t, s), "kept, not fetched on every call")
		time.Sleep(time.Nanosecond)
		assert.Equal(t, "jwt-2", mustToken(t, s), "renewed half way through its life")
	})
}

func TestTokenSourceDoesNotKeepTokensItCannotDate(t *testing.T) {
	var n atomic.Int32
	expired := inngest.NewTokenSource(func(context.Context) (inngest.Token, error) {
		n.Add(1)
		return inngest.Token{JWT: "old", Expires: time.Now().Add(-time.Second)}, nil
	}, nil)
	defer expired.Close()
	assert.Equal(t, "old", mustToken(t, expired), "handed out: Inngest decides")
	assert.Equal(t, "old", mustToken(t, expired))
	assert.EqualValues(t, 2, n.Load(), "but not kept")

	undated := inngest.NewTokenSource(func(context.Context) (inngest.Token, error) {
		n.Add(1)
		return inngest.Token{JWT: "undated"}, nil
	}, nil)
	defer undated.Close()
	mustToken(t, undated)
	mustToken(t, undated)
	assert.EqualValues(t, 4, n.Load())
}

// TestTokenSourceSingleFlight: callers that arrive while a fetch is in
// flight wait for it; synctest.Wait returns once every one of them is
// blocked, so all of them are known to have joined before it ends.
func TestTokenSourceSingleFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		var fetches atomic.Int32
		s := inngest.NewTokenSource(func(ctx context.Context) (inngest.Token, error) {
			n := fetches.Add(1)
			<-release
			return inngest.Token{JWT: fmt.Sprintf("jwt-%d", n), Expires: time.Now().Add(time.Minute)}, nil
		}, nil)
		defer s.Close()

		const callers = 50
		var wg sync.WaitGroup
		got := make([]string, callers)
		errs := make([]error, callers)
		for i := range callers {
			wg.Go(func() {
				tok, err := s.Token(context.Background())
				got[i], errs[i] = tok.JWT, err
			})
		}
		synctest.Wait()
		close(release)
		wg.Wait()

		assert.EqualValues(t, 1, fetches.Load(), "one fetch for %d concurrent callers", callers)
		for i := range callers {
			assert.NoError(t, errs[i])
			assert.Equal(t, "jwt-1", got[i])
		}
	})
}

func TestTokenSourceErrorsReachEveryWaiter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		var fetches atomic.Int32
		var healthy atomic.Bool
		boom := transport.NewStatusError("inngest", 503, "", 0)
		s := inngest.NewTokenSource(func(ctx context.Context) (inngest.Token, error) {
			if healthy.Load() {
				return inngest.Token{JWT: "good", Expires: time.Now().Add(time.Minute)}, nil
			}
			fetches.Add(1)
			<-release // the callers pile up on this one
			return inngest.Token{}, boom
		}, nil)
		defer s.Close()

		const callers = 50
		var wg sync.WaitGroup
		errs := make([]error, callers)
		for i := range callers {
			wg.Go(func() { _, errs[i] = s.Token(context.Background()) })
		}
		synctest.Wait() // every caller waits for the one fetch
		close(release)
		wg.Wait()

		assert.EqualValues(t, 1, fetches.Load(), "one failed fetch for %d callers", callers)
		for _, err := range errs {
			require.ErrorIs(t, err, realtime.ErrUnavailable)
			var pe *realtime.PublishError
			assert.ErrorAs(t, err, &pe)
			assert.ErrorContains(t, err, "tokens: fetch token: ")
		}

		// The failure is not remembered.
		healthy.Store(true)
		tok, err := s.Token(context.Background())
		require.NoError(t, err)
		assert.Equal(t, "good", tok.JWT)
	})
}

func TestTokenSourceCallerThatGivesUpDoesNotCancelTheFetch(t *testing.T) {
	release := make(chan struct{})
	var fetchErr atomic.Value
	s := inngest.NewTokenSource(func(ctx context.Context) (inngest.Token, error) {
		<-release
		if err := ctx.Err(); err != nil {
			fetchErr.Store(err)
		}
		return inngest.Token{JWT: "jwt", Expires: time.Now().Add(time.Minute)}, nil
	}, nil)
	defer s.Close()

	ctx, cancel := context.WithCancel(context.Background())
	first := make(chan error, 1)
	go func() { _, err := s.Token(ctx); first <- err }()
	second := make(chan string, 1)
	go func() { tok, _ := s.Token(context.Background()); second <- tok.JWT }()

	cancel()
	assert.ErrorIs(t, <-first, context.Canceled, "the caller that gave up returns at once")
	close(release)
	assert.Equal(t, "jwt", <-second)
	assert.Nil(t, fetchErr.Load(), "the fetch was not canceled")
}

func TestTokenSourceInvalidate(t *testing.T) {
	f := &counter{life: time.Hour}
	s := inngest.NewTokenSource(f.fetch, nil)
	defer s.Close()

	first, err := s.Token(context.Background())
	require.NoError(t, err)
	s.Invalidate(inngest.Token{JWT: "some-other"})
	assert.Equal(t, "jwt-1", mustToken(t, s), "another token's refusal changes nothing")
	s.Invalidate(first)
	assert.Equal(t, "jwt-2", mustToken(t, s))
	s.Invalidate(first)
	assert.Equal(t, "jwt-2", mustToken(t, s), "a stale refusal does not discard the newer token")
}

func TestTokenSourceFetchFailures(t *testing.T) {
	for name, fetch := range map[string]inngest.TokenFunc{
		"panic": func(context.Context) (inngest.Token, error) { panic("boom") },
		"empty": func(context.Context) (inngest.Token, error) {
			return inngest.Token{Expires: time.Now().Add(time.Minute)}, nil
		},
	} {
		t.Run(name, func(t *testing.T) {
			s := inngest.NewTokenSource(fetch, nil)
			defer s.Close()
			_, err := s.Token(context.Background())
			assert.ErrorContains(t, err, "tokens: fetch token: ")
		})
	}
}

// TestTokenSourceTimeout: a fetch that does not return is canceled after
// TokenSourceOptions.Timeout, 30s by default (synctest's clock).
func TestTokenSourceTimeout(t *testing.T) {
	for name, c := range map[string]struct {
		opts *inngest.TokenSourceOptions
		want time.Duration
	}{
		"set":     {&inngest.TokenSourceOptions{Timeout: 10 * time.Millisecond}, 10 * time.Millisecond},
		"default": {nil, 30 * time.Second},
	} {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := inngest.NewTokenSource(func(ctx context.Context) (inngest.Token, error) {
					<-ctx.Done()
					return inngest.Token{}, ctx.Err()
				}, c.opts)
				defer s.Close()
				start := time.Now()
				_, err := s.Token(context.Background())
				assert.ErrorIs(t, err, context.DeadlineExceeded)
				assert.Equal(t, c.want, time.Since(start), "on the bubble's clock")
			})
		})
	}
}

func TestTokenSourceClose(t *testing.T) {
	started := make(chan struct{})
	s := inngest.NewTokenSource(func(ctx context.Context) (inngest.Token, error) {
		close(started)
		<-ctx.Done()
		return inngest.Token{}, ctx.Err()
	}, nil)
	errc := make(chan error, 1)
	go func() { _, err := s.Token(context.Background()); errc <- err }()
	<-started
	require.NoError(t, s.Close())
	err := <-errc
	assert.ErrorIs(t, err, inngest.ErrClosed)
	assert.ErrorIs(t, err, context.Canceled)

	_, err = s.Token(context.Background())
	assert.ErrorIs(t, err, inngest.ErrClosed)
	require.NoError(t, s.Close(), "twice")
}

func TestMint(t *testing.T) {
	m := &fakeMinter{}
	names := []string{"video.asset.ready", "video.asset.errored"}
	fetch := inngest.Mint(m, "vid_1", names...)
	names[0] = "changed"
	tok, err := fetch(context.Background())
	require.NoError(t, err)
	assert.Equal(t, "app:vid_1", tok.Channel)
	assert.Equal(t, []mintCall{{"vid_1", []string{"video.asset.ready", "video.asset.errored"}}}, m.Calls())

	m.err = errors.New("down")
	_, err = fetch(context.Background())
	assert.EqualError(t, err, "down")
}

// fakeMinter records its calls and answers with a token or err.
type fakeMinter struct {
	mu    sync.Mutex
	calls []mintCall
	err   error
}

type mintCall struct {
	room  string
	names []string
}

func (m *fakeMinter) SubscriptionToken(_ context.Context, room string, names []string) (inngest.Token, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls = append(m.calls, mintCall{room, slices.Clone(names)})
	if m.err != nil {
		return inngest.Token{}, m.err
	}
	return inngest.Token{JWT: "eyJ.fake.jwt", Channel: "app:" + room, Topics: slices.Clone(names),
		Expires: time.Date(2026, 1, 1, 0, 1, 0, 0, time.UTC)}, nil
}

func (m *fakeMinter) Calls() []mintCall {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.calls)
}
