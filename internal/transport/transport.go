// Package transport is the publish pipeline the transports of this module
// (realtime/inngest and legacyparty) share and users never need: an
// [Endpoint] validates and encodes a message once (or takes the
// [realtime.Envelope] Broadcast made), applies the transport's size limit and
// runs the one retry loop ([Do]); a transport gives it only where a message
// goes and one attempt, whose failures it classifies with [StatusError] and
// [NetworkError]. Also field validation and Inngest's signing-key hash and
// streaming limits.
package transport

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/coursebuilder/realtime-go/internal/field"
	"github.com/coursebuilder/realtime-go/internal/httpx"
	"github.com/coursebuilder/realtime-go/internal/retry"
	"github.com/coursebuilder/realtime-go/realtime"
)

// DefaultAttemptTimeout bounds one request of a provider, retries excluded,
// when its options leave AttemptTimeout zero.
const DefaultAttemptTimeout = 5 * time.Second

// Version is this library's version, sent in UserAgent.
const Version = "0.1.0"

// UserAgent identifies this library to servers.
const UserAgent = "realtime-go/" + Version

// Validate checks one identifier (a mapped channel or topic, a room) the way
// [realtime.Message.Validate] does and returns a [*realtime.ValidationError]
// naming it.
func Validate(name, v string, limit int) error {
	if reason := field.Check(v, limit); reason != nil {
		e := &realtime.ValidationError{Field: name, Reason: reason}
		if reason == realtime.ErrTooLong {
			e.Limit = limit
		}
		return e
	}
	return nil
}

// StatusError classifies an HTTP answer that was not a success: 401 and
// 403 are [realtime.ErrUnauthorized], 408, 429 and 500–599 are
// [realtime.ErrUnavailable] (with the given Retry-After delay), any other
// status, a redirect (3xx) or one outside 100–599 included, is
// [realtime.ErrRejected]. Every transport of this module uses it so that
// they classify answers alike.
func StatusError(transport string, status int, detail string, retryAfter time.Duration) *realtime.PublishError {
	e := &realtime.PublishError{Transport: transport, StatusCode: status, Detail: detail, RetryAfter: retryAfter}
	switch {
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		e.Err = realtime.ErrUnauthorized
	case status == http.StatusRequestTimeout || status == http.StatusTooManyRequests || status >= 500 && status <= 599:
		e.Err = realtime.ErrUnavailable
	default:
		e.Err = realtime.ErrRejected
	}
	return e
}

// NetworkError wraps an error that prevented any answer (refused
// connection, reset, timeout) as [realtime.ErrUnavailable], retryable
// unless the request had been sent in full, in which case it also matches
// [realtime.ErrMaybeDelivered]. A context's own cancellation is kept as is,
// so errors.Is(err, context.Canceled) holds.
func NetworkError(transport string, err error) *realtime.PublishError {
	if errors.Is(err, httpx.ErrSent) {
		return &realtime.PublishError{Transport: transport, Err: errors.Join(realtime.ErrUnavailable, realtime.ErrMaybeDelivered, err)}
	}
	return &realtime.PublishError{Transport: transport, Err: errors.Join(realtime.ErrUnavailable, err)}
}

// Default retry policy of a transport whose options leave Retry nil.
const (
	DefaultAttempts  = 3
	DefaultBaseDelay = 100 * time.Millisecond
	DefaultMaxDelay  = 2 * time.Second
)

// Retry returns a copy of *p with every zero field set to its default; a
// nil p yields the defaults.
func Retry(p *realtime.RetryPolicy) realtime.RetryPolicy {
	q := realtime.RetryPolicy{}
	if p != nil {
		q = *p
	}
	if q.Attempts <= 0 {
		q.Attempts = DefaultAttempts
	}
	if q.BaseDelay <= 0 {
		q.BaseDelay = DefaultBaseDelay
	}
	if q.MaxDelay <= 0 {
		q.MaxDelay = DefaultMaxDelay
	}
	return q
}

// Do is the retry loop of every request of this module's transports: it runs
// send under p and returns its final error. send makes one attempt and
// returns nil or a classified error; a [*realtime.PublishError] that is
// [realtime.PublishError.Retryable] is tried again, as is one whose answer
// was lost ([realtime.ErrMaybeDelivered]) when idempotent says the request
// is safe to send twice (a token request). Any other error ends the loop. A
// returned *PublishError carries the number of attempts; when ctx ended the
// loop its error is joined in, so errors.Is(err, context.DeadlineExceeded)
// holds.
func Do(ctx context.Context, p realtime.RetryPolicy, idempotent bool, send func(ctx context.Context) error) error {
	pol := retry.Policy{Attempts: p.Attempts, BaseDelay: p.BaseDelay, MaxDelay: p.MaxDelay}
	again := func(err error) (bool, time.Duration) {
		var pe *realtime.PublishError
		if !errors.As(err, &pe) {
			return false, 0
		}
		return pe.Retryable() || idempotent && errors.Is(pe.Err, realtime.ErrUnavailable), pe.RetryAfter
	}
	attempts, last, stop := pol.Do(ctx, again, func(ctx context.Context, _ int) error { return send(ctx) })
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

// Endpoint is one transport's half of the publish pipeline: what it sends
// to and how, given to [Endpoint.PublishEnvelope], which owns the rest
// (context, size limit, retries). A transport only routes and classifies.
type Endpoint struct {
	// Name names the transport in errors: "inngest" or "partykit".
	Name string
	// Limit is the largest envelope the transport sends, in bytes.
	Limit int
	// Retry is the transport's resolved retry policy (see [Retry]).
	Retry realtime.RetryPolicy
	// Route returns where a message goes (a URL), or a
	// [*realtime.ValidationError] for a room or name the transport cannot
	// carry. It runs once per publish, before any attempt.
	Route func(msg realtime.Message) (string, error)
	// Send makes one attempt to post env.Bytes() to target and returns nil
	// or a classified error ([StatusError], [NetworkError]).
	Send func(ctx context.Context, target string, env *realtime.Envelope) error
}

// Publish validates and encodes msg once and publishes it.
func (e *Endpoint) Publish(ctx context.Context, msg realtime.Message) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	env, err := realtime.NewEnvelope(ctx, msg)
	if err != nil {
		return err
	}
	return e.PublishEnvelope(ctx, env)
}

// PublishEnvelope publishes an envelope encoded already: it refuses one
// over the transport's size limit, routes it, and sends it under the retry
// policy until an attempt succeeds or fails for good, or ctx ends.
func (e *Endpoint) PublishEnvelope(ctx context.Context, env *realtime.Envelope) error {
	// What can never be sent is said first, whatever ctx says.
	if env == nil || env.Bytes() == nil {
		return fmt.Errorf("%w: no envelope (use realtime.NewEnvelope)", realtime.ErrInvalidMessage)
	}
	if n := len(env.Bytes()); n > e.Limit {
		return &realtime.TooLargeError{Size: n, Limit: e.Limit}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	target, err := e.Route(env.Message())
	if err != nil {
		return err
	}
	return Do(ctx, e.Retry, false, func(ctx context.Context) error { return e.Send(ctx, target, env) })
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
