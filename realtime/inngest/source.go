package inngest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Defaults of [TokenSourceOptions].
const (
	defaultMargin       = 10 * time.Second
	defaultFetchTimeout = 30 * time.Second
)

// ErrClosed is returned by [TokenSource.Token] after Close, and by
// [Subscribe] when its TokenSource is closed.
var ErrClosed = errors.New("tokens: closed")

// TokenFunc obtains a new subscription token, typically by minting one
// (see [Mint]) or by asking an app's token endpoint.
type TokenFunc func(ctx context.Context) (Token, error)

// Mint returns a TokenFunc that mints tokens for room and names with m: a
// [*Provider], or any tokens.Minter.
func Mint(m interface {
	SubscriptionToken(ctx context.Context, room string, names []string) (Token, error)
}, room string, names ...string) TokenFunc {
	names = append([]string(nil), names...)
	return func(ctx context.Context) (Token, error) {
		return m.SubscriptionToken(ctx, room, names)
	}
}

// TokenSourceOptions configures [NewTokenSource]. A nil *TokenSourceOptions means
// every default.
type TokenSourceOptions struct {
	// Margin is how long before a token expires the source fetches a new
	// one, so that a token handed out has at least that long to be used.
	// When a token lives less than twice the margin, it is replaced half
	// way through its life instead. Defaults to 10s.
	Margin time.Duration
	// Timeout bounds one fetch. Defaults to 30s.
	Timeout time.Duration
}

// TokenSource hands out a subscription token, fetching a new one only when
// the one it holds is about to expire. Create one with [NewTokenSource].
//
// It is safe for concurrent use: however many goroutines ask at once, at
// most one fetch is in flight, and its token or its error is returned to
// every one of them. A fetch runs with the values of the context of the
// call that started it but not its cancellation (a caller that gives up
// returns ctx.Err() at once and does not cancel the others), bounded by
// TokenSourceOptions.Timeout and by Close. A failed fetch is not remembered: the
// next call tries again.
type TokenSource struct {
	fetch   TokenFunc
	margin  time.Duration
	timeout time.Duration

	ctx    context.Context // ends at Close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu        sync.Mutex
	tok       Token
	cached    bool
	refreshAt time.Time
	flight    *flight
	closed    bool
}

// flight is one fetch and the callers waiting for it. tok and err are
// written before done is closed and read only after.
type flight struct {
	done chan struct{}
	tok  Token
	err  error
}

// NewTokenSource returns a TokenSource that obtains its tokens from fetch.
func NewTokenSource(fetch TokenFunc, opts *TokenSourceOptions) *TokenSource {
	var o TokenSourceOptions
	if opts != nil {
		o = *opts
	}
	s := &TokenSource{fetch: fetch, margin: o.Margin, timeout: o.Timeout}
	if s.margin <= 0 {
		s.margin = defaultMargin
	}
	if s.timeout <= 0 {
		s.timeout = defaultFetchTimeout
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s
}

// Token returns the token the source holds if it is not within the margin
// of its expiry, and otherwise waits for a new one (fetching it unless a
// fetch is already in flight). It fails with the fetch's error, with
// ctx.Err() when ctx ends first, and with [ErrClosed] after Close.
//
// A token is returned to the callers of the fetch that obtained it even if
// it has already expired by the local clock (time.Now; the clocks of this
// machine and of Inngest may differ; Inngest decides), but it is not kept.
func (s *TokenSource) Token(ctx context.Context) (Token, error) {
	if err := ctx.Err(); err != nil {
		return Token{}, err
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return Token{}, ErrClosed
	}
	if s.cached && time.Now().Before(s.refreshAt) {
		tok := s.tok
		s.mu.Unlock()
		return tok, nil
	}
	f := s.flight
	if f == nil {
		f = &flight{done: make(chan struct{})}
		s.flight = f
		s.wg.Add(1)
		go s.run(ctx, f)
	}
	s.mu.Unlock()

	select {
	case <-f.done:
		return f.tok, f.err
	case <-ctx.Done():
		return Token{}, ctx.Err()
	}
}

// run performs one fetch for f.
func (s *TokenSource) run(caller context.Context, f *flight) {
	defer s.wg.Done()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(caller), s.timeout)
	defer cancel()
	stop := context.AfterFunc(s.ctx, cancel)
	defer stop()

	tok, err := s.call(ctx)
	fetched := time.Now()

	s.mu.Lock()
	s.flight = nil
	switch {
	case err != nil && s.closed:
		err = fmt.Errorf("%w: %w", ErrClosed, err)
	case err == nil && !s.closed && !tok.Expires.IsZero():
		s.tok, s.cached = tok, true
		s.refreshAt = tok.Expires.Add(-s.margin)
		if !s.refreshAt.After(fetched) {
			// A short-lived token (or a margin that is too large):
			// replace it half way through what is left of its life.
			s.refreshAt = fetched.Add(tok.Expires.Sub(fetched) / 2)
		}
	}
	s.mu.Unlock()

	f.tok, f.err = tok, err
	close(f.done)
}

// call runs fetch, turning a panic or an empty token into an error.
func (s *TokenSource) call(ctx context.Context) (tok Token, err error) {
	defer func() {
		if p := recover(); p != nil {
			tok, err = Token{}, fmt.Errorf("tokens: fetch token: panic: %v", p)
		}
	}()
	tok, err = s.fetch(ctx)
	switch {
	case err != nil:
		return Token{}, fmt.Errorf("tokens: fetch token: %w", err)
	case tok.JWT == "":
		return Token{}, errors.New("tokens: fetch token: empty token")
	}
	return tok, nil
}

// Invalidate forgets tok if it is the token the source holds, so that the
// next call to Token fetches a new one. Call it when Inngest refused tok
// (401 or 403 on connect). It does nothing for any other token, so a
// refusal of an old token does not discard a newer one.
func (s *TokenSource) Invalidate(tok Token) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cached && s.tok.JWT == tok.JWT {
		s.tok, s.cached = Token{}, false
	}
}

// Close cancels a fetch in flight, waits for it to end and makes every
// later call to Token fail with [ErrClosed]. It is safe to call more than
// once.
func (s *TokenSource) Close() error {
	s.mu.Lock()
	s.closed = true
	s.tok, s.cached = Token{}, false
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
	return nil
}
