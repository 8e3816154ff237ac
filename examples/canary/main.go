// Command canary checks, end to end, that a representative video
// notification published through the realtime facade reaches a subscriber
// on every transport the rollout mode enables: the migration plan's canary
// test ("assert realtime notification received via new provider while party
// fallback still active").
//
// It builds a broadcast.Broadcast from the environment, as an app does
// (inngest.New from the INNGEST_* variables when any is set,
// legacyparty.New when NEXT_PUBLIC_PARTY_KIT_URL is set), subscribes to a
// fresh room on each transport the mode publishes to, publishes one
// video.asset.ready event (a video-resource body like the TypeScript
// pipeline's, a unique request id) and prints, per transport, whether the
// subscriber received it, whether the payload is the envelope that was sent,
// how long the transport's publish took and how long the delivery took:
//
//	transport  received  payload = envelope         publish latency  delivery latency
//	partykit   yes       yes (as JSON; re-spelled)  5.1ms            5.9ms
//	inngest    yes       yes (same bytes)           1.2ms            1.9ms
//	PASS
//
// Latencies run from the start of Broadcast.Publish. "Payload = envelope"
// compares parsed JSON values: PartyKit's party relays
// JSON.stringify(await req.json()), which spells <, >, & and U+2028/U+2029
// as themselves where Go escapes them, so the bytes may differ although
// every browser parses the same value ("re-spelled"); Inngest Realtime
// delivers the envelope's bytes.
//
// # Running
//
//	cd examples && go run ./canary -local      # nothing needed but Go (and, optionally, npm ci --prefix ../harness/partykit/server)
//	INNGEST_SIGNING_KEY=signkey-… NEXT_PUBLIC_PARTY_KIT_URL=my-party.partykit.dev \
//	  go run ./canary -flags /etc/app/realtime.flags     # staging: the app's endpoints and flags
//	go run ./canary -mode primary -deadline 2s          # a fixed mode, whatever the flags say
//	go run ./canary -flags /etc/app/realtime.flags -n 0 -every 5s   # every 5s until ^C, with the flip log
//
// With -local, or when no INNGEST_* variable and no NEXT_PUBLIC_PARTY_KIT_URL
// is set, the canary runs against local servers: the harness's in-process
// Inngest realtime endpoint (the Inngest server's own realtime code) and,
// when its node project is installed, the real PartyKit dev server; without
// it, Inngest alone is checked.
//
// # Mode
//
// By default the canary reads the app's flags the way the app does and
// publishes in the mode they give: a flags.Evaluator (cache 1s, as the
// app's) over
//
//   - the app's flags file (-flags path, flags.EnvOptions.File, re-read
//     every 250ms) and the process environment, through flags.EnvProvider:
//     REALTIME_KILL_SWITCH, REALTIME_VIDEO_READY_MODE,
//     ENABLE_REALTIME_VIDEO_READY, ENABLE_REALTIME_VIDEO_REALTIME, … (unset
//     means legacy); run it with the app's environment and its flags file;
//   - or the app's flag service, through its OpenFeature provider. No
//     flag-service provider is compiled in (none is a dependency of this
//     repository): a deployment with one adds a file to this directory,
//     func init() { flagsource.ServiceProvider = <the provider the app
//     uses> }, and the canary then reads the flag service instead of the
//     file and the environment. -app and -environment set the evaluation
//     context attributes the app sends.
//
// The report prints the mode of every scope as the app resolves it for the
// canary's room (the targeting key: with a percentage rollout a random room
// may fall on either side; -room picks one), then checks the event's scope,
// video-ready, in its mode. -mode legacy|shadow|primary|realtime fixes the
// mode instead. Local servers have no deployment flags, so there, with no
// -flags, no flag variable and no flag service, shadow (both transports) is
// checked. A transport that is not configured is left out, as broadcast.New
// does (every mode then publishes to the other one).
//
// # Repeated runs and the flip log
//
// -n N runs the canary N times (0: until interrupted), a run every -every
// (10s), through one Broadcast, whose broadcast.Options.OnModeChange prints
// every change of mode it observes (as the app logs "realtime: mode
// changed"), with the time, and the publishes, errors and p99 latency per
// transport of the runs made in the mode that ended:
//
//	mode change: 10:31:07.254 video-ready: shadow (first seen)
//	mode change: 10:31:22.260 video-ready: shadow → legacy after 15.006s; partykit 3 publishes, 0 errors, p99 9.9ms; inngest 3 publishes, 0 errors, p99 4.95ms
//
// A flip made in the flags file shows at the first run after the
// Evaluator saw it (at most 250ms for the file, plus the 1s cache).
//
// # Subscribing before publishing
//
// Inngest Realtime keeps no history, and its server subscribes a websocket
// (in Redis) only after the handshake has completed: an event published in
// between is lost. So the canary proves each subscription live before it
// publishes the canary event:
//
//   - Locally it asks the server: inngestrt.Server.WaitSubscribed returns
//     once the Inngest server has subscribed the canary's connection. The
//     PartyKit party registers a connection before it completes the
//     handshake, so an open websocket is enough there.
//   - Against real endpoints nothing says when the server is done, so the
//     canary probes: it publishes a probe message (request id
//     "<id>-probe-<attempt>-<n>", body {"canaryProbe":true}) straight to
//     the transport, not through the Broadcast, every 250ms until the
//     subscriber receives one. If none arrives within 2s it closes the
//     subscription, subscribes again with a fresh token and probes again,
//     three attempts in all, then reports the transport as failed
//     ("subscribed 3 times but no probe came through") without publishing
//     the canary event to it. Probes go to the canary's own room, which no
//     browser watches, and are told apart from the canary event by their
//     request id. PartyKit is probed the same way, although the race is not
//     known to exist there.
//
// The Inngest subscriber mints its token as an app's token endpoint does,
// with package realtime/inngest (Provider.TokenFunc: POST {base}/v1/realtime/token
// [{"kind":"run","channel":<room>,"name":"video.asset.ready"}] with the
// hashed signing key), and connects with inngest.Subscribe to
// {base}/v1/realtime/connect. The PartyKit subscriber is a websocket to
// ws(s)://host/party/<room>, as partysocket opens it.
//
// # Exit status
//
// 0 when, in every run, every enabled transport received the event once,
// intact, within -deadline and no publish failed; 1 when a run failed; 2 when it could
// not run (bad flags, bad configuration, servers that would not start).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/coursebuilder/realtime-go/broadcast"
	"github.com/coursebuilder/realtime-go/examples/internal/flagsource"
	"github.com/coursebuilder/realtime-go/legacyparty"
	"github.com/coursebuilder/realtime-go/realtime/inngest"
)

// Exit statuses.
const (
	exitPass  = 0
	exitFail  = 1
	exitUsage = 2
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := run(ctx, os.Args[1:], environment{Stdout: os.Stdout, Stderr: os.Stderr})
	stop()
	os.Exit(code)
}

// environment is what run takes from the process, so that tests can
// replace it. The variables are read from the process environment, by run
// and by the providers it builds; tests set them with t.Setenv.
type environment struct {
	Stdout, Stderr io.Writer
	// Wrap wraps the local Inngest endpoint's handler; for tests.
	Wrap func(http.Handler) http.Handler
}

// inngestVars are the variables inngest.New reads; any of them set
// means Inngest is configured.
var inngestVars = []string{"INNGEST_BASE_URL", "INNGEST_API_BASE_URL", "INNGEST_DEV", "INNGEST_SIGNING_KEY", "INNGEST_SIGNING_KEY_FALLBACK", "INNGEST_ENV"}

// run is the command: it parses args, runs the canary and returns the exit
// status.
func run(ctx context.Context, args []string, env environment) int {
	fs := flag.NewFlagSet("canary", flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	localFlag := fs.Bool("local", false, "run against the local servers (in-process Inngest endpoint, PartyKit dev server if installed) whatever the environment says")
	modeFlag := fs.String("mode", "", "legacy, shadow, primary or realtime fixes the mode; default (or \"flags\"): the app's flags, as the app resolves them")
	flagsFile := fs.String("flags", "", "the app's flags file (flags.EnvOptions.File), read before the process environment")
	app := fs.String("app", "", "the app name the flags are evaluated for (flags.Options.App), for a flag service that targets apps")
	environ := fs.String("environment", "", "the environment the flags are evaluated for (flags.Options.Environment)")
	deadline := fs.Duration("deadline", DefaultDeadline, "how long each subscriber may take to receive the event, from the start of the publish")
	room := fs.String("room", "", "room (and Inngest channel) of the canary event, also the flags' targeting key; default canary-<random>, new for each run")
	count := fs.Int("n", 1, "number of runs; 0 runs until interrupted")
	every := fs.Duration("every", 10*time.Second, "time between the starts of two runs (with -n other than 1)")
	noParty := fs.Bool("no-partykit", false, "with local servers, leave PartyKit out")
	partyDir := fs.String("partykit-dir", "", "with local servers, the PartyKit node project (default the harness's)")
	verbose := fs.Bool("v", false, "log the Broadcast's per-transport lines and the servers' output to stderr")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(env.Stderr, "canary: unexpected arguments %q\n", fs.Args())
		return exitUsage
	}
	out := env.Stdout
	fail := func(err error) int {
		fmt.Fprintln(env.Stderr, "canary:", err)
		return exitUsage
	}
	getenv := func(k string) string { return strings.TrimSpace(os.Getenv(k)) }

	logger := zap.NewNop()
	var logf func(string, ...any)
	if *verbose {
		if l, err := zap.NewDevelopment(); err == nil {
			logger = l
			defer func() { _ = l.Sync() }()
		}
		logf = func(format string, a ...any) { fmt.Fprintf(env.Stderr, format+"\n", a...) }
	}

	// Where: the environment's endpoints, or local servers.
	inngestSet, partySet := false, getenv("NEXT_PUBLIC_PARTY_KIT_URL") != ""
	for _, k := range inngestVars {
		inngestSet = inngestSet || getenv(k) != ""
	}
	local := *localFlag || (!inngestSet && !partySet)
	if *deadline <= 0 {
		return fail(errors.New("-deadline must be positive"))
	}
	if *count < 0 || *every <= 0 {
		return fail(errors.New("-n must not be negative, -every must be positive"))
	}
	// The mode: fixed, or the app's flags. Local servers belong to no
	// deployment: with no flags given at all there, shadow (both
	// transports) is checked.
	unset := ""
	if local {
		unset = " and local servers: checking shadow mode"
	}
	resolver, desc, closeFlags, err := flagsource.Choose(ctx, flagsource.Choice{
		Mode: *modeFlag, Unset: unset,
		Options: flagsource.Options{File: *flagsFile, App: *app, Environment: *environ, Logger: logger},
	})
	if err != nil {
		return fail(err)
	}
	defer closeFlags()
	fmt.Fprintf(out, "flags:   %s\n", desc)

	var cfg Config
	if local {
		if !*localFlag {
			fmt.Fprintln(out, "canary: no INNGEST_* variable and no NEXT_PUBLIC_PARTY_KIT_URL set: running against local servers")
		}
		l, err := startLocal(ctx, localOptions{NoPartyKit: *noParty, PartyKitDir: *partyDir, Wrap: env.Wrap, Logf: logf, Out: out})
		if err != nil {
			return fail(err)
		}
		defer func() {
			if err := l.Close(); err != nil {
				fmt.Fprintln(env.Stderr, "canary: closing the local servers:", err)
			}
		}()
		cfg = l.config()
	} else {
		if inngestSet {
			p, err := inngest.New(&inngest.Options{Logger: logger})
			if err != nil {
				return fail(err)
			}
			defer p.Close()
			cfg.Inngest = p
			fmt.Fprintf(out, "canary: Inngest Realtime at %s\n", p.BaseURL())
		}
		if partySet {
			p, err := legacyparty.New(&legacyparty.Options{Logger: logger})
			if err != nil {
				return fail(err)
			}
			defer p.Close()
			cfg.PartyKit = p
			fmt.Fprintf(out, "canary: PartyKit at %s\n", p.BaseURL())
		}
	}

	cfg.Resolver, cfg.Room, cfg.Deadline, cfg.Logger = resolver, *room, *deadline, logger
	cfg.OnModeChange = func(c broadcast.ModeChange) { fmt.Fprintln(out, formatChange(c)) }
	c, err := New(cfg)
	if err != nil {
		return fail(err)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), *deadline+time.Second)
		defer cancel()
		_ = c.Close(cctx)
	}()
	failed := 0
	next := time.Now()
	for i := 1; *count == 0 || i <= *count; i++ {
		if i > 1 {
			next = next.Add(*every)
			select {
			case <-ctx.Done():
			case <-time.After(time.Until(next)):
			}
		}
		if ctx.Err() != nil {
			fmt.Fprintln(env.Stderr, "canary: interrupted")
			return exitFail
		}
		if *count != 1 {
			fmt.Fprintf(out, "\nrun %d at %s\n", i, time.Now().Format(time.RFC3339))
		}
		start := time.Now()
		rep, err := c.Check(ctx)
		if err != nil {
			return fail(err)
		}
		rep.Print(out)
		if ctx.Err() != nil {
			fmt.Fprintln(env.Stderr, "canary: interrupted")
			return exitFail
		}
		if !rep.OK() {
			failed++
			continue
		}
		fmt.Fprintf(out, "canary passed in %v\n", time.Since(start).Round(time.Millisecond))
	}
	if failed > 0 {
		if *count != 1 {
			fmt.Fprintf(out, "canary failed %d of %d runs\n", failed, *count)
		}
		return exitFail
	}
	return exitPass
}

// formatChange renders a mode change of the canary's Broadcast: the flip
// log line, with the figures of the runs in the mode that ended.
func formatChange(c broadcast.ModeChange) string {
	at := c.At.Format("15:04:05.000")
	if c.Initial {
		return fmt.Sprintf("mode change: %s %s: %s (first seen)", at, c.Scope, c.To)
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "mode change: %s %s: %s → %s after %v", at, c.Scope, c.From, c.To, c.At.Sub(c.Since).Round(time.Millisecond))
	for _, f := range c.Figures {
		fmt.Fprintf(&sb, "; %s %d publishes, %d errors, p99 %v", f.Transport, f.Publishes, f.Errors, f.P99)
	}
	return sb.String()
}
