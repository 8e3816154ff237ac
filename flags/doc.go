// Package flags decides, per publish, whether a realtime notification goes
// to PartyKit, to Inngest Realtime or to both, so the migration from one to
// the other is rolled out — and rolled back — per scope with feature flags,
// without a deploy.
//
// Each scope (see [ScopeOf]) moves through the modes in order:
//
//	legacy   → PartyKit only (the default while nothing is known)
//	shadow   → both; the UI reads PartyKit
//	primary  → both; the UI reads Inngest Realtime
//	realtime → Inngest Realtime only
//
// Turning a flag back (or tripping the kill switch) takes effect on the next
// publish with a provider that reports changes (an OpenFeature
// PROVIDER_CONFIGURATION_CHANGED event, as flag services' providers, the
// in-memory provider and [EnvProvider] over a file emit), and within
// Options.CacheTTL (1s by default) with one that does not; see Caching.
//
// The [Resolver] interface is what the broadcast package consumes. [Fixed]
// is a constant Resolver; [Evaluator] reads OpenFeature flags through an
// injected client; [EnvProvider] is an OpenFeature provider over environment
// variables and a flags file for deployments without a flag service.
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
// and inngest (realtime) are accepted. [Scope.ModeKey] is a scope's key;
// [KillSwitchKey] is the kill switch.
//
// For every call, [Evaluator.Mode] evaluates the kill switch, then the
// scope's key, then realtime-default-mode, and stops at the first answer. A
// flag that is absent (FLAG_NOT_FOUND), disabled or evaluates to "" passes
// to the next step; any other failure stops there and answers the last known
// mode (see Fallbacks) — a broken scope flag never borrows the default
// flag's mode.
//
// Every evaluation carries an evaluation context whose targeting key is the
// room, with these attributes (the names a flag service's targeting rules
// use):
//
//	| attribute   | value                                    | sent         |
//	|-------------|------------------------------------------|--------------|
//	| app         | Options.App ("astro-party")              | unless empty |
//	| environment | Options.Environment ("production")       | unless empty |
//	| scope       | the scope of the publish ("video-ready") | always       |
//	| room        | the room (also the targeting key)        | always       |
//
// A flag service can thus target by app, environment, scope or room, or
// split rooms by percentage on the targeting key; all publishes to one room
// get the same mode.
//
// # Environment variables
//
// [EnvProvider] serves the same keys from the environment and, with
// EnvOptions.File, from a flags file of the same variables as KEY=VALUE
// lines (a variable in the file beats the environment). For a mode key
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
// fallback — not a silent step to the next variable. [EnvVariables] lists
// the variables of the table, for a program (or a test) that unsets them so
// that only its flags file counts.
//
// When a change applies:
//
//   - The process environment (os.LookupEnv) cannot change from outside a
//     running process: a variable set there applies from the next start.
//     It is read on every evaluation that misses the cache, so a change the
//     program makes itself (os.Setenv, t.Setenv in a test) emits no event
//     and applies within Options.CacheTTL.
//   - The flags file applies while the process runs. The provider re-reads
//     it every EnvOptions.PollInterval (250ms by default) and on
//     [EnvProvider.Refresh], compares its content, and on a change emits a
//     configuration-change event on which the [Evaluator] drops its cache:
//     an edit (REALTIME_KILL_SWITCH=true included) applies to the first
//     publish after the provider read it — at most PollInterval later, at
//     once after Refresh. Write the file atomically (a temporary file and a
//     rename) so that it is never read half-written. A missing file sets
//     nothing; a file that cannot be read makes every flag an error, so the
//     Evaluator answers the last known modes and counts the fallbacks.
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
//	defer ev.Close()
//	mode := ev.Mode(ctx, flags.ScopeOf("video.asset.ready"), videoResourceID)
//	if mode.PublishesRealtime() { … }
//
// Optional settings are an *Options struct, nil meaning every default, as in
// the rest of the module: a struct literal documents itself, every default
// sits next to its field, and adding a field breaks no caller.
//
// # Caching
//
// [Evaluator.Mode] remembers the mode it resolved for each (scope, room) —
// up to 512 rooms per scope, in a lock-free table — and answers a publish to
// the same room from it, without calling the SDK, while the entry is fresh:
// younger than Options.CacheTTL (1s by default; negative turns the cache
// off) and resolved since the provider last emitted a configuration-change,
// ready, error or stale event. The Evaluator subscribes to those events on
// its client when it is created; [Evaluator.Close] unsubscribes it. The SDK
// delivers events on goroutines of its own, so "the next publish" means the
// first one after the event was delivered, microseconds after the provider
// emitted it. A cached answer costs tens of nanoseconds and no allocation;
// an evaluation, two or three SDK calls on a goroutine of their own,
// several microseconds.
//
// # Fallbacks
//
// In primary and realtime modes browsers read Inngest Realtime, so answering
// legacy because the flag service is slow would publish notifications no
// browser receives. Whatever goes wrong, [Evaluator.Mode] therefore answers
// the last mode it resolved for the scope: the room's own entry when it has
// one (expired or not), else the latest mode resolved for any room of the
// scope. Only when nothing has been resolved for the scope yet — since the
// Evaluator was created — does it answer legacy, the mode in production
// before the migration. A late answer from an evaluation that outlived its
// call still becomes the last known mode. Scopes outside [Scopes] have a
// last known mode of their own for the first 64 of them; further ones fall
// back to legacy.
//
// Each fallback logs a Warn (fields scope, flag, reason, room, answer, mode,
// error) and adds one to the OpenTelemetry counter realtime.flag.fallbacks
// (created with Options.Meter) with the attributes scope, reason and answer
// ("last_known", or "default" when legacy was answered because nothing was
// known):
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
// Every scope of [Scopes] has the series reason=provider_error,
// answer=last_known at zero from NewEvaluator on, so that a dashboard of a
// healthy app reads 0, not "No data".
//
// The kill switch answering legacy, and no flag being set at all, are not
// fallbacks: they are the flags working.
//
// Log lines are rate limited per scope and reason (one per
// Options.LogInterval, 10s by default, the next one carrying a "suppressed"
// count) while the counter counts every fallback. A flag service outage
// makes every uncached publish fall back; one Warn per publish would flood
// the logs exactly when they are needed, whereas the counter is what alerts
// and dashboards should read.
//
// # Errors
//
// None from a [Resolver]: it cannot fail. Every problem resolves to the last
// known mode (or [Legacy] before anything is known) and is reported through
// the logger and the counter instead. [ParseMode] returns an error for an
// unknown mode, and [EnvProvider.Refresh] one for a flags file that cannot be
// read; [Evaluator.Close] always returns nil.
//
// # Concurrency
//
// An [Evaluator], an [EnvProvider] and [Fixed] are safe for concurrent use.
// An [Evaluator.Mode] call that is not answered from the cache evaluates on a
// goroutine of its own so that it can return at its deadline; a provider that
// ignores its context keeps that goroutine until it returns, and
// Options.MaxInFlight bounds how many such goroutines can pile up. No test of
// this package depends on an evaluation beating that deadline. An Evaluator
// starts no other goroutine. An [EnvProvider] with a file runs one goroutine
// that polls the file, from Init to Shutdown, which the OpenFeature API calls
// when the provider is set and when the API is shut down (or the provider
// replaced).
package flags
