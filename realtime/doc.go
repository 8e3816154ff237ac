// Package realtime is the contract every realtime transport of this module
// implements: the [Message] envelope, the [Provider] interface and the
// errors every provider returns.
//
// A [Provider] publishes a [Message] — a room, an event name, a request id
// and a body — to the browsers watching that room. Every provider sends the
// same JSON envelope, the one browsers already receive from PartyKit:
//
//	{"body":<body>,"requestId":"<request id>","name":"<event name>"}
//
// The transports live in packages of their own: realtime/inngest publishes
// to Inngest Realtime and mints subscription tokens, legacyparty (deprecated)
// to PartyKit, and broadcast sends to both during the migration. Providers
// that can stream text implement [StreamPublisher] (package chunkstream builds
// on it); those whose routing may change between publishes implement
// [Pinner]. [Noop] validates and drops, for apps where realtime is not
// configured. [Middleware] puts a Provider into every inngestgo function's
// context, where [FromContext] finds it. Package realtimetest has a recording
// fake and the conformance suite every provider passes.
//
//	p, err := inngest.New(nil) // configured from INNGEST_* variables
//	if err != nil {
//		return err
//	}
//	err = p.Publish(ctx, realtime.Message{
//		Room: videoID, Name: "video.asset.ready", RequestID: videoID, Body: asset,
//	})
//
// Options are passed as an *Options struct in which nil, and every zero
// field, means the documented default; the same style is used by every
// package of this module. A [RetryPolicy] in those options says how a
// provider retries transient failures.
//
// # Errors
//
// Validation fails with a [*ValidationError] matching [ErrInvalidMessage]
// and one of [ErrEmpty], [ErrTooLong], [ErrControlCharacter] and
// [ErrInvalidUTF8]; a body that cannot be encoded, or is nested deeper than
// [MaxBodyDepth], with [ErrEncode]; an envelope over [MaxEnvelopeBytes]
// (Inngest's limit, above which it silently truncates) with a
// [*TooLargeError] before anything is sent. A transport failure is a
// [*PublishError] matching [ErrUnauthorized], [ErrRejected] or
// [ErrUnavailable] (and [ErrMaybeDelivered] when the request was sent but
// no answer came); a caller's cancellation or deadline also matches
// [context.Canceled] or [context.DeadlineExceeded]. [IsPermanent] tells
// errors that no retry can fix. No error, log line or formatted value
// contains a signing key.
//
// # Concurrency
//
// Providers are safe for concurrent use. Publish blocks until the transport
// answered, the retries are exhausted or ctx ends.
package realtime
