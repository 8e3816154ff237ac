package realtime

import (
	"context"
	"errors"
	"time"

	"github.com/coursebuilder/realtime-go/internal/retry"
)

// RetryPolicy says how a provider retries a publish that failed for a reason
// that may pass: a connection that could not be made or broke before the
// request was sent, 408, 429 (after its Retry-After) or 500–599. Other
// answers, redirects and statuses past 599 included, are never retried, nor
// is a publish that was sent in full and got no answer ([ErrMaybeDelivered]),
// since the server may have delivered it already; a token request, which is
// safe to repeat, is retried then too. Delays grow exponentially from BaseDelay
// with full jitter, capped at MaxDelay, and never outlive the caller's
// context deadline.
type RetryPolicy struct {
	// Attempts is the total number of requests, the first included; 1
	// disables retries. Defaults to 3.
	Attempts int
	// BaseDelay is the backoff before the first retry. Defaults to 100ms.
	BaseDelay time.Duration
	// MaxDelay caps each delay, a server's Retry-After included. Defaults to 2s.
	MaxDelay time.Duration
}

// DefaultRetryPolicy is used when a provider's options leave Retry nil.
var DefaultRetryPolicy = RetryPolicy{Attempts: 3, BaseDelay: 100 * time.Millisecond, MaxDelay: 2 * time.Second}

// WithDefaults returns a copy of *p with every zero field set from
// [DefaultRetryPolicy]; a nil p yields DefaultRetryPolicy.
func (p *RetryPolicy) WithDefaults() RetryPolicy {
	if p == nil {
		return DefaultRetryPolicy
	}
	q := *p
	if q.Attempts <= 0 {
		q.Attempts = DefaultRetryPolicy.Attempts
	}
	if q.BaseDelay <= 0 {
		q.BaseDelay = DefaultRetryPolicy.BaseDelay
	}
	if q.MaxDelay <= 0 {
		q.MaxDelay = DefaultRetryPolicy.MaxDelay
	}
	return q
}

// Do runs send under the policy and returns its final error. send returns
// nil, a retryable [*PublishError] or any other error, which ends the loop.
// A returned *PublishError carries the number of attempts; when ctx ended
// the loop its error is joined in, so errors.Is(err,
// context.DeadlineExceeded) holds. Custom providers may use it too.
func (p RetryPolicy) Do(ctx context.Context, send func(ctx context.Context) error) error {
	pol := retry.Policy{Attempts: p.Attempts, BaseDelay: p.BaseDelay, MaxDelay: p.MaxDelay}
	attempts, last, stop := pol.Do(ctx, func(ctx context.Context, _ int) error { return send(ctx) })
	if last == nil {
		return stop
	}
	// Declared here, not above: its address escapes, and the happy path
	// should not pay for the allocation.
	var pe *PublishError
	if errors.As(last, &pe) {
		pe.Attempts = attempts
		if stop != nil && !errors.Is(pe.Err, stop) {
			pe.Err = errors.Join(pe.Err, stop)
		}
	}
	return last
}
