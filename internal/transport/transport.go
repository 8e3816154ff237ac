// Package transport is what the transports of this module (realtime/inngest
// and legacyparty) share and users never need: field validation, the
// classification of failed requests into [realtime.PublishError]s, the retry
// loop of a [realtime.RetryPolicy], and Inngest's signing-key hash and
// streaming limits.
package transport

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"regexp"
	"strings"
	"time"

	"github.com/coursebuilder/realtime-go/internal/hook"
	"github.com/coursebuilder/realtime-go/internal/httpx"
	"github.com/coursebuilder/realtime-go/internal/retry"
	"github.com/coursebuilder/realtime-go/realtime"
)

// DefaultAttemptTimeout bounds one request of a provider, retries excluded,
// when its options leave AttemptTimeout zero.
const DefaultAttemptTimeout = 5 * time.Second

// UserAgent identifies this library to servers.
const UserAgent = "realtime-go/" + realtime.Version

// ValidateField checks one identifier (a room, name, channel or topic) the
// way [realtime.Message.Validate] does and returns a
// [*realtime.ValidationError] naming field.
func ValidateField(field, v string, limit int) error {
	return hook.ValidateField(field, v, limit)
}

// NewStatusError classifies an HTTP answer that was not a success: 401 and
// 403 are [realtime.ErrUnauthorized], 408, 429 and 500–599 are
// [realtime.ErrUnavailable] (with the given Retry-After delay), any other
// status, a redirect (3xx) or one outside 100–599 included, is
// [realtime.ErrRejected]. Every transport of this module uses it so that
// they classify answers alike.
func NewStatusError(transport string, status int, detail string, retryAfter time.Duration) *realtime.PublishError {
	return hook.StatusError(transport, status, detail, retryAfter).(*realtime.PublishError)
}

// NewNetworkError wraps an error that prevented any answer (refused
// connection, reset, timeout) as [realtime.ErrUnavailable], retryable
// unless the request had been sent in full, in which case it also matches
// [realtime.ErrMaybeDelivered]. A context's own cancellation is kept as is,
// so errors.Is(err, context.Canceled) holds.
func NewNetworkError(transport string, err error) *realtime.PublishError {
	if errors.Is(err, httpx.ErrSent) {
		return &realtime.PublishError{Transport: transport, Err: errors.Join(realtime.ErrUnavailable, realtime.ErrMaybeDelivered, err)}
	}
	return &realtime.PublishError{Transport: transport, Err: errors.Join(realtime.ErrUnavailable, err)}
}

// MarkIdempotent marks the [*realtime.PublishError] that err is or wraps,
// if any, as a request that is safe to send twice (a token request): one
// whose answer was lost ([realtime.ErrMaybeDelivered]) is then retried.
func MarkIdempotent(err error) { hook.Idempotent(err) }

// Retry returns a copy of *p with every zero field set from
// [realtime.DefaultRetryPolicy]; a nil p yields DefaultRetryPolicy.
func Retry(p *realtime.RetryPolicy) realtime.RetryPolicy {
	d := realtime.DefaultRetryPolicy
	if p == nil {
		return d
	}
	q := *p
	if q.Attempts <= 0 {
		q.Attempts = d.Attempts
	}
	if q.BaseDelay <= 0 {
		q.BaseDelay = d.BaseDelay
	}
	if q.MaxDelay <= 0 {
		q.MaxDelay = d.MaxDelay
	}
	return q
}

// Do runs send under p and returns its final error. send returns nil, a
// retryable [*realtime.PublishError] or any other error, which ends the
// loop. A returned *PublishError carries the number of attempts; when ctx
// ended the loop its error is joined in, so errors.Is(err,
// context.DeadlineExceeded) holds.
func Do(ctx context.Context, p realtime.RetryPolicy, send func(ctx context.Context) error) error {
	pol := retry.Policy{Attempts: p.Attempts, BaseDelay: p.BaseDelay, MaxDelay: p.MaxDelay}
	attempts, last, stop := pol.Do(ctx, func(ctx context.Context, _ int) error { return send(ctx) })
	if last == nil {
		return stop
	}
	// Declared here, not above: its address escapes, and the happy path
	// should not pay for the allocation.
	var pe *realtime.PublishError
	if errors.As(last, &pe) {
		pe.Attempts = attempts
		if stop != nil && !errors.Is(pe.Err, stop) {
			pe.Err = errors.Join(pe.Err, stop)
		}
	}
	return last
}

var signingKeyPrefix = regexp.MustCompile(`^signkey-\w+-`)

// errMalformedKey never includes the key itself.
var errMalformedKey = errors.New("malformed signing key: want signkey-<env>-<hex>")

// HashSigningKey returns the form of an Inngest signing key that is sent on
// the wire, as the official SDKs compute it: the "signkey-<env>-" prefix is
// kept, the hex rest is decoded, hashed with SHA-256 and hex-encoded again.
// Its error never contains the key.
func HashSigningKey(key string) (string, error) {
	key = strings.TrimSpace(key)
	prefix := signingKeyPrefix.FindString(key)
	raw, err := hex.DecodeString(key[len(prefix):])
	if err != nil || len(raw) == 0 {
		return "", errMalformedKey
	}
	sum := sha256.Sum256(raw)
	return prefix + hex.EncodeToString(sum[:]), nil
}

// Limits of Inngest Realtime's streaming publish (POST /v1/realtime/publish
// with Content-Type: text/stream), as the server (inngest v1.19.3,
// pkg/consts) enforces them.
const (
	// StreamChunkBytes is the most the server reads from a stream at once:
	// every read becomes one "chunk" message of at most this many bytes.
	StreamChunkBytes = 1024
	// StreamMaxChunks is how many reads the server makes of one stream. It
	// then answers 200 and ignores the rest of the body, without an error.
	StreamMaxChunks = 1000
	// StreamChunkBudget is how many writes of at most StreamChunkBytes
	// inngest.Provider.PublishStream sends in one stream before it starts
	// the next one: half of StreamMaxChunks. The server's reads return what
	// has arrived, so one write may cost it more than one read; the other
	// half is the margin for that.
	StreamChunkBudget = StreamMaxChunks / 2
)
