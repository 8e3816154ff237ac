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
	// ErrFailed matches every [*FailedError]: the stream failed and
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
//
// The failure is final: a Stream offers each message to its provider
// once, and the provider's retry policy (inngest.Options.Retry,
// legacyparty.Options.Retry) is the only retry loop, so a message is never
// sent twice by the stream, and Err is what the provider returned after
// its own retries.
type FailedError struct {
	// Seq is the sequence number of the first message that was not
	// published; in text-stream mode, 0 when the stream of text failed.
	Seq uint64
	// Err is the cause: the provider's error, or the cancellation of a
	// context (New's or Close's).
	Err error
}

func (e *FailedError) Error() string {
	msg := "chunkstream: stream failed"
	if e.Seq > 0 {
		msg += fmt.Sprintf(" at seq %d", e.Seq)
	}
	return msg + ": " + fmt.Sprint(e.Err)
}

// Unwrap returns ErrFailed and the cause.
func (e *FailedError) Unwrap() []error { return []error{ErrFailed, e.Err} }
