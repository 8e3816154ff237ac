// Package legacyparty publishes realtime notifications through PartyKit, the
// transport the course platform used before Inngest Realtime.
//
// It is the Go form of the TypeScript PartykitProvider: each
// [realtime.Message] is posted as its JSON envelope,
//
//	POST {NEXT_PUBLIC_PARTY_KIT_URL}/party/{room}
//	{"body":<payload>,"requestId":<id>,"name":<event name>}
//
// and the app's party server broadcasts those bytes unchanged to the browsers
// connected to the room. Browsers therefore parse the same JSON they parse
// today, and the same envelope that [realtime.Inngest] carries as the data of
// its messages, which lets a service publish to both while the UI moves over.
// (The bytes may differ from what the TypeScript code sent in ways JSON.parse
// does not see: encoding/json escapes <, > and & as \u003c and so on, and
// writes map keys in sorted order.)
//
// [Provider] satisfies [realtime.Provider] and behaves like the Inngest
// provider: the same validation and size guard ([realtime.Message.Encode]),
// the same typed errors, the same retry policy ([realtime.RetryPolicy]) and
// per-attempt timeout, and the same options style, an [*Options] struct in
// which nil or a zero field means the documented default.
//
// Deprecated: PartyKit is being replaced by Inngest Realtime; publish through
// [realtime.Inngest] or broadcast.Broadcast. This package is removed once the
// migration completes.
//
// # Example
//
//	party, err := legacyparty.New(nil) // base URL from NEXT_PUBLIC_PARTY_KIT_URL
//	if err != nil {
//		return err // matches realtime.ErrNotConfigured when the variable is unset
//	}
//	defer party.Close()
//	err = party.Publish(ctx, realtime.Message{
//		Room:      videoResourceID,
//		Name:      "video.asset.ready",
//		RequestID: videoResourceID,
//		Body:      videoResource,
//	})
//
// Use [Provider.PublishReply] where the party server's reply text is wanted,
// as broadcastMessage returned it.
//
// # Errors
//
// [New] fails with an error matching [realtime.ErrNotConfigured] when no base
// URL is configured or it is unusable. Publish returns, before sending
// anything, ctx's error when ctx is already done, a
// [*realtime.ValidationError] for an invalid message (the rooms "." and ".."
// included, with reason [ErrDotSegment]), an error matching
// [realtime.ErrEncode] for a body that cannot be encoded, or a
// [*realtime.TooLargeError] for an envelope over [realtime.MaxEnvelopeBytes].
// A failed send is a [*realtime.PublishError] whose Transport is "partykit":
//
//   - [realtime.ErrUnavailable]: the server could not be reached, did not
//     answer in time, or answered 408, 429 or 5xx. These are retried; the
//     error reports the attempts made. When the caller's context ended the
//     publish, errors.Is(err, context.DeadlineExceeded) (or
//     [context.Canceled]) holds too.
//   - [realtime.ErrUnauthorized]: the server answered 401 or 403.
//   - [realtime.ErrRejected]: any other answer that is not a 2xx success,
//     such as 400 or 404. Never retried.
//
// A retried publish may reach the browsers twice if the server broadcast it
// but its answer was lost: PartyKit has no idempotency key.
//
// # Concurrency
//
// A [Provider] is safe for concurrent use by multiple goroutines; create one
// per process and share it. Its own HTTP client keeps connections alive
// between publishes; [Provider.Close] releases the idle ones and may be
// called any number of times.
package legacyparty
