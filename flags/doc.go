// Package flags decides, per publish, whether a realtime notification goes
// to PartyKit, to Inngest Realtime or to both, so the migration from one to
// the other is rolled out — and rolled back — per scope with feature flags,
// without a deploy.
//
// Each scope (see [ScopeOf]) moves through the modes in order:
//
//	legacy   → PartyKit only (the default, and every failure's answer)
//	shadow   → both; the UI reads PartyKit
//	primary  → both; the UI reads Inngest Realtime
//	realtime → Inngest Realtime only
//
// Turning a flag back (or tripping the kill switch) takes effect on the next
// publish: flags are evaluated on every call and no flag value is cached.
//
// The [Resolver] interface is what the broadcast package consumes. [Fixed]
// is a constant Resolver; [Evaluator] reads OpenFeature flags through an
// injected client; [EnvProvider] is an OpenFeature provider over environment
// variables for deployments without a flag service.
//
// # Flag keys
//
//	| key                              | type   | values                               | default (unset) |
//	|----------------------------------|--------|--------------------------------------|-----------------|
//	| realtime-kill-switch             | bool   | true forces legacy for every scope   | false           |
//	| realtime-video-upload-mode       | string | legacy, shadow, primary, realtime    | → default-mode  |
//	| realtime-video-ready-mode        | string | (as above)                           | → default-mode  |
//	| realtime-video-errored-mode      | string | (as above)                           | → default-mode  |
//	| realtime-transcript-mode         | string | (as above)                           | → default-mode  |
//	| realtime-ai-stream-mode          | string | (as above)                           | → default-mode  |
//	| realtime-default-mode            | string | (as above)                           | legacy          |
//
// Mode values are read by [ParseMode]: case-insensitive, and the aliases
// party, partykit and off (legacy), realtime-primary (primary), realtime-only
// and inngest (realtime) are accepted. [ModeKey] builds a scope's key;
// [KillSwitchKey] is the kill switch.
//
// For every call, [Evaluator.Mode] evaluates the kill switch, then the
// scope's key, then realtime-default-mode, and stops at the first answer. A
// flag that is absent (FLAG_NOT_FOUND), disabled or evaluates to "" passes
// to the next step; any other failure answers legacy straight away (see
// Fallbacks) — a broken scope flag never borrows the default flag's mode.
//
// Every evaluation carries an evaluation context whose targeting key is the
// room, with the attributes app and environment (from [Options], omitted
// when empty), scope and room, so a flag service can target by app,
// environment or room, or split rooms by percentage on the targeting key.
// All publishes to one room therefore get the same mode.
//
// # Environment variables
//
// [EnvProvider] serves the same keys from the environment. For a mode key
// the first variable, in this order, that is set and not blank wins; if none
// is, the key is unset (and the [Evaluator] moves on to realtime-default-mode):
//
//	| precedence | variable                         | applies to            | accepts                         |
//	|------------|----------------------------------|-----------------------|---------------------------------|
//	| 1          | REALTIME_<SCOPE>_MODE            | that scope            | a mode name                     |
//	| 2          | ENABLE_REALTIME_<SCOPE>          | that scope, not       | true → shadow, false → legacy,  |
//	|            |                                  | default               | or a mode name                  |
//	| 3          | ENABLE_REALTIME_VIDEO_REALTIME   | every video-* scope   | as 2                            |
//	| —          | REALTIME_KILL_SWITCH             | realtime-kill-switch  | true/false (1/0, yes/no, on/off)|
//
// <SCOPE> is the scope in upper case with '-' as '_': REALTIME_VIDEO_READY_MODE,
// REALTIME_AI_STREAM_MODE, REALTIME_DEFAULT_MODE; ENABLE_REALTIME_VIDEO_UPLOAD,
// ENABLE_REALTIME_VIDEO_READY and ENABLE_REALTIME_TRANSCRIPT are the
// migration plan's per-channel switches, ENABLE_REALTIME_VIDEO_REALTIME its
// per-app video switch. The more specific variable wins, so
// ENABLE_REALTIME_VIDEO_READY=true with ENABLE_REALTIME_VIDEO_REALTIME=false
// is shadow for video-ready and legacy for the other video scopes; to turn
// everything off at once, set REALTIME_KILL_SWITCH=true, which beats them
// all. Booleans and modes are case-insensitive. A value that does not parse
// makes that flag a PARSE_ERROR, that is legacy plus a logged, counted
// fallback — not a silent step to the next variable. The environment is read
// on every evaluation, so a changed variable applies on the next publish.
//
// # Example
//
//	api := isolated.NewAPI() // never the global singleton
//	if err := api.SetProviderAndWait(ctx, flags.NewEnvProvider(nil)); err != nil {
//		return err
//	}
//	defer api.Shutdown(ctx)
//	ev := flags.NewEvaluator(api.NewClient(), &flags.Options{
//		App: "astro-party", Environment: "production", Logger: log, Meter: meter,
//	})
//	mode := ev.Mode(ctx, flags.ScopeOf("video.asset.ready"), videoResourceID)
//	if mode.PublishesRealtime() { … }
//
// Optional settings are an *Options struct, nil meaning every default, as in
// the rest of the module: a struct literal documents itself, every default
// sits next to its field, and adding a field breaks no caller.
//
// # Fallbacks
//
// Whatever goes wrong, [Evaluator.Mode] answers legacy, logs a Warn (fields
// scope, flag, reason, room, error) and adds one to the counter
// realtime.flag.fallbacks ([FallbackMetric]) with the attributes scope and
// reason:
//
//	| reason             | cause                                                            |
//	|--------------------|------------------------------------------------------------------|
//	| no_provider        | nil client                                                       |
//	| provider_not_ready | the client's provider is NOT_READY — including an isolated API   |
//	|                    | on which no provider was set — or answered PROVIDER_NOT_READY    |
//	| provider_fatal     | the provider is in the FATAL state                               |
//	| timeout            | the evaluation did not finish within Options.Timeout (50ms)      |
//	| canceled           | the caller's context was canceled                                |
//	| saturated          | Options.MaxInFlight evaluations are still running (a hung        |
//	|                    | provider); answered at once without starting another             |
//	| provider_error     | any other error from the provider or a hook                      |
//	| type_mismatch      | a flag of the wrong type (e.g. a bool mode flag)                 |
//	| parse_error        | the provider could not parse the flag's configuration            |
//	| invalid_mode       | a mode flag whose value [ParseMode] rejects                      |
//	| panic              | the provider or a hook panicked (recovered)                      |
//
// The kill switch answering legacy, and no flag being set at all, are not
// fallbacks: they are the flags working.
//
// Log lines are rate limited per scope and reason (one per
// Options.LogInterval, 10s by default, the next one carrying a "suppressed"
// count) while the counter counts every fallback. A flag service outage
// makes every publish fall back; one Warn per publish would flood the logs
// exactly when they are needed, whereas the counter is what alerts and
// dashboards should read.
//
// # Errors
//
// None. A [Resolver] cannot fail: every problem resolves to [Legacy], the
// mode that was in production before the migration, and is reported through
// the logger and the counter instead. [ParseMode] is the only function that
// returns an error.
//
// # Concurrency
//
// An [Evaluator], an [EnvProvider] and [Fixed] are safe for concurrent use
// and hold no per-call state. Each [Evaluator.Mode] call evaluates on a
// goroutine of its own so that it can return at its deadline; a provider that
// ignores its context keeps that goroutine until it returns, and
// Options.MaxInFlight bounds how many such goroutines can pile up.
package flags
