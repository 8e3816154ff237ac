package tokens_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/coursebuilder/realtime-go/realtime"
	"github.com/coursebuilder/realtime-go/tokens"
)

// clock is a settable clock for TokenSource.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// counter is a FetchFunc that mints numbered tokens living for life on
// clock c.
type counter struct {
	c    *clock
	life time.Duration
	n    atomic.Int32
}

func (f *counter) fetch(context.Context) (realtime.Token, error) {
	n := f.n.Add(1)
	return realtime.Token{JWT: fmt.Sprintf("jwt-%d", n), Channel: "vid_1", Topics: []string{"video.asset.ready"}, Expires: f.c.Now().Add(f.life)}, nil
}

func mustToken(t *testing.T, s *tokens.TokenSource) string {
	t.Helper()
	tok, err := s.Token(context.Background())
	require.NoError(t, err)
	return tok.JWT
}

func TestTokenSourceRefreshesBeforeExpiry(t *testing.T) {
	c := newClock()
	f := &counter{c: c, life: time.Minute}
	s := tokens.NewTokenSource(f.fetch, &tokens.SourceOptions{Now: c.Now})
	defer s.Close()

	assert.Equal(t, "jwt-1", mustToken(t, s))
	c.Advance(49 * time.Second)
	assert.Equal(t, "jwt-1", mustToken(t, s), "11s left: kept")
	c.Advance(time.Second)
	assert.Equal(t, "jwt-2", mustToken(t, s), "10s left (the default margin): renewed")
	assert.Equal(t, "jwt-2", mustToken(t, s))
	assert.EqualValues(t, 2, f.n.Load())
}

func TestTokenSourceMargin(t *testing.T) {
	c := newClock()
	f := &counter{c: c, life: time.Minute}
	s := tokens.NewTokenSource(f.fetch, &tokens.SourceOptions{Now: c.Now, Margin: 30 * time.Second})
	defer s.Close()

	assert.Equal(t, "jwt-1", mustToken(t, s))
	c.Advance(29 * time.Second)
	assert.Equal(t, "jwt-1", mustToken(t, s))
	c.Advance(time.Second)
	assert.Equal(t, "jwt-2", mustToken(t, s))
}

func TestTokenSourceShortLivedTokensAreRenewedHalfWay(t *testing.T) {
	c := newClock()
	f := &counter{c: c, life: 8 * time.Second} // shorter than the 10s margin
	s := tokens.NewTokenSource(f.fetch, &tokens.SourceOptions{Now: c.Now})
	defer s.Close()

	assert.Equal(t, "jwt-1", mustToken(t, s))
	c.Advance(3 * time.Second)
	assert.Equal(t, "jwt-1", mustToken(t, s), "kept, not fetched on every call")
	c.Advance(time.Second)
	assert.Equal(t, "jwt-2", mustToken(t, s))
}

func TestTokenSourceDoesNotKeepTokensItCannotDate(t *testing.T) {
	c := newClock()
	var n atomic.Int32
	expired := tokens.NewTokenSource(func(context.Context) (realtime.Token, error) {
		n.Add(1)
		return realtime.Token{JWT: "old", Expires: c.Now().Add(-time.Second)}, nil
	}, &tokens.SourceOptions{Now: c.Now})
	defer expired.Close()
	assert.Equal(t, "old", mustToken(t, expired), "handed out: Inngest decides")
	assert.Equal(t, "old", mustToken(t, expired))
	assert.EqualValues(t, 2, n.Load(), "but not kept")

	undated := tokens.NewTokenSource(func(context.Context) (realtime.Token, error) {
		n.Add(1)
		return realtime.Token{JWT: "undated"}, nil
	}, nil)
	defer undated.Close()
	mustToken(t, undated)
	mustToken(t, undated)
	assert.EqualValues(t, 4, n.Load())
}

func TestTokenSourceSingleFlight(t *testing.T) {
	c := newClock()
	release := make(chan struct{})
	started := make(chan struct{}, 100)
	var fetches atomic.Int32
	s := tokens.NewTokenSource(func(ctx context.Context) (realtime.Token, error) {
		n := fetches.Add(1)
		started <- struct{}{}
		<-release
		return realtime.Token{JWT: fmt.Sprintf("jwt-%d", n), Expires: c.Now().Add(time.Minute)}, nil
	}, &tokens.SourceOptions{Now: c.Now})
	defer s.Close()

	const callers = 50
	var wg sync.WaitGroup
	got := make([]string, callers)
	errs := make([]error, callers)
	var ready sync.WaitGroup
	ready.Add(callers)
	for i := range callers {
		wg.Go(func() {
			ready.Done()
			tok, err := s.Token(context.Background())
			got[i], errs[i] = tok.JWT, err
		})
	}
	ready.Wait()
	<-started
	close(release)
	wg.Wait()

	assert.EqualValues(t, 1, fetches.Load(), "one fetch for %d concurrent callers", callers)
	for i := range callers {
		assert.NoError(t, errs[i])
		assert.Equal(t, "jwt-1", got[i])
	}
}

func TestTokenSourceErrorsReachEveryWaiter(t *testing.T) {
	release := make(chan struct{})
	var fetches atomic.Int32
	var healthy atomic.Bool
	boom := realtime.NewStatusError("inngest", 503, "", 0)
	s := tokens.NewTokenSource(func(ctx context.Context) (realtime.Token, error) {
		if healthy.Load() {
			return realtime.Token{JWT: "good", Expires: time.Now().Add(time.Minute)}, nil
		}
		if fetches.Add(1) == 1 {
			<-release // the callers pile up on this one
		}
		return realtime.Token{}, boom
	}, nil)
	defer s.Close()

	const callers = 50
	var wg sync.WaitGroup
	errs := make([]error, callers)
	for i := range callers {
		wg.Go(func() { _, errs[i] = s.Token(context.Background()) })
	}
	for fetches.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond) // let most callers join the flight
	close(release)
	wg.Wait()

	for _, err := range errs {
		require.ErrorIs(t, err, realtime.ErrUnavailable)
		var pe *realtime.PublishError
		assert.ErrorAs(t, err, &pe)
		assert.ErrorContains(t, err, "tokens: fetch token: ")
	}
	// Callers that came after the first fetch had failed started fetches
	// of their own (TestTokenSourceSingleFlight counts fetches).
	t.Logf("%d fetches for %d callers", fetches.Load(), callers)

	// The failure is not remembered.
	healthy.Store(true)
	tok, err := s.Token(context.Background())
	require.NoError(t, err)
	assert.Equal(t, "good", tok.JWT)
}

func TestTokenSourceCallerThatGivesUpDoesNotCancelTheFetch(t *testing.T) {
	release := make(chan struct{})
	var fetchErr atomic.Value
	s := tokens.NewTokenSource(func(ctx context.Context) (realtime.Token, error) {
		<-release
		if err := ctx.Err(); err != nil {
			fetchErr.Store(err)
		}
		return realtime.Token{JWT: "jwt", Expires: time.Now().Add(time.Minute)}, nil
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
	c := newClock()
	f := &counter{c: c, life: time.Minute}
	s := tokens.NewTokenSource(f.fetch, &tokens.SourceOptions{Now: c.Now})
	defer s.Close()

	first, err := s.Token(context.Background())
	require.NoError(t, err)
	s.Invalidate(realtime.Token{JWT: "some-other"})
	assert.Equal(t, "jwt-1", mustToken(t, s), "another token's refusal changes nothing")
	s.Invalidate(first)
	assert.Equal(t, "jwt-2", mustToken(t, s))
	s.Invalidate(first)
	assert.Equal(t, "jwt-2", mustToken(t, s), "a stale refusal does not discard the newer token")
}

func TestTokenSourceFetchFailures(t *testing.T) {
	for name, fetch := range map[string]tokens.FetchFunc{
		"panic": func(context.Context) (realtime.Token, error) { panic("boom") },
		"empty": func(context.Context) (realtime.Token, error) {
			return realtime.Token{Expires: time.Now().Add(time.Minute)}, nil
		},
	} {
		t.Run(name, func(t *testing.T) {
			s := tokens.NewTokenSource(fetch, nil)
			defer s.Close()
			_, err := s.Token(context.Background())
			assert.ErrorContains(t, err, "tokens: fetch token: ")
		})
	}
}

func TestTokenSourceTimeout(t *testing.T) {
	s := tokens.NewTokenSource(func(ctx context.Context) (realtime.Token, error) {
		<-ctx.Done()
		return realtime.Token{}, ctx.Err()
	}, &tokens.SourceOptions{Timeout: 10 * time.Millisecond})
	defer s.Close()
	_, err := s.Token(context.Background())
	assert.ErrorIs(t, err, context.DeadlineExceeded)
}

func TestTokenSourceClose(t *testing.T) {
	started := make(chan struct{})
	s := tokens.NewTokenSource(func(ctx context.Context) (realtime.Token, error) {
		close(started)
		<-ctx.Done()
		return realtime.Token{}, ctx.Err()
	}, nil)
	errc := make(chan error, 1)
	go func() { _, err := s.Token(context.Background()); errc <- err }()
	<-started
	require.NoError(t, s.Close())
	err := <-errc
	assert.ErrorIs(t, err, tokens.ErrClosed)
	assert.ErrorIs(t, err, context.Canceled)

	_, err = s.Token(context.Background())
	assert.ErrorIs(t, err, tokens.ErrClosed)
	require.NoError(t, s.Close(), "twice")
}

func TestMint(t *testing.T) {
	m := &fakeMinter{}
	names := []string{"video.asset.ready", "video.asset.errored"}
	fetch := tokens.Mint(m, "vid_1", names...)
	names[0] = "changed"
	tok, err := fetch(context.Background())
	require.NoError(t, err)
	assert.Equal(t, "app:vid_1", tok.Channel)
	assert.Equal(t, []mintCall{{"vid_1", []string{"video.asset.ready", "video.asset.errored"}}}, m.Calls())

	m.err = errors.New("down")
	_, err = fetch(context.Background())
	assert.EqualError(t, err, "down")
}
