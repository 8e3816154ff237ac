// Package broadcast multicasts realtime messages to PartyKit and Inngest
// Realtime during the migration from one to the other.
//
// A [Broadcast] is a [realtime.Provider]. For each message it finds the
// scope of the event name (flags.ScopeOf), asks a [flags.Resolver] for that
// scope's mode, and publishes:
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
// start of the publish). Past the budget it goes on in the background, bounded
// by Options.ShadowTimeout, so a slow delivery still lands and is logged;
// [Broadcast.Close] waits for those. The mode is resolved on every publish:
// flipping a flag off puts PartyKit back on the very next message.
//
// Wiring it up:
//
//	party, err := legacyparty.New(nil) // NEXT_PUBLIC_PARTY_KIT_URL
//	if err != nil {
//		return err
//	}
//	inngest, err := realtime.NewInngest(nil) // INNGEST_* variables
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
// budget, detached=true. Never the body, never a key.
//
// # Metrics
//
// Through the OpenTelemetry metric API (no-op unless Options.Meter is set),
// all with the attributes transport, mode, scope and outcome (ok, error,
// timeout, canceled, panic):
//
//	realtime.broadcast.publishes  counter    every publish to a transport
//	realtime.broadcast.errors     counter    the ones that failed
//	realtime.broadcast.duration   histogram  latency in seconds, retries included
//	realtime.broadcast.detached   counter    publishes that outlived the shadow budget
//
// Flag evaluation fallbacks are counted by package flags.
//
// # Errors
//
// An invalid message is refused before any transport with the
// [*realtime.ValidationError] as is. Otherwise Publish returns the
// errors.Join of one [*TransportError] per failed transport that counts in
// the mode, which unwraps to the provider's error (errors.Is(err,
// realtime.ErrUnavailable) works). A panicking provider is contained and
// reported as [ErrPanic]. After Close, Publish returns [ErrClosed].
//
// # Concurrency
//
// A Broadcast is safe for concurrent use. Each publish to two transports
// starts one goroutine, which ends within ShadowTimeout.
package broadcast
