package realtime

import (
	"context"
	"fmt"
	"io"

	"go.uber.org/zap"
)

// Provider publishes a [Message] to the browsers watching its room.
//
// Implementations validate and encode with [NewEnvelope] before sending,
// honour ctx's deadline and cancellation, are safe for concurrent use, and
// return typed errors: [*ValidationError], [*TooLargeError], an error
// matching [ErrEncode], or a [*PublishError]. A nil error means the transport
// accepted the message; it says nothing about whether a browser was listening.
type Provider interface {
	Publish(ctx context.Context, msg Message) error
}

// EnvelopePublisher is implemented by providers that can publish a message
// another provider already validated and encoded: the Inngest provider
// (package realtime/inngest) and the PartyKit one (package legacyparty) are.
// [Broadcast] encodes each message once and calls PublishEnvelope on each
// of its transports that implements it, and Publish on the others.
//
// PublishEnvelope sends env.Bytes() as they are, after checking its own
// size limit, with the errors of Publish.
//
// [Broadcast]: https://pkg.go.dev/github.com/coursebuilder/realtime-go/broadcast#Broadcast
type EnvelopePublisher interface {
	Provider
	PublishEnvelope(ctx context.Context, env *Envelope) error
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
	n.drop(msg)
	return nil
}

// PublishEnvelope logs and drops an envelope encoded already (see
// [EnvelopePublisher]); it fails only for a done context or a nil envelope.
func (n *Noop) PublishEnvelope(ctx context.Context, env *Envelope) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if env == nil || env.data == nil {
		return fmt.Errorf("%w: no envelope (use NewEnvelope)", ErrInvalidMessage)
	}
	n.drop(env.msg)
	return nil
}

func (n *Noop) drop(msg Message) {
	if n == nil || n.log == nil {
		return
	}
	n.log.Info("realtime: not configured, message dropped",
		zap.String("room", msg.Room), zap.String("name", msg.Name), zap.String("request_id", msg.RequestID))
}
