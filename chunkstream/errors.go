package chunkstream

import (
	"errors"
	"fmt"

	"github.com/coursebuilder/realtime-go/realtime"
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
	// ErrInvalidUTF8 is returned by [Stream.PublishChunk] (and [Pump]) for
	// text that is not valid UTF-8 and cannot become valid: an invalid
	// byte sequence anywhere but at the very end, where the next call may
	// complete a character. None of the text was accepted; the stream is
	// unchanged and takes the next valid text. Invalid text is refused
	// rather than published as U+FFFD.
	ErrInvalidUTF8 = errors.New("chunkstream: text is not valid UTF-8")
)

// FailedError reports why a [Stream] stopped publishing. Text from message
// Seq on, including the end marker, was not published (or, in text-stream
// mode, possibly only in part), except that message Seq itself may have
// been delivered once when Err matches [realtime.ErrMaybeDelivered]. It
// matches [ErrFailed] and the cause.
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

// DefaultRetryable is the default of [Options.Retryable]. It reads the
// whole error tree (an [errors.Join] of a broadcast's transport errors,
// wrappers, several %w): an error is retried only when every failure in it
// is retryable, that is when each one says so with a Retryable method that
// returns true, as a [*realtime.PublishError] does for a transport that was
// unavailable and did not receive the request, and none matches
// [realtime.ErrMaybeDelivered]. Anything else is not retried: a rejected
// message, a plain error, a context's cancellation, and a failure that may
// have been delivered (a retry could show the text twice to clients that do
// not read seq), wherever it sits in the tree and even though it also
// matches [realtime.ErrUnavailable].
func DefaultRetryable(err error) bool {
	return err != nil && !errors.Is(err, realtime.ErrMaybeDelivered) && allRetryable(err)
}

// allRetryable reports whether every failure in err's tree is retryable. An
// error with a Retryable method decides for itself and what it wraps; a
// join, or an error with several %w, is retryable when each of its errors
// is; a wrapper is what it wraps; any other error is not retryable.
func allRetryable(err error) bool {
	if r, ok := err.(interface{ Retryable() bool }); ok {
		return r.Retryable()
	}
	switch u := err.(type) {
	case interface{ Unwrap() []error }:
		n := 0
		for _, e := range u.Unwrap() {
			if e == nil {
				continue
			}
			if !allRetryable(e) {
				return false
			}
			n++
		}
		return n > 0
	case interface{ Unwrap() error }:
		if e := u.Unwrap(); e != nil {
			return allRetryable(e)
		}
	}
	return false
}
