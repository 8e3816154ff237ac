package realtime

import "time"

// RetryPolicy says how a provider retries a publish that failed for a reason
// that may pass: a connection that could not be made or broke before the
// request was sent, 408, 429 (after its Retry-After) or 500–599. Other
// answers, redirects and statuses past 599 included, are never retried, nor
// is a publish that was sent in full and got no answer ([ErrMaybeDelivered]),
// since the server may have delivered it already; a token request, which is
// safe to repeat, is retried then too. Delays grow exponentially from BaseDelay
// with full jitter, capped at MaxDelay, and never outlive the caller's
// context deadline. A nil *RetryPolicy, or a zero field, takes the default
// written on the field.
type RetryPolicy struct {
	// Attempts is the total number of requests, the first included; 1
	// disables retries. Defaults to 3.
	Attempts int
	// BaseDelay is the backoff before the first retry. Defaults to 100ms.
	BaseDelay time.Duration
	// MaxDelay caps each delay, a server's Retry-After included. Defaults to 2s.
	MaxDelay time.Duration
}
