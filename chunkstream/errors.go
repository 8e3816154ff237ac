package chunkstream

import (
	"errors"
	"fmt"
)

// Sentinel errors, matched with [errors.Is].
var (
	// ErrBufferFull is returned by [Stream.PublishChunk] when accepting the
	// text would hold more than [Options.MaxBuffered] bytes that are not
	// published yet. The text was not accepted: the caller still owns it
	// and may offer it again once the provider caught up (as [Pump] does).
	ErrBufferFull = errors.New("chunkstream: buffer full")
	// ErrClosed is returned by [Stream.PublishChunk] after Close.
	ErrClosed = errors.New("chunkstream: closed")
	// ErrFailed matches every [*FailedError]: the stream gave up and
	// publishes nothing more.
	ErrFailed = errors.New("chunkstream: stream failed")
)

// FailedError reports why a [Stream] stopped publishing. Text from message
// Seq on, including the end marker, was not published (or, in text-stream
// mode, possibly only in part). It matches [ErrFailed] and the cause.
type FailedError struct {
	// Seq is the sequence number of the first message that was not
	// published; in text-stream mode, 0 when the stream of text failed.
	Seq uint64
	// Attempts is how many times that message was offered to the provider.
	Attempts int
	// Err is the cause: the provider's error, or the cancellation of a
	// context (New's or Close's).
	Err error
}

func (e *FailedError) Error() string {
	msg := "chunkstream: stream failed"
	if e.Seq > 0 {
		msg += fmt.Sprintf(" at seq %d", e.Seq)
	}
	if e.Attempts > 1 {
		msg += fmt.Sprintf(" after %d attempts", e.Attempts)
	}
	return msg + ": " + fmt.Sprint(e.Err)
}

// Unwrap returns ErrFailed and the cause.
func (e *FailedError) Unwrap() []error { return []error{ErrFailed, e.Err} }

// DefaultRetryable is the default of [Options.Retryable]: an error is
// retried when it says so with a Retryable method that returns true, as a
// [*realtime.PublishError] does for a transport that was unavailable and did
// not receive the request. Anything else, including an error that matches
// [realtime.ErrMaybeDelivered] (a retry could show the text twice to clients
// that do not read seq) and a context's cancellation, is not.
func DefaultRetryable(err error) bool {
	var r interface{ Retryable() bool }
	return errors.As(err, &r) && r.Retryable()
}
