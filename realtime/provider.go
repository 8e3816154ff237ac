package realtime

import (
	"context"
	"io"

	"go.uber.org/zap"
)

// Provider publishes a [Message] to the browsers watching its room.
//
// Implementations validate and encode with [Message.Encode] before sending,
// honour ctx's deadline and cancellation, are safe for concurrent use, and
// return typed errors: [*ValidationError], [*TooLargeError], an error
// matching [ErrEncode], or a [*PublishError]. A nil error means the transport
// accepted the message; it says nothing about whether a browser was listening.
type Provider interface {
	Publish(ctx context.Context, msg Message) error
}

// Pinner is implemented by providers whose routing may change between
// publishes, such as broadcast.Broadcast, whose mode follows a feature flag.
// Pin returns a Provider that keeps the routing chosen now for messages of
// room and name, so that a stream of messages (a chat completion streamed in
// chunks) never splits across transports when the flag flips mid-stream.
type Pinner interface {
	Pin(ctx context.Context, room, name string) Provider
}

// StreamPublisher is implemented by providers that can publish text as a
// stream as it is produced, rather than as separate messages: the Inngest
// provider (package realtime/inngest) does, with Inngest Realtime's
// streaming publish. Callers check for it with
// a type assertion, as for [Pinner].
//
// PublishStream reads r until io.EOF and publishes what it reads to the
// subscribers of room and name, in order, without an envelope. It returns
// nil once everything was accepted, or the first error; a failed stream may
// have been delivered in part, and is not retried.
type StreamPublisher interface {
	PublishStream(ctx context.Context, room, name string, r io.Reader) error
}

// ProviderFunc adapts a function to [Provider].
type ProviderFunc func(ctx context.Context, msg Message) error

// Publish calls f(ctx, msg).
func (f ProviderFunc) Publish(ctx context.Context, msg Message) error { return f(ctx, msg) }

// Noop is a [Provider] for apps where realtime is not configured: it
// validates each message like every provider, then drops it and logs that it
// did (room, name and request id; never the body).
//
// The zero value drops silently.
type Noop struct {
	log *zap.Logger
}

// NewNoop returns a [Noop] that logs drops to log at Info level; a nil log
// drops silently.
func NewNoop(log *zap.Logger) *Noop {
	return &Noop{log: log}
}

// Publish validates msg, logs it and drops it. It fails only for an invalid
// message or a done context.
func (n *Noop) Publish(ctx context.Context, msg Message) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if _, err := msg.Encode(); err != nil {
		return err
	}
	if n == nil || n.log == nil {
		return nil
	}
	n.log.Info("realtime: not configured, message dropped",
		zap.String("room", msg.Room), zap.String("name", msg.Name), zap.String("request_id", msg.RequestID))
	return nil
}
