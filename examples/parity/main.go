// Command parity replays recorded video notifications through the realtime
// facade, each in the mode the app's flags give its scope, and reports,
// room by room, whether each transport delivered what that mode publishes
// to it (in shadow and primary mode: whether Inngest Realtime delivered
// what PartyKit delivered): the migration plan's "record/playback
// representative video events in staging to validate realtime output
// against partykit baseline".
//
// The recording is testdata/video-events.jsonl (embedded; -events reads
// another file): one {"room","name","requestId","body"} object per line,
// the notifications of the video pipeline — videoResource.created,
// video.asset.ready, video.asset.errored, transcript.ready — over several
// rooms, with bodies that exercise the encodings: unicode (accents, CJK,
// Arabic, emoji, combining marks, U+2028/U+2029), HTML characters (<, >, &,
// </script>), nested objects and arrays, integer-like keys, numbers written
// as 93.40, 1e3, -0 or 2^53+1, nulls, a null body and a string body.
//
// It starts both real servers locally — the Inngest server's own realtime
// code in-process (harness/inngestrt) and the PartyKit dev server
// (harness/partykit) — subscribes a browser-style websocket to every room on
// each transport (Inngest with a subscription token for the room's event
// names), publishes the events in order through a broadcast.Broadcast in
// the mode of each event's scope (see Modes), and prints per room the modes
// and per transport how many events were delivered, how many byte for
// byte, their latencies, and every mismatch:
//
//	MISSING     inngest  room=… requestId=…  the transport never delivered it (within -wait)
//	DUPLICATED  inngest  room=… requestId=…  delivered more than once
//	LATE        partykit room=… requestId=…  first copy after -late (default 1s) from the start of its publish
//	DIFFERS     inngest  room=… requestId=…  a copy whose JSON value is not the envelope's, with the first differing path
//	UNEXPECTED  inngest  room=… requestId=…  a delivery no event of that room accounts for, or one on a transport the event's mode does not publish to
//
// # Modes
//
// By default parity reads the app's flags as the app does, through a
// flags.Evaluator (package examples/internal/flagsource): the app's flags
// file (-flags path) and the process environment (REALTIME_KILL_SWITCH,
// REALTIME_<SCOPE>_MODE, ENABLE_REALTIME_*), or the app's flag service
// when a file added to this directory sets flagsource.ServiceProvider to
// the app's OpenFeature provider in an init function (none is compiled
// in). Each event is published in the mode its scope resolves to for its
// room at that moment, and each transport is checked against it: legacy
// expects PartyKit alone, realtime Inngest alone, shadow and primary both.
// So run before and after a flip, with the app's flags, it checks what the
// flip changed, against the real server code of both transports. With no
// flags at all (no -flags, no flag variable, no flag service) every event
// goes out in shadow mode, the comparison of both transports; -mode fixes
// the mode of every event.
//
// # Why payloads are compared as parsed JSON
//
// Browsers JSON.parse what they receive, so two deliveries are the same
// notification exactly when they parse to the same value. Their bytes need
// not match, and on PartyKit they do not: course-builder's party relays
// JSON.stringify(await req.json()), which writes <, >, &, U+2028 and U+2029
// as themselves where Go's encoder escapes them (\u003c…), rewrites numbers
// (93.40 → 93.4, 1e3 → 1000, -0 → 0, 9007199254740993 →
// 9007199254740992), unescapes \u00e9 to é, and moves integer-like keys
// ("90", "0", "35") ahead of the others. A byte comparison would flag most
// of the recording although no browser could tell the difference; the
// "re-spelled" count in the report shows how many. So each copy is parsed
// and compared with the envelope the Broadcast sent, numbers as float64 as
// JavaScript reads them and objects regardless of key order. Comparing
// with the envelope rather than Inngest with PartyKit loses nothing: parsed,
// the PartyKit baseline is the envelope, and it still says which side
// changed when one does.
//
// # Running
//
//	cd examples && go run ./parity                    # every event in shadow mode
//	go run ./parity -flags /etc/app/realtime.flags    # the app's modes
//	go run ./parity -late 250ms -events /path/to/staging-recording.jsonl
//
// Parity needs both transports: when the PartyKit dev server is not
// installed (npm ci --prefix harness/partykit/server) the command says so
// and exits with status 2. Exit status 0 means no mismatch, 1 at least one.
package main

import (
	"bytes"
	"context"
	_ "embed"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"time"

	"go.uber.org/zap"

	"github.com/coursebuilder/realtime-go/examples/internal/flagsource"
	"github.com/coursebuilder/realtime-go/harness/inngestrt"
	"github.com/coursebuilder/realtime-go/harness/partykit"
)

//go:embed testdata/video-events.jsonl
var recorded []byte

// recordedName names the embedded recording in the output.
const recordedName = "testdata/video-events.jsonl"

// Exit statuses.
const (
	exitParity   = 0
	exitMismatch = 1
	exitCannot   = 2
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := run(ctx, os.Args[1:], environment{Stdout: os.Stdout, Stderr: os.Stderr})
	stop()
	os.Exit(code)
}

// environment is what run takes from the process, so that tests can
// replace it.
type environment struct {
	Stdout, Stderr io.Writer
	// Wrap wraps the Inngest endpoint's handler; for tests.
	Wrap func(http.Handler) http.Handler
	// PartyKit, if set, is used instead of starting a dev server; for
	// tests.
	PartyKit *partykit.Server
}

// run is the command: it parses args, starts the servers, replays and
// prints the report, and returns the exit status.
func run(ctx context.Context, args []string, env environment) int {
	fs := flag.NewFlagSet("parity", flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	eventsPath := fs.String("events", "", "JSON Lines recording to replay (default the embedded "+recordedName+")")
	late := fs.Duration("late", DefaultLate, "a delivery slower than this, from the start of its publish, is late")
	wait := fs.Duration("wait", 0, "how long after the last publish missing deliveries are waited for (default 2×late+1s)")
	interval := fs.Duration("interval", 0, "pause between publishes")
	partyDir := fs.String("partykit-dir", "", "the PartyKit node project (default the harness's)")
	modeFlag := fs.String("mode", "", "legacy, shadow, primary or realtime fixes the mode of every event; default (or \"flags\"): the app's flags, as the app resolves them")
	flagsFile := fs.String("flags", "", "the app's flags file (flags.EnvOptions.File), read before the process environment")
	app := fs.String("app", "", "the app name the flags are evaluated for (flags.Options.App)")
	environ := fs.String("environment", "", "the environment the flags are evaluated for (flags.Options.Environment)")
	verbose := fs.Bool("v", false, "log the Broadcast's per-transport lines and the servers' output to stderr")
	if err := fs.Parse(args); err != nil {
		return exitCannot
	}
	fail := func(err error) int {
		fmt.Fprintln(env.Stderr, "parity:", err)
		return exitCannot
	}
	if fs.NArg() > 0 {
		return fail(fmt.Errorf("unexpected arguments %q", fs.Args()))
	}
	if *late <= 0 || *wait < 0 || *interval < 0 {
		return fail(errors.New("-late must be positive, -wait and -interval not negative"))
	}
	out := env.Stdout

	src, name := io.Reader(bytes.NewReader(recorded)), recordedName
	if *eventsPath != "" {
		f, err := os.Open(*eventsPath)
		if err != nil {
			return fail(err)
		}
		defer f.Close()
		src, name = f, *eventsPath
	}
	events, err := LoadEvents(src)
	if err != nil {
		return fail(fmt.Errorf("%s: %w", name, err))
	}

	pk := env.PartyKit
	if pk == nil {
		if why := partykit.Available(*partyDir); why != nil {
			fmt.Fprintf(env.Stderr, "parity: the PartyKit dev server is not installed, and parity compares PartyKit with Inngest Realtime: it needs both.\n"+
				"  %v\n  install it with: npm ci --prefix harness/partykit/server   (from the repository root)\n", why)
			return exitCannot
		}
	}

	logger := zap.NewNop()
	var logf func(string, ...any)
	if *verbose {
		if l, err := zap.NewDevelopment(); err == nil {
			logger = l
			defer func() { _ = l.Sync() }()
		}
		logf = func(format string, a ...any) { fmt.Fprintf(env.Stderr, format+"\n", a...) }
	}

	// The modes: the app's flags, or fixed. With no flags given at all,
	// shadow, the comparison of both transports.
	resolver, desc, closeFlags, err := flagsource.Choose(ctx, flagsource.Choice{
		Mode: *modeFlag, Unset: ": every event in shadow mode",
		Options: flagsource.Options{File: *flagsFile, App: *app, Environment: *environ, Logger: logger},
	})
	if err != nil {
		return fail(err)
	}
	defer closeFlags()
	fmt.Fprintf(out, "flags: %s\n", desc)

	fmt.Fprintf(out, "parity: %d recorded events from %s, through a Broadcast, each in its scope's mode; late > %v\n", len(events), name, *late)
	key := inngestrt.NewSigningKey()
	irt, err := inngestrt.Start(ctx, inngestrt.Options{SigningKeys: []string{key}, Wrap: env.Wrap, Logf: logf})
	if err != nil {
		return fail(err)
	}
	defer irt.Close()
	fmt.Fprintf(out, "Inngest realtime endpoint (real server code, in-process) at %s\n", irt.URL())
	if pk == nil {
		fmt.Fprintln(out, "starting the PartyKit dev server (the first build can take a minute)...")
		if pk, err = partykit.Start(ctx, partykit.Options{Dir: *partyDir, Logf: logf}); err != nil {
			return fail(err)
		}
		defer pk.Close()
	}
	fmt.Fprintf(out, "PartyKit dev server (real partykit CLI) at %s\n", pk.URL())

	rep, err := Replay(ctx, Config{
		Events: events, Inngest: irt, SigningKey: key, PartyKit: pk,
		Late: *late, Wait: *wait, Interval: *interval, Logger: logger, Resolver: resolver,
	})
	if err != nil {
		return fail(err)
	}
	fmt.Fprintf(out, "replayed %d events in %d rooms in %v\n", rep.Events, len(rep.Rooms), rep.Duration.Round(time.Millisecond))
	rep.Print(out)
	if !rep.OK() {
		return exitMismatch
	}
	return exitParity
}
