// Package chunkstream publishes a streamed response (an AI chat completion
// arriving as many small text deltas) through a [realtime.Provider], the way
// course-builder's TypeScript OpenAI provider does over PartyKit: the deltas
// are buffered and flushed every 250 ms as one message
//
//	{"body":"<the text of this window>","requestId":"<chat id>","name":"ai.message","id":"<stream>.<n>"}
//
// and the end of the response is a last message whose body is the literal
// `\ok` ([EndMarker]). UIs that read the legacy envelope keep working. The
// id numbers the stream's messages: the stream's own id (a UUIDv7), a dot,
// and n = 1, 2, 3, … for every message of the stream, the end marker
// included. Through a broadcast.Broadcast the replay log also gives each
// message the room's next seq (see package realtime), which orders the
// stream's messages with the room's others, lets a client see a gap and
// ask for what it missed; two chunks with the same text are two ids, so
// neither is dropped as a copy of the other. Messages are published to the
// room named after the request id unless [Options.Room] says otherwise.
//
// A [Stream] publishes one response:
//
//	s, err := chunkstream.New(ctx, provider, chatID, nil)
//	if err != nil {
//		return err
//	}
//	for delta := range deltas {
//		if err := s.PublishChunk(delta); err != nil {
//			// ErrBufferFull: the provider is behind; delta was not accepted.
//		}
//	}
//	return s.Close(ctx) // the rest of the text, then `\ok`
//
// [Pump] does the same from a function that returns the next delta, such as
// the Recv of an OpenAI-compatible chat completion stream, waiting for room
// instead of failing.
//
// What the stream guarantees: concatenating the bodies of its messages in
// the order of n, without the end marker, gives exactly the text that
// PublishChunk accepted; a flush whose text does not fit in one message
// ([Options.MaxMessageBytes], at most [realtime.MaxEnvelopeBytes]) becomes
// several, cut between characters, and happens early once a message is
// full; a character split between two deltas is published whole, and
// nothing is ever published as U+FFFD (text that is not valid UTF-8 is
// refused, see below); a text message never has a body equal to the end
// marker (text that would is cut
// in two: `\o`, then `k`). A message is created once, never changes, and
// is offered to the provider once: an id never names two texts, and the
// stream never sends a message again (the provider's own retries repeat
// the same envelope, the same id).
//
// The flag decision is taken once per stream: when the provider implements
// [realtime.Pinner] (broadcast.Broadcast does), New pins it, so the
// transport chosen at the start carries the whole response even if the flag
// flips meanwhile.
//
// # Text-stream mode
//
// With [Options.TextStream], and a provider that implements
// [realtime.StreamPublisher] once pinned (a
// [*github.com/coursebuilder/realtime-go/realtime/inngest.Provider] used
// directly), the text goes through Inngest Realtime's streaming publish
// instead: one request whose body grows as the response does, delivered to
// subscribers as "datastream-start", "chunk" and "datastream-end" messages
// (several streams, one after the other, for a long response: see
// [github.com/coursebuilder/realtime-go/realtime/inngest.Provider.PublishStream]).
// The Inngest server cuts a stream at its own read boundaries and would
// damage a multi-byte character cut in two, so the text is sent escaped to
// ASCII, as the inside of a JSON string literal. JSON.parse('"' +
// chunks.join("") + '"') in a browser, and in Go
//
//	err := json.Unmarshal([]byte(`"`+strings.Join(chunks, "")+`"`), &text)
//
// turn the concatenated data of the chunk messages (every datastream's, in
// the order the streams started) back into the text. The end marker is
// still an ordinary message after the streams, with n = 1. A stream is not
// retried (not by the provider either: it cannot be sent twice without
// showing its text twice): a failure fails the Stream.
//
// # Errors
//
// [Stream.PublishChunk] fails with [ErrBufferFull] when the stream already
// holds [Options.MaxBuffered] bytes not yet published (the text is not
// accepted; offer it again later), with [ErrClosed] after Close, with the
// stream's [*FailedError] once it failed, and with an error matching
// [realtime.ErrInvalidUTF8] for text that is not valid UTF-8 and cannot
// become so: PublishChunk may end in the middle of a character, and the
// next call must then begin with the bytes that complete it; any other
// invalid sequence is refused, the whole text with it, and the stream stays
// as it was, ready for the next valid text (so the refused text is not
// buffered, and the text before and after it is published). A character
// still incomplete when the stream is closed is not published. New fails
// with a [*realtime.ValidationError] for a room, name or request id that
// cannot be published.
//
// A Stream does not retry: the provider's retry policy is the one retry loop
// ([github.com/coursebuilder/realtime-go/realtime/inngest.Options.Retry] and
// legacyparty.Options.Retry retry a transient failure, such as a 503, within
// the Publish call), so a message costs at most the provider's attempts,
// never a multiple of them. A publish that fails anyway, whatever the error
// (a transport still unavailable after the provider's retries, a rejected
// message, a provider's panic, an error that matches
// [realtime.ErrMaybeDelivered] such as a broadcast whose Inngest answered
// 503 and whose PartyKit fallback may have delivered), fails the stream for
// good: its message is never offered again, so a message that may have been
// delivered is never sent twice; nothing more is published, not even the end
// marker, and [Stream.Err], Close and PublishChunk return a [*FailedError]
// that matches the provider's error and says from which n text is
// missing. Close does not try again either: a failure before or
// during Close is final. The end of New's context, or of Close's before
// Close is done, fails the stream the same way with the context's error.
//
// # Concurrency
//
// A Stream is safe for concurrent use, though deltas of one response are
// naturally published from one goroutine: concurrent PublishChunk calls are
// ordered as they take the mutex. PublishChunk never waits for the
// provider: it appends to a buffer under a mutex, so its cost is that of
// copying the text. One goroutine per Stream flushes, so at most one
// publish is in flight and messages are published in the order of n; in
// text-stream mode a second goroutine runs the streaming request. Close
// waits for both to end, or ends them when its context does. A provider
// that ignores its context's cancellation (none in this module does) could
// hold Close until it returns.
package chunkstream
