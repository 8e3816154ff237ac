// Package inngest is the Inngest Realtime transport of realtime-go: a
// [realtime.Provider] that publishes over HTTP, streams text, mints
// subscription tokens, and a Go subscriber that follows a channel over
// Inngest's websocket.
//
// [New] returns a [*Provider] configured as the official Inngest SDKs
// configure themselves, from [Options] and the INNGEST_* variables. Its
// Publish posts the envelope of a [realtime.Message] to
// POST /v1/realtime/publish on the channel and topic that a [Mapping]
// derives from the room and name. [Provider.PublishStream] uses Inngest's
// native streaming publish ([realtime.StreamPublisher]; package chunkstream
// builds on it). [Provider.SubscriptionToken] mints the short-lived [Token]
// that browsers and Go subscribers need (package tokens serves them to
// browsers).
//
//	p, err := inngest.New(nil) // INNGEST_BASE_URL, INNGEST_SIGNING_KEY, REALTIME_CHANNEL_SECRET, …
//	if err != nil {
//		return err
//	}
//	defer p.Close()
//	err = p.Publish(ctx, realtime.Message{
//		Room: videoID, Name: "video.asset.ready", RequestID: videoID, Body: asset,
//	})
//
// Options are passed as an *Options struct in which nil, and every zero
// field, means the documented default, as in every package of this module.
//
// # Rooms stay apart: the channel secret
//
// The Inngest server routes subscriptions by an unseeded 64-bit hash of the
// channel name, so two channels whose names collide share subscribers, and
// such a pair of names can be computed in milliseconds. A [Provider]
// therefore never publishes on a channel a client could choose: by default
// the wire channel is a keyed HMAC of the mapped room name ("rtk1_" and 256
// bits of HMAC-SHA256 under [Options.ChannelSecret], from
// REALTIME_CHANNEL_SECRET, the same on every instance, at least 32 bytes).
// Browsers take the channel from the token answer and need no change.
// [Provider.Channel] returns a room's wire channel. [Mapping.Unkeyed] opts
// out, at the risk its doc describes.
//
// # Tokens and the Go subscriber
//
// Inngest Realtime admits a subscriber only with a short-lived JWT (one
// minute) scoped to one channel and its topics. [Provider.SubscriptionToken]
// mints one. [Subscribe] is a Go subscriber that calls a token function for
// its tokens ([Provider.TokenFunc] mints them with a provider) and
// reconnects (with a fresh token when the old one is refused) whenever the
// server asks it to or the connection drops:
//
//	sub, err := inngest.Subscribe(ctx, p.BaseURL(), p.TokenFunc(videoID, "video.asset.ready"),
//		func(m inngest.Message) { … }, nil)
//	if err != nil { … }
//	defer sub.Close()
//
// Inngest checks a token only when a connection opens: a connection
// outlives its token, so nothing is reopened because a token expired. What
// expires is the token a reconnection would use: a [Subscriber] keeps its
// token between connections, gets a new one shortly before it expires
// ([SubscriberOptions].TokenMargin, 10 s by default) and throws it away when
// Inngest refuses it.
//
// Inngest Realtime has no replay. The server hands a message to the
// connections subscribed when it fans the message out and keeps nothing:
// on their own, messages published while a subscriber is disconnected, or
// connected but not yet subscribed by the server, are lost.
// [SubscriberOptions].CatchUp repairs that from the replay log (a
// Broadcast numbers every message it publishes, per room, and keeps it;
// see package replay): a [Subscriber] then delivers every numbered message
// once, in seq order, whichever of its connections, its catch-ups or
// [Subscriber.Offer] (the PartyKit websocket during shadow mode) brought it
// first. It catches up on every connect and whenever a seq is skipped, on
// "closing" it opens the new connection before it closes the old one, and
// it drops what it delivered already. A message without seq (published
// while the log was down) is delivered as it arrives, once per id. What the
// log no longer holds (its epoch changed, or retention dropped it) is lost:
// the subscriber logs it, counts it ([Subscriber.Resets]) and calls
// SubscriberOptions.OnReset, in order with the messages, so that the
// program reloads the state it shows, then goes on with what the log still
// holds. Without CatchUp, a program that must not miss a state change
// should read the current state after it (re)subscribes.
//
// A [Subscriber] delivers only frames of its token's channel and topics: a
// frame for any other channel or topic (which the server can route to it
// when two channel names collide under its 64-bit hash) is dropped, counted
// by [Subscriber.Misrouted] and logged without its payload. It logs its
// reconnections; no log line or error contains a token or a key.
//
// # Errors
//
// [New] fails with an error matching [realtime.ErrNotConfigured]. Publish
// and PublishStream return the errors of package realtime: a
// [*realtime.ValidationError] (with Reason [ErrMappingPanicked] for a
// Mapping function that panicked), an error matching [realtime.ErrEncode],
// a [*realtime.TooLargeError], or a [*realtime.PublishError] matching
// [realtime.ErrUnauthorized], [realtime.ErrRejected] or
// [realtime.ErrUnavailable]; a stream the server cut short is a
// [*realtime.PublishError] matching [ErrStreamTruncated]. A token answer
// that is not a usable token matches [ErrInvalidToken]. [Subscribe] returns
// errors of the first connection: the token function's error wrapped
// ("tokens: fetch token: …"; errors.Is and errors.As reach it), ctx.Err(),
// or a handshake Inngest refused. Once subscribed, failures are retried,
// with backoff, until Close, and logged. No error, log line or formatted
// value contains a signing key, a channel secret or a token's JWT.
//
// # Concurrency
//
// Provider and Subscriber are safe for concurrent use; one Provider shares
// its keep-alive connections between all callers. Publish blocks until
// Inngest answered, the retries are exhausted or ctx ends. A Subscriber runs
// a goroutine that connects (calling the token function when it needs a
// token) and reads the websocket without pause, one that calls the
// handler, one message at a time, in order, and with CatchUp one that
// catches up; its Close ends them all, waiting for a handler, token or
// CatchUp call in progress, so it must not be called from the handler.
package inngest
