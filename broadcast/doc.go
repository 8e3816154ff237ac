// Package broadcast multicasts realtime messages to PartyKit and Inngest
// Realtime during the migration from one to the other.
//
// A [Broadcast] is a [realtime.Provider]. For each message it validates and
// encodes the envelope once ([realtime.NewEnvelope]), finds the scope of the
// event name (flags.ScopeOf), asks a [flags.Resolver] for that scope's mode,
// and publishes the same envelope to the transports of the mode (each that
// is a [realtime.EnvelopePublisher] sends its bytes as they are):
//
//	mode      PartyKit   Inngest    outcome that counts
//	legacy    yes        -          PartyKit
//	shadow    yes        yes        PartyKit (realtime failures are logged, never returned)
//	primary   yes        yes        Inngest (PartyKit failures are logged, never returned)
//	realtime  -          yes        Inngest (optionally falling back to PartyKit)
//
// With two transports the publishes run concurrently, so the added latency
// is that of the slower one, and the one that does not count can delay the
// call by at most Options.ShadowBudget (250ms by default, measured from the
// start of the publish). Past the budget it goes on in the background, so a
// slow delivery still lands and is logged; [Broadcast.Close] waits for
// those. Options.ShadowTimeout bounds that publish from its start, whether
// it outlived the budget or not: its context ends ShadowTimeout after it
// started (5s by default). The mode is asked of the Resolver on every
// publish: with flags.Evaluator a flip applies to the next publish after the
// flag provider reports it (at once for providers that emit change events,
// within flags.Options.CacheTTL otherwise; see package flags, # Caching).
//
// The Broadcast is the one place that says where a room's messages go:
// [Broadcast.Route] gives, for a room and event name, its scope, its mode
// and the Inngest channel and topic, and the token endpoint (package tokens)
// serves browsers from it, so that they listen where messages go.
//
// Both providers are required: [New] refuses a nil one, typed nil included,
// with [ErrNilProvider]. Neither Broadcast nor the flags refuse a message by
// size: each transport applies its own limit, so a message over Inngest's
// [realtime.MaxEnvelopeBytes] still reaches PartyKit, whose limit is larger,
// in legacy and shadow modes.
//
// # The replay log
//
// Every message enters the replay log (Options.Log; package replay) once,
// before it fans out: the log gives it the room's next seq, and both
// transports carry the same envelope, with its id, seq and epoch. A
// client that sees a seq more than one above the last it delivered, or that
// (re)connects, asks what it missed ([Broadcast.History]; the token
// endpoint's catch-up request for browsers) and delivers each id once, so
// nothing published while it was away is lost or shown twice. A message
// published again under an id the room's log holds (a retried Inngest
// step) keeps its first seq and is sent again, so that a delivery that
// failed the first time is repaired; clients drop the copy by id. An
// append that fails, or takes over a second, does not hold the publish
// back: the message goes out without seq (clients deliver it as it comes),
// the failure is logged at Error ("realtime: replay log append failed;
// published without seq") and counted in realtime.broadcast.log_appends
// with outcome "error".
//
// # When the mode is in doubt
//
// A resolver answer that is not [flags.Mode.Known] is taken as Legacy, the
// safe default of package flags. When the Resolver panics,
// the mode cannot be known and the browsers may read either transport, so
// the publish runs in Shadow mode: both transports are attempted, and
// PartyKit's outcome is the one returned. The panic is contained (Publish,
// Pin and Route never panic), logged at Error as "realtime: mode resolution
// failed" and counted in realtime.broadcast.resolver_failures. A Pin made
// then pins Shadow.
//
// Wiring it up:
//
//	party, err := legacyparty.New(nil) // NEXT_PUBLIC_PARTY_KIT_URL
//	if err != nil {
//		return err
//	}
//	inngest, err := inngest.New(nil) // INNGEST_* variables
//	if err != nil {
//		return err
//	}
//	b, err := broadcast.New(party, inngest, &broadcast.Options{
//		Resolver: flags.NewEvaluator(client, &flags.Options{App: "astro-party"}),
//		Logger:   logger,
//		Meter:    otel.Meter("realtime"),
//	})
//	if err != nil {
//		return err
//	}
//	defer b.Close(context.Background())
//	err := b.Publish(ctx, realtime.Message{Room: videoID, Name: "video.asset.ready", Body: payload})
//
// # Logs
//
// One line per transport per publish, "realtime: publish", at Info (Warn on
// failure), with the fields transport, mode, scope, channel, topic, room,
// request_id, latency, outcome, error and, for a delivery that outlived the
// budget, detached=true. The channel and topic are those the realtime
// provider publishes on (an *inngest.Provider's Channel and Topic, keyed
// channels included, so they match the token's), empty for a provider that
// names none; mapping_error when its mapping failed to name them. The error
// field is on one line: the line breaks of
// a joined error become "; ". Never the body, never a key.
//
// A mode that could not be resolved as asked (see above) adds one line,
// "realtime: mode resolution failed", with the fields cause, scope, room,
// name, mode (the one used) and error.
//
// # Mode changes
//
// Every change of a scope's mode that the Broadcast observes — on a
// publish, a Route, or a collection of the mode gauge — is the plan's
// communication log of a flip: one Info line, "realtime: mode changed",
// with the fields scope, from, to, lasted (how long from was in force)
// and, per transport published to meanwhile, <transport>_publishes,
// <transport>_errors and <transport>_p99; the first mode seen for a scope
// has initial=true instead of from. The same [ModeChange] goes to
// Options.OnModeChange, for a canary or a chat notifier. The mode of a
// scope is the one resolved last: a flag that splits one scope's rooms
// between modes (a percentage rollout) makes it alternate, and each
// alternation is a change.
//
// # Metrics
//
// Through the OpenTelemetry metric API (no-op unless Options.Meter is set),
// all with the attributes transport, mode, scope and outcome (ok, error,
// timeout, canceled, panic, too_large; timeout is also a shadow leg cut by
// Options.ShadowTimeout):
//
//	realtime.broadcast.publishes  counter    every publish to a transport
//	realtime.broadcast.errors     counter    the ones that failed
//	realtime.broadcast.duration   histogram  latency in seconds, retries included
//	realtime.broadcast.detached   counter    publishes that outlived the shadow budget
//
// and, with the attributes scope, cause (resolver_panic, unknown_mode) and
// mode (the one used instead):
//
//	realtime.broadcast.resolver_failures  counter  modes that could not be resolved as asked
//
// and, with the attribute outcome (ok, duplicate, error):
//
//	realtime.broadcast.log_appends  counter  appends to the replay log
//
// and, with the attributes scope and mode, for every scope the Broadcast
// has resolved a mode for (a publish, Route or Pin), 1 for the mode in
// force and 0 for the other three:
//
//	realtime.broadcast.mode  gauge  the mode in force per scope
//
// The gauge resolves each scope's mode again at every collection (for the
// room seen last), so a flip or a rollback shows at the next scrape even
// while nothing is published; "what mode is live" is
// realtime_broadcast_mode == 1, no rate window. A healthy app's failure
// series exist at zero from the start: errors of each transport of a
// scope's mode, detached publishes of the transport that does not count,
// resolver failures, and log appends with outcome error.
//
// too_large is a transport refusing the envelope as over its size limit
// ([realtime.ErrPayloadTooLarge]); nothing was sent to it. In shadow mode
// that is Inngest refusing a message PartyKit delivered.
//
// Flag evaluation fallbacks are counted by package flags.
//
// # Errors
//
// An invalid message, or a body that cannot be encoded, is refused before
// any transport with the [*realtime.ValidationError] or [realtime.ErrEncode]
// error as is. Otherwise Publish returns the
// errors.Join of one [*TransportError] per failed transport that counts in
// the mode, which unwraps to the provider's error (errors.Is(err,
// realtime.ErrUnavailable) works, and so does errors.As with a
// [*realtime.TooLargeError] in primary and realtime modes). A panicking
// provider is contained and reported as [ErrPanic]; a provider that returns
// a nil pointer as its error (error((*realtime.PublishError)(nil))) has
// failed, reported as [ErrNilError]. After Close, Publish returns
// [ErrClosed].
//
// # Concurrency
//
// A Broadcast is safe for concurrent use. Each publish to two transports
// starts one goroutine, which ends within ShadowTimeout of its start (if the
// provider honours its context). Close waits for every publish in flight,
// background ones included; once it returned nil, no provider is called
// again.
package broadcast
