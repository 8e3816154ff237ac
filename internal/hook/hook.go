// Package hook hands package realtime's unexported constructors to the
// transports of this module (through package transport) without exporting
// them from realtime: realtime sets these variables when it is
// initialised, before any package that imports it runs.
//
// It imports nothing of this module, so realtime can import it.
package hook

import "time"

var (
	// ValidateField is realtime's check of one identifier; it returns a
	// *realtime.ValidationError or nil.
	ValidateField func(field, v string, limit int) error
	// StatusError is realtime's classification of an HTTP answer that was
	// not a success; it returns a *realtime.PublishError.
	StatusError func(transport string, status int, detail string, retryAfter time.Duration) error
	// Idempotent marks the *realtime.PublishError that err is or wraps as a
	// request that is safe to send twice (a token request), so that
	// ErrMaybeDelivered does not stop its retries.
	Idempotent func(err error)
)
