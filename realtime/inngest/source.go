package inngest

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Defaults of [SubscriberOptions.TokenMargin] and
// [SubscriberOptions.TokenTimeout].
const (
	defaultMargin       = 10 * time.Second
	defaultFetchTimeout = 30 * time.Second
)

// tokenCache keeps a subscriber's token between its connections, fetching
// a new one only when the one it holds is within margin of its expiry (or
// half way through its life, for a token that lives less than twice the
// margin) or was refused. It is not locked: the goroutine of Subscribe
// uses it for the first connection, then the subscriber's own goroutine
// (started after) for every reconnection.
type tokenCache struct {
	fetch   func(context.Context) (Token, error)
	margin  time.Duration
	timeout time.Duration

	tok       Token
	cached    bool
	refreshAt time.Time
}

// newTokenCache returns a cache that fetches with fetch; a zero margin or
// timeout means its default.
func newTokenCache(fetch func(context.Context) (Token, error), margin, timeout time.Duration) *tokenCache {
	if margin <= 0 {
		margin = defaultMargin
	}
	if timeout <= 0 {
		timeout = defaultFetchTimeout
	}
	return &tokenCache{fetch: fetch, margin: margin, timeout: timeout}
}

// get returns the token held if it is still fresh, and otherwise fetches
// one under ctx and the fetch timeout. A token that has already expired by
// the local clock (or has no expiry) is returned, Inngest decides, but not
// kept.
func (c *tokenCache) get(ctx context.Context) (Token, error) {
	if c.cached && time.Now().Before(c.refreshAt) {
		return c.tok, nil
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	tok, err := c.call(ctx)
	if err != nil {
		return Token{}, err
	}
	fetched := time.Now()
	c.tok, c.cached = Token{}, false
	if tok.Expires.After(fetched) {
		c.tok, c.cached = tok, true
		c.refreshAt = tok.Expires.Add(-c.margin)
		if !c.refreshAt.After(fetched) {
			// A short-lived token (or a margin that is too large):
			// replace it half way through what is left of its life.
			c.refreshAt = fetched.Add(tok.Expires.Sub(fetched) / 2)
		}
	}
	return tok, nil
}

// call runs fetch, turning a panic or an empty token into an error.
func (c *tokenCache) call(ctx context.Context) (tok Token, err error) {
	defer func() {
		if p := recover(); p != nil {
			tok, err = Token{}, fmt.Errorf("tokens: fetch token: panic: %v", p)
		}
	}()
	tok, err = c.fetch(ctx)
	switch {
	case err != nil:
		return Token{}, fmt.Errorf("tokens: fetch token: %w", err)
	case tok.JWT == "":
		return Token{}, errors.New("tokens: fetch token: empty token")
	}
	return tok, nil
}

// invalidate forgets tok if it is the token held, so that the next get
// fetches a new one: Inngest refused it. A refusal of an older token does
// not discard a newer one.
func (c *tokenCache) invalidate(tok Token) {
	if c.cached && c.tok.JWT == tok.JWT {
		c.tok, c.cached = Token{}, false
	}
}
