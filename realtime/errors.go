package realtime

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/coursebuilder/realtime-go/internal/field"
)

// Sentinel errors, matched with [errors.Is]. Validation failures match
// ErrInvalidMessage and the sentinel for their reason; the reason sentinels
// are shared by every field.
var (
	// ErrInvalidMessage matches every message that fails validation.
	ErrInvalidMessage = errors.New("realtime: invalid message")
	// ErrEmpty: a required field (room, name, channel, topic) is empty.
	ErrEmpty = field.ErrEmpty
	// ErrTooLong: a field is longer than its limit.
	ErrTooLong = field.ErrTooLong
	// ErrControlCharacter: a field contains a control or invisible format character.
	ErrControlCharacter = field.ErrControlCharacter
	// ErrInvalidUTF8: a field is not valid UTF-8.
	ErrInvalidUTF8 = field.ErrInvalidUTF8
	// ErrEncode: the body cannot be encoded as JSON.
	ErrEncode = errors.New("realtime: body cannot be encoded as JSON")
	// ErrPayloadTooLarge: the encoded envelope exceeds [MaxEnvelopeBytes].
	ErrPayloadTooLarge = errors.New("realtime: payload too large")

	// ErrUnauthorized: the server refused the credentials (401 or 403).
	ErrUnauthorized = errors.New("realtime: unauthorized")
	// ErrRejected: the server refused the request itself (a 4xx other than
	// 401, 403, 408 and 429), answered with a redirect (3xx, never
	// followed) or with a status outside 100–599; sending it again will not
	// help.
	ErrRejected = errors.New("realtime: rejected")
	// ErrUnavailable: the server could not be reached, answered 408, 429 or
	// 500–599, or did not answer in time; a later try may succeed.
	ErrUnavailable = errors.New("realtime: unavailable")
	// ErrMaybeDelivered: the request was sent in full but no answer came (the
	// connection broke or the attempt timed out). The server may have
	// delivered the message, so it is not retried: a retry could show it
	// twice. It always comes with ErrUnavailable.
	ErrMaybeDelivered = errors.New("realtime: maybe delivered")
	// ErrNotConfigured: a provider lacks configuration it needs, such as a
	// signing key for Inngest Cloud.
	ErrNotConfigured = errors.New("realtime: not configured")
)

// ValidationError says which field of a [Message] is invalid and why. It
// matches [ErrInvalidMessage] and its Reason with [errors.Is].
type ValidationError struct {
	// Field is "room", "name", "requestId", "channel" or "topic".
	Field string
	// Reason is one of ErrEmpty, ErrTooLong, ErrControlCharacter, ErrInvalidUTF8.
	Reason error
	// Limit is the maximum length in bytes, set when Reason is ErrTooLong.
	Limit int
}

func (e *ValidationError) Error() string {
	reason := "invalid"
	if e.Reason != nil {
		reason = strings.TrimPrefix(e.Reason.Error(), "realtime: ")
	}
	if e.Limit > 0 {
		return fmt.Sprintf("realtime: invalid message: %s is %s (limit %d bytes)", e.Field, reason, e.Limit)
	}
	return fmt.Sprintf("realtime: invalid message: %s: %s", e.Field, reason)
}

// Unwrap returns ErrInvalidMessage and the reason.
func (e *ValidationError) Unwrap() []error { return []error{ErrInvalidMessage, e.Reason} }

// TooLargeError reports an envelope that is over the size limit. Nothing was
// sent. It matches [ErrPayloadTooLarge].
type TooLargeError struct {
	Size, Limit int
}

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("realtime: payload too large: envelope is %d bytes, limit %d", e.Size, e.Limit)
}

// Unwrap returns ErrPayloadTooLarge.
func (e *TooLargeError) Unwrap() error { return ErrPayloadTooLarge }

// PublishError reports a publish that a transport could not complete. It
// wraps a classifying sentinel ([ErrUnauthorized], [ErrRejected],
// [ErrUnavailable]) and, where there was one, the network or context error.
// Its message never contains a signing key or the message body.
type PublishError struct {
	// Transport names the transport: "inngest" or "partykit".
	Transport string
	// Op is the request that failed when it was not a publish, such as
	// "token request"; empty means "publish".
	Op string
	// StatusCode is the HTTP status of the last answer, 0 if none came.
	StatusCode int
	// Attempts is how many requests were sent, retries included.
	Attempts int
	// Detail is a short, sanitised excerpt of the server's answer, if any.
	Detail string
	// Err is the cause: a sentinel, possibly joined with a network error.
	Err error
	// RetryAfter is the delay the server asked for with Retry-After (on a
	// 429 or 503), 0 when it asked for none.
	RetryAfter time.Duration
}

func (e *PublishError) Error() string {
	op := e.Op
	if op == "" {
		op = "publish"
	}
	msg := "realtime: " + op + " to " + e.Transport + " failed"
	if e.Attempts > 1 {
		msg += " after " + strconv.Itoa(e.Attempts) + " attempts"
	}
	if e.StatusCode != 0 {
		msg += ": status " + strconv.Itoa(e.StatusCode)
		if text := http.StatusText(e.StatusCode); text != "" {
			msg += " " + text
		}
	}
	if e.Detail != "" {
		msg += ": " + strconv.Quote(e.Detail)
	}
	if e.Err != nil {
		// errors.Join separates its parts with newlines; an error message
		// is one line.
		msg += ": " + strings.ReplaceAll(e.Err.Error(), "\n", "; ")
	}
	return msg
}

// Unwrap returns the cause.
func (e *PublishError) Unwrap() error { return e.Err }

// Retryable reports whether sending the same request again may succeed
// without delivering it twice: the server was unavailable and the request
// was not, as far as the client knows, received ([ErrMaybeDelivered]).
func (e *PublishError) Retryable() bool {
	return errors.Is(e.Err, ErrUnavailable) && !errors.Is(e.Err, ErrMaybeDelivered)
}

// IsPermanent reports whether sending the same message again can never
// succeed: it is invalid, its body cannot be encoded, its envelope is too
// large, or the server rejected the request itself. An Inngest function can
// wrap such an error in inngestgo.NoRetryError so that the step is not
// retried in vain.
func IsPermanent(err error) bool {
	for _, permanent := range []error{ErrInvalidMessage, ErrEncode, ErrPayloadTooLarge, ErrRejected} {
		if errors.Is(err, permanent) {
			return true
		}
	}
	return false
}
