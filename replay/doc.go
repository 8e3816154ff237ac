// Package replay is the history of each room, so that a browser that was
// away when a message was published can fetch what it missed. Inngest
// Realtime and PartyKit keep no history of their own.
//
// Every published message enters its room's [Log] once, before it fans
// out: [Log.Append] assigns the room's next seq (1, 2, 3, … with no gap and
// no repeat, across every process sharing the log) and stores the envelope
// with that seq in it; [Log.After] returns the messages of a room after a
// given seq ("catch-up"). [NewMemory] is the embedded log, for an app that
// publishes from one process;
// [github.com/coursebuilder/realtime-go/replay/redislog] shares one log
// between instances through Redis. Both pass the same conformance suite.
//
//	log := replay.NewMemory(nil) // 1000 messages, 24 hours per room
//	e, err := log.Append(ctx, room, id, envelope)
//	// fan out e.Envelope, which ends in "seq":e.Seq,"epoch":e.Epoch}
//	page, err := log.After(ctx, room, lastSeen, 100)
//
// # The guarantee
//
// A room keeps its last 1000 messages for 24 hours by default (see
// [Retention]), each with its seq and the epoch of its numbering. A client
// remembers the epoch and the last seq it delivered; on every reconnect, and
// whenever a message's seq is not the next one, it asks for the messages
// after that seq and delivers them in order, skipping ids it has already
// delivered. Page.Head tells it where the room stands. When the page is
// Truncated (what it missed is older or more than retention keeps) or its
// Epoch is not the client's (the log lost the room's history and its seqs
// restarted at 1: a process restart for the memory log, a Redis restart
// without persistence), the client cannot repair the gap: it reloads the
// room's state from the app and continues from the page. A room with no
// message younger than MaxAge is forgotten, and its next message starts a
// new epoch.
//
// The defaults fit the notifications this module carries: a gap is a
// deploy, a network switch or a token renewal, seconds to minutes, and 24
// hours also covers a laptop closed overnight, after which a reload is
// cheap; 1000 messages outlast the longest burst one room sees in that time
// (a video's pipeline sends a handful; chunkstream flushes a streamed
// answer four times a second, a few hundred messages for a long one) while
// bounding an active room's memory to 1000 envelopes.
//
// Append is idempotent by id: the same id appended again to a room while
// its entry is retained returns the first entry with Duplicate set, so a
// retried Inngest step does not publish twice.
//
// Options are a *Retention in which nil, and each zero field, means the
// default, as everywhere in this module.
//
// # Errors
//
// Invalid arguments fail with an error matching [ErrInvalid] whose message
// says which argument and why; a closed log with [ErrClosed]; a context
// that ended before the call with an error matching its [context.Canceled]
// or [context.DeadlineExceeded]. A shared log that cannot reach its store
// fails with an error matching realtime.ErrUnavailable; Append is then
// safe to retry under the same id.
//
// # Concurrency
//
// Logs are safe for concurrent use. Appends to one room are serialised;
// appends to a shared log from several processes are too.
package replay
