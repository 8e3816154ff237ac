// Package legacyparty publishes realtime notifications through PartyKit, the
// transport the course platform used before Inngest Realtime.
//
// It is the Go form of the TypeScript PartykitProvider: each
// [realtime.Message] is posted as its JSON envelope,
//
//	POST {NEXT_PUBLIC_PARTY_KIT_URL}/party/{room}
//	{"body":<payload>,"requestId":<id>,"name":<event name>}
//
// and the app's party server broadcasts those bytes unchanged to the
// browsers connected to the room. Browsers therefore parse the same JSON
// they parse today, and the same envelope that
// [github.com/coursebuilder/realtime-go/realtime/inngest.Provider] carries
// as the data of its messages, which lets a service publish to both while
// the UI moves over. (The bytes may differ from what the TypeScript code
// sent in ways JSON.parse does not see: encoding/json escapes <, > and & as
// \u003c and so on, and writes map keys in sorted order.)
//
// [Provider] satisfies [realtime.Provider] and [realtime.EnvelopePublisher]
// and behaves like the Inngest provider, through the same publish pipeline:
// the same validation and envelope ([realtime.NewEnvelope], encoded once
// when broadcast.Broadcast sends it to both transports),
// the same typed errors, the same retry policy ([realtime.RetryPolicy]) and
// per-attempt timeout, and the same options style, an [*Options] struct in
// which nil or a zero field means the documented default.
//
// Deprecated: PartyKit is being replaced by Inngest Realtime; publish
// through [github.com/coursebuilder/realtime-go/realtime/inngest.Provider]
// or broadcast.Broadcast. This package is removed once the migration
// completes.
//
// # Size limit
//
// The TypeScript provider had no size limit, and a 600 KiB message reached
// the browsers; this one keeps doing so. It refuses only envelopes over
// PartyKit's own limit, [MaxEnvelopeBytes] = 536,870,888 bytes (2^29 - 24),
// far above Inngest's 512 KiB. Measured on 2026-12-01 against the real
// `partykit dev` (partykit 0.0.115, workerd) of harness/partykit serving
// course-builder's party, with a Node.js 20 websocket in the room and POST
// bodies of one JSON string of growing size (614,400 B; 1 MiB; 2 MiB; 32 MiB;
// 64 MiB; 128 MiB; 256 MiB; 536,870,888 B): each POST answered 200 and the
// websocket received the body intact; neither the request body nor the
// websocket message has a smaller cap in the dev server. At 536,870,889
// bytes, one more than V8's longest string, the party's req.json() fails:
// the POST answers 500 and the room receives the text "undefined". Deployed
// PartyKit (Cloudflare) may impose lower limits, not measured here; set
// [Options.MaxEnvelopeBytes] to match, or get the party's error as a
// [*realtime.PublishError].
//
// # Rooms
//
// PartyKit names a room after the raw path segment, without unescaping it,
// and partysocket builds its socket URL by putting the room id unescaped into
// ws(s)://host/parties/main/{room}, which the browser's URL parser then
// percent-encodes (space, " < > ` { } and non-ASCII) or splits. Publish posts
// to the segment partysocket's socket carries, so "a b" goes to /party/a%20b
// and "a!b" to /party/a!b (checked against the real dev server). Rooms whose
// socket joins another room or none ("/", "\", "?", "#", dot segments), and
// rooms Go's HTTP client cannot post to byte for byte ("|", "^", a "%" not
// followed by two hex digits) are refused with [ErrRoomNotRoutable], so
// nothing is delivered into a room nobody joined.
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
// The party server's reply text, which broadcastMessage returned, is
// discarded: nothing in the apps read it.
//
// # Errors
//
// [New] fails with an error matching [realtime.ErrNotConfigured] when no base
// URL is configured or it is unusable. Publish returns, before sending
// anything, ctx's error when ctx is already done, a
// [*realtime.ValidationError] for an invalid message (rooms partysocket
// cannot join under their own id, the rooms "." and ".." included, with
// reason [ErrRoomNotRoutable]), an error matching
// [realtime.ErrEncode] for a body that cannot be encoded, or a
// [*realtime.TooLargeError] for an envelope over [MaxEnvelopeBytes] (or
// [Options.MaxEnvelopeBytes]).
// A failed send is a [*realtime.PublishError] whose Transport is "partykit":
//
//   - [realtime.ErrUnavailable]: the server could not be reached, did not
//     answer in time, or answered 408, 429 or 500–599. These are retried; the
//     error reports the attempts made. When the caller's context ended the
//     publish, errors.Is(err, context.DeadlineExceeded) (or
//     [context.Canceled]) holds too.
//   - [realtime.ErrUnauthorized]: the server answered 401 or 403.
//   - [realtime.ErrRejected]: any other answer that is not a 2xx success,
//     such as 400 or 404, a redirect (3xx, never followed) or a status
//     outside 100–599. Never retried.
//
// A publish that was sent in full but got no answer fails with
// [realtime.ErrMaybeDelivered] and is not retried: the party may have
// broadcast it, and PartyKit has no idempotency key to drop a second copy.
//
// # Concurrency
//
// A [Provider] is safe for concurrent use by multiple goroutines; create one
// per process and share it. Its own HTTP client keeps connections alive
// between publishes; [Provider.Close] releases the idle ones and may be
// called any number of times.
package legacyparty
