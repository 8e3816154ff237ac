// Package realtime is the contract every realtime transport of this module
// implements, and its Inngest Realtime implementation.
//
// A [Provider] publishes a [Message] — a room, an event name, a request id
// and a body — to the browsers watching that room. Every provider sends the
// same JSON envelope, the one browsers already receive from PartyKit:
//
//	{"body":<body>,"requestId":"<request id>","name":"<event name>"}
//
// [Inngest] publishes it to Inngest Realtime (POST /v1/realtime/publish),
// on the channel and topic that a [Mapping] derives from the room and name.
// [Inngest.SubscriptionToken] mints the short-lived tokens browsers and Go
// subscribers need (package tokens serves them), and [Inngest.PublishStream]
// uses Inngest's native streaming publish ([StreamPublisher]; package
// chunkstream builds on it).
// [Noop] validates and drops, for apps where realtime is not configured.
// [Middleware] puts a Provider into every inngestgo function's context, where
// [FromContext] finds it.
//
//	p, err := realtime.NewInngest(nil) // configured from INNGEST_* variables
//	if err != nil {
//		return err
//	}
//	err = p.Publish(ctx, realtime.Message{
//		Room: videoID, Name: "video.asset.ready", RequestID: videoID, Body: asset,
//	})
//
// # Rooms stay apart
//
// The Inngest server routes subscriptions by an unseeded 64-bit hash of the
// channel name, so two channels whose names collide share subscribers, and
// such a pair of names can be computed in milliseconds. [Inngest] therefore
// never publishes on a channel a client could choose: by default the wire
// channel is a keyed HMAC of the mapped room name ([KeyedChannelPrefix] and
// 256 bits of HMAC-SHA256 under InngestOptions.ChannelSecret, from
// REALTIME_CHANNEL_SECRET, the same on every instance). Browsers take the
// channel from the token answer and need no change. [Mapping.Unkeyed] opts
// out, at the risk its doc describes.
//
// Options are passed as an *Options struct in which nil, and every zero
// field, means the documented default; the same style is used by every
// package of this module.
//
// # Errors
//
// Validation fails with a [*ValidationError] matching [ErrInvalidMessage]
// and one of [ErrEmpty], [ErrTooLong], [ErrControlCharacter] and
// [ErrInvalidUTF8] (or [ErrMappingPanicked], for a Mapping function that
// panicked); a body that cannot be encoded, or is nested deeper than
// [MaxBodyDepth], with [ErrEncode]; an
// envelope over [MaxEnvelopeBytes] (Inngest's limit, above which it silently
// truncates) with a [*TooLargeError] before anything is sent. A transport
// failure is a [*PublishError] matching [ErrUnauthorized], [ErrRejected] or
// [ErrUnavailable]; a caller's cancellation or deadline also matches
// [context.Canceled] or [context.DeadlineExceeded]. No error, log line or
// formatted value contains a signing key.
//
// # Concurrency
//
// Providers are safe for concurrent use; one [Inngest] shares its keep-alive
// connections between all callers. Publish blocks until the transport
// answered, the retries are exhausted or ctx ends.
package realtime
