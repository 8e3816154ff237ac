// Package retry runs an operation again after transient failures, with
// exponential backoff, full jitter and respect for a server's Retry-After.
//
// It is the loop behind the one retry policy of the module's transports
// (package transport): the caller says, for each error, whether trying again
// may help and what delay the server asked for.
package retry

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"
)

// Classify reports whether trying again after err may help and the delay a
// server asked for (0 for none).
type Classify func(err error) (again bool, retryAfter time.Duration)

// Policy says how often and how patiently to retry. The zero value tries once.
type Policy struct {
	// Attempts is the total number of tries, the first included. Values below
	// one mean one.
	Attempts int
	// BaseDelay is the backoff before the second try; it doubles after each
	// further failure, up to MaxDelay.
	BaseDelay time.Duration
	// MaxDelay caps every delay, including one a server asks for.
	MaxDelay time.Duration
	// Jitter returns a number in [0, 1) that scales each backoff ("full
	// jitter"). Nil means math/rand/v2; tests inject a fixed value.
	Jitter func() float64
}

// Do calls op until it succeeds, fails for good (classify says so, or the
// error is the context's), runs out of attempts or ctx ends. It returns the
// number of attempts made, the last error op returned, and, when the loop
// stopped because ctx ended (or would end before the next try), ctx's error.
func (p Policy) Do(ctx context.Context, classify Classify, op func(ctx context.Context, attempt int) error) (attempts int, last, stop error) {
	limit := max(p.Attempts, 1)
	for attempt := 1; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return attempt - 1, last, err
		}
		last = op(ctx, attempt)
		if last == nil || attempt >= limit || errors.Is(last, context.Canceled) || errors.Is(last, context.DeadlineExceeded) {
			return attempt, last, nil
		}
		again, after := classify(last)
		if !again {
			return attempt, last, nil
		}
		delay := p.Delay(attempt, after)
		if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < delay {
			// Waiting would outlive the caller: give up now with the real cause.
			return attempt, last, context.DeadlineExceeded
		}
		if err := sleep(ctx, delay); err != nil {
			return attempt, last, err
		}
	}
}

// Delay returns the wait before the attempt that follows failed attempt
// number attempt (1-based): the server's retryAfter when it asked for one,
// else BaseDelay·2^(attempt-1) scaled by jitter; both capped at MaxDelay.
func (p Policy) Delay(attempt int, retryAfter time.Duration) time.Duration {
	if retryAfter > 0 {
		return p.capped(retryAfter)
	}
	backoff := p.BaseDelay
	for i := 1; i < attempt && backoff < p.MaxDelay; i++ {
		backoff *= 2
	}
	backoff = p.capped(backoff)
	jitter := rand.Float64
	if p.Jitter != nil {
		jitter = p.Jitter
	}
	return time.Duration(float64(backoff) * jitter())
}

func (p Policy) capped(d time.Duration) time.Duration {
	if d < 0 {
		return 0
	}
	if p.MaxDelay > 0 && d > p.MaxDelay {
		return p.MaxDelay
	}
	return d
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
