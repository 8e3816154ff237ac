package chunkstream

import (
	"errors"
	"fmt"
)

// Sentinel errors, matched with [errors.Is]. Text that is not valid UTF-8
// matches [realtime.ErrInvalidUTF8], the module's one sentinel for it.
var (
	// ErrBufferFull is returned by [Stream.PublishChunk] when accepting the
	// text would hold more than [Options.MaxBuffered] bytes that are not
	// published yet. The text was not accepted: the caller still owns it
	// and may offer it again once the provider caught up (as [Pump] does).
	ErrBufferFull = errors.New("chunkstream: buffer full")
	// ErrClosed is returned by [Stream.PublishChunk] after Close.
	ErrClosed = errors.New("chunkstream: closed")
)

// FailedError reports why a [Stream] stopped publishing; every error of a
// failed stream is one (find it with [errors.AsType]). Text from message
// Seq on, including the end marker, was not published (or, in text-stream
// mode, possibly only in part), except that message Seq itself may have
// been delivered once when Err matches [realtime.ErrMaybeDelivered]. It
// matches the cause with [errors.Is].
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

// Unwrap returns the cause.
func (e *FailedError) Unwrap() error { return e.Err }
