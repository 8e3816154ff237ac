// Command rollout shows a per-scope rollout from PartyKit to Inngest
// Realtime, and its rollback, driven by a flags file that the flags package
// re-reads while the program runs: no restart, no deploy.
//
// It starts the real Inngest realtime endpoint in-process (the harness's
// inngestrt: github.com/inngest/inngest's realtime API over miniredis) and,
// when the node project is installed (npm ci --prefix harness/partykit/server),
// the real PartyKit dev server; without it PartyKit is skipped and the demo
// runs Inngest-only: a stand-in takes the legacy transport's place (broadcast.New
// needs two providers) and every publish goes to realtime. It subscribes a browser-
// style websocket to one room on each transport, then publishes a
// video.asset.ready message through a broadcast.Broadcast every second and
// prints the mode the Broadcast resolved and which subscriber received the
// message, with its latency from the start of the publish:
//
//	#3 flags=shadow mode=shadow partykit=2.1ms inngest=0.9ms
//
// flags= is what the flags (the file) say; mode= is what the Broadcast does
// with the transports it has. A transport that should have received the
// message and did not is shown as MISSING, one that received it although the
// mode says it should not as UNEXPECTED.
//
// The Broadcast's resolver is a flags.Evaluator over a flags.EnvProvider
// whose variables are the KEY=VALUE lines of the flags file
// (flags.EnvOptions.File: blank lines, "# comments" and an "export " prefix
// are allowed). The program unsets the flags variables of its own
// environment at start (flags.EnvVariables), so that none set in the shell
// applies: only the file counts. The provider checks the file every 250ms
// (flags.EnvOptions.PollInterval) and the program calls its Refresh after
// rewriting the file itself (-script). The Evaluator runs with its cache
// off (CacheTTL < 0), so that a scripted change applies to the very next
// publish whatever the scheduling; with the default cache it would apply as
// soon as the provider's change event is delivered. The program writes the
// file with REALTIME_VIDEO_READY_MODE=legacy at start and prints its path.
//
// # Running
//
//	cd examples && go run ./rollout                   # 30 publishes, one a second
//	go run ./rollout -n 10 -interval 500ms -flags /tmp/rollout.flags
//	go run ./rollout -n 5 -script legacy,shadow,primary,realtime,legacy
//
// # Flipping the mode while it runs
//
// The program prints a shell function for its flags file; paste it into
// another terminal (sh, bash or zsh). setflag VAR VALUE changes one
// variable and leaves every other line of the file as it is: it writes the
// file without VAR's lines, plus VAR=VALUE, to a temporary file beside it
// and renames that over the file, so the provider never reads it
// half-written:
//
//	setflag() { f='<path>'; { grep -v -E "^[[:space:]]*(export[[:space:]]+)?$1[[:space:]]*=" "$f"; echo "$1=$2"; } > "$f.tmp" && mv "$f.tmp" "$f"; }
//	setflag REALTIME_VIDEO_READY_MODE shadow     # both, PartyKit counts
//	setflag REALTIME_VIDEO_READY_MODE primary    # both, Inngest counts
//	setflag REALTIME_VIDEO_READY_MODE realtime   # Inngest only
//
// The next publish after the provider read the file (at most 250ms later)
// uses the new mode. Rollback is the same move backwards, or the kill
// switch, which leaves the mode line alone, so that undoing it restores
// the mode the scope had:
//
//	setflag REALTIME_VIDEO_READY_MODE legacy     # PartyKit only again
//	setflag REALTIME_KILL_SWITCH true            # every scope to legacy at once
//	setflag REALTIME_KILL_SWITCH false           # undo: every scope back to its mode
//
// -script does the editing itself, the same way: before publish i it sets
// the variable of the i-th entry (a mode name sets REALTIME_VIDEO_READY_MODE,
// "kill" sets REALTIME_KILL_SWITCH=true, "unkill" REALTIME_KILL_SWITCH=false);
// publishes past the end of the script leave the file as it is.
package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/open-feature/go-sdk/openfeature/isolated"
	"go.uber.org/zap"

	"github.com/coursebuilder/realtime-go/broadcast"
	"github.com/coursebuilder/realtime-go/examples/internal/flagsource"
	"github.com/coursebuilder/realtime-go/flags"
	"github.com/coursebuilder/realtime-go/harness/inngestrt"
	"github.com/coursebuilder/realtime-go/harness/partykit"
	"github.com/coursebuilder/realtime-go/legacyparty"
	"github.com/coursebuilder/realtime-go/realtime"
	"github.com/coursebuilder/realtime-go/realtime/inngest"
)

const (
	room      = "vid_rollout"
	eventName = "video.asset.ready"
	// modeVar is the variable of video.asset.ready's scope (video-ready).
	modeVar = "REALTIME_VIDEO_READY_MODE"
	// killVar is the kill switch's variable.
	killVar = "REALTIME_KILL_SWITCH"
	// killEntry in -script sets REALTIME_KILL_SWITCH=true, unkillEntry
	// REALTIME_KILL_SWITCH=false.
	killEntry, unkillEntry = "kill", "unkill"
)

func main() {
	clearFlagsEnv()
	var cfg config
	flag.StringVar(&cfg.FlagsPath, "flags", "", "flags file (KEY=VALUE lines); default rollout.flags in a new temp dir")
	flag.IntVar(&cfg.N, "n", 30, "number of publishes")
	flag.DurationVar(&cfg.Interval, "interval", time.Second, "time between publishes")
	script := flag.String("script", "", "comma-separated modes (or \"kill\", \"unkill\") set in the flags file before each publish, e.g. legacy,shadow,primary,kill,unkill")
	noParty := flag.Bool("no-partykit", false, "do not start the PartyKit dev server even when it is available")
	verbose := flag.Bool("v", false, "log the Broadcast's per-transport lines and the servers' output to stderr")
	flag.Parse()

	cfg.Script = splitScript(*script)
	cfg.PartyKit = !*noParty
	cfg.Out = os.Stdout
	if *verbose {
		l, err := zap.NewDevelopment()
		if err == nil {
			cfg.Logger = l
			defer func() { _ = l.Sync() }()
		}
		cfg.Logf = func(format string, args ...any) { fmt.Fprintf(os.Stderr, format+"\n", args...) }
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if _, err := run(ctx, cfg); err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintln(os.Stderr, "rollout:", err)
		os.Exit(1)
	}
}

// clearFlagsEnv unsets, in this process, every variable the flags package
// reads (flags.EnvVariables). The flags.EnvProvider reads the flags file
// first and the process environment for what the file does not set, so a
// REALTIME_KILL_SWITCH or ENABLE_REALTIME_* left in the shell that started
// the demo would otherwise decide modes the file does not mention: only the
// file is to count, so that editing it shows exactly what it does.
func clearFlagsEnv() {
	for _, k := range flags.EnvVariables() {
		_ = os.Unsetenv(k)
	}
}

// config is what run needs; main fills it from the command line.
type config struct {
	// FlagsPath is the flags file; "" means rollout.flags in a new temp dir
	// that run removes when it returns.
	FlagsPath string
	// N publishes, one every Interval.
	N        int
	Interval time.Duration
	// Script entries are written to the flags file before publishes 1..len.
	Script []string
	// PartyKit starts the PartyKit dev server when partykit.Available is nil.
	PartyKit bool
	// Legacy, if set, replaces the PartyKit provider (and PartyKit is not
	// started): a transport with no subscriber here. For tests.
	Legacy realtime.Provider
	// Wait bounds how long a publish waits for an expected delivery
	// (default 3s); Quiet is how long it then listens for unexpected ones
	// (default 150ms).
	Wait, Quiet time.Duration
	Out         io.Writer
	Logger      *zap.Logger
	Logf        func(format string, args ...any)
}

// result is one publish.
type result struct {
	N int
	// Flags is the mode the flags resolve to; Mode what the Broadcast does
	// with the transports it has.
	Flags, Mode flags.Mode
	// Received maps a transport (broadcast.TransportPartyKit,
	// broadcast.TransportInngest) that delivered the message to its
	// subscriber to the latency from the start of the publish.
	Received map[string]time.Duration
	// Err is the publish's error.
	Err error
}

// receipt is one message a subscriber received.
type receipt struct {
	transport string
	requestID string
	at        time.Time
}

func splitScript(s string) []string {
	var out []string
	for _, e := range strings.Split(s, ",") {
		if e = strings.TrimSpace(e); e != "" {
			out = append(out, e)
		}
	}
	return out
}

// scriptEntry is the variable and value one -script entry sets.
func scriptEntry(entry string) (key, value string, err error) {
	switch {
	case strings.EqualFold(entry, killEntry):
		return killVar, "true", nil
	case strings.EqualFold(entry, unkillEntry):
		return killVar, "false", nil
	}
	m, err := flags.ParseMode(entry)
	if err != nil {
		return "", "", fmt.Errorf("-script entry %q: %w", entry, err)
	}
	return modeVar, m.String(), nil
}

// setFlag sets key=value in the flags file at path and keeps every other
// line, as the printed setflag shell function does: the lines of key are
// dropped (with or without "export "), key=value is appended, and the
// file is replaced atomically.
func setFlag(path, key, value string) error {
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	var sb strings.Builder
	for _, line := range strings.SplitAfter(string(old), "\n") {
		k, _, ok := strings.Cut(strings.TrimSpace(line), "=")
		k = strings.TrimSpace(strings.TrimPrefix(k, "export "))
		if line == "" || ok && k == key {
			continue
		}
		sb.WriteString(strings.TrimSuffix(line, "\n") + "\n")
	}
	sb.WriteString(key + "=" + value + "\n")
	return flagsource.WriteFile(path, sb.String())
}

// printCommands prints how to flip and roll back from another terminal.
func printCommands(w io.Writer, path string) {
	fmt.Fprintf(w, "flags file: %s\n", path)
	fmt.Fprintln(w, "  in another terminal, define:")
	fmt.Fprintf(w, "    %s\n", flagsource.Setflag(path))
	fmt.Fprintf(w, "  flip:      setflag %s shadow      (or primary, realtime)\n", modeVar)
	fmt.Fprintf(w, "  rollback:  setflag %s legacy\n", modeVar)
	fmt.Fprintf(w, "  kill:      setflag %s true           (every scope to legacy)\n", killVar)
	fmt.Fprintf(w, "  undo kill: setflag %s false          (every scope back to its mode)\n", killVar)
}

// run starts the servers, subscribes, publishes cfg.N messages and returns
// what each publish did.
func run(ctx context.Context, cfg config) (results []result, err error) {
	if cfg.N <= 0 {
		return nil, errors.New("-n must be positive")
	}
	if cfg.Interval < 0 {
		return nil, errors.New("-interval must not be negative")
	}
	if cfg.Wait <= 0 {
		cfg.Wait = 3 * time.Second
	}
	if cfg.Quiet <= 0 {
		cfg.Quiet = 150 * time.Millisecond
	}
	if cfg.Out == nil {
		cfg.Out = io.Discard
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	out := cfg.Out
	type setting struct{ key, value string }
	lines := make([]setting, len(cfg.Script))
	for i, e := range cfg.Script {
		if lines[i].key, lines[i].value, err = scriptEntry(e); err != nil {
			return nil, err
		}
	}

	// The flags file.
	path := cfg.FlagsPath
	if path == "" {
		dir, err := os.MkdirTemp("", "rollout-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir)
		path = filepath.Join(dir, "rollout.flags")
	}
	if err := flagsource.WriteFile(path, "# re-read while the program runs; edit it\n"+modeVar+"=legacy\n"); err != nil {
		return nil, fmt.Errorf("write flags file: %w", err)
	}
	printCommands(out, path)

	// The Inngest realtime endpoint and its provider.
	key := inngestrt.NewSigningKey()
	irt, err := inngestrt.Start(ctx, inngestrt.Options{SigningKeys: []string{key}, Logf: cfg.Logf})
	if err != nil {
		return nil, err
	}
	defer irt.Close()
	fmt.Fprintf(out, "Inngest realtime endpoint (real server code, in-process) at %s\n", irt.URL())
	p, err := inngest.New(&inngest.Options{BaseURL: irt.URL(), SigningKey: key, ChannelSecret: rand.Text() + rand.Text()})
	if err != nil {
		return nil, err
	}
	defer p.Close()

	receipts := make(chan receipt, 64)
	var readers sync.WaitGroup
	defer readers.Wait() // after the subscriptions are closed (defers run last-in first-out)

	// PartyKit, when it can run.
	var legacy realtime.Provider
	var party *partykit.Subscription
	switch {
	case cfg.Legacy != nil:
		legacy = cfg.Legacy
		fmt.Fprintln(out, "PartyKit: replaced by the given legacy provider (no subscriber)")
	case !cfg.PartyKit:
		fmt.Fprintln(out, "PartyKit: skipped (-no-partykit); running Inngest-only, legacy transport absent")
	default:
		if why := partykit.Available(""); why != nil {
			fmt.Fprintf(out, "PartyKit: skipped (%v); running Inngest-only, legacy transport absent\n", why)
			break
		}
		fmt.Fprintln(out, "PartyKit: starting the dev server (the first build can take a minute)...")
		pk, err := partykit.Start(ctx, partykit.Options{Logf: cfg.Logf})
		if err != nil {
			return nil, err
		}
		defer pk.Close()
		fmt.Fprintf(out, "PartyKit dev server (real partykit CLI) at %s\n", pk.URL())
		lp, err := legacyparty.New(&legacyparty.Options{BaseURL: pk.URL()})
		if err != nil {
			return nil, err
		}
		defer lp.Close()
		legacy = lp
		if party, err = pk.Subscribe(ctx, room); err != nil {
			return nil, err
		}
		defer party.Close()
		readers.Add(1)
		go func() {
			defer readers.Done()
			read(broadcast.TransportPartyKit, party.Next, receipts)
		}()
	}

	// The Inngest subscriber, as a browser with a token from the app.
	channel, err := p.Channel(room) // keyed: what the app's tokens grant
	if err != nil {
		return nil, err
	}
	token, err := irt.Token(ctx, channel, eventName)
	if err != nil {
		return nil, err
	}
	isub, err := irt.Subscribe(ctx, token)
	if err != nil {
		return nil, err
	}
	defer isub.Close()
	readers.Add(1)
	go func() {
		defer readers.Done()
		read(broadcast.TransportInngest, func(ctx context.Context) ([]byte, error) {
			m, err := isub.NextData(ctx)
			return m.Data, err
		}, receipts)
	}()

	// The flags: an EnvProvider over the file, on an isolated OpenFeature
	// API. main cleared the flags variables of the process environment
	// (clearFlagsEnv), so the file is all that counts.
	api := isolated.NewAPI()
	defer func() { _ = api.Shutdown(context.WithoutCancel(ctx)) }()
	provider := flags.NewEnvProvider(&flags.EnvOptions{File: path})
	if err := api.SetProviderAndWait(ctx, provider); err != nil {
		return nil, err
	}
	ev := flags.NewEvaluator(api.NewClient(), &flags.Options{App: "rollout-example", Logger: cfg.Logger, CacheTTL: -1})
	defer ev.Close()
	var resolver flags.Resolver = ev
	if legacy == nil {
		// broadcast.New takes two providers: stand in for the absent one
		// and keep every publish on the one that is there.
		legacy, resolver = absent("partykit"), flags.Fixed(flags.Realtime)
	}
	b, err := broadcast.New(legacy, p, &broadcast.Options{Resolver: resolver, Logger: cfg.Logger})
	if err != nil {
		return nil, err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		_ = b.Close(cctx)
	}()
	if resolver != flags.Resolver(ev) {
		fmt.Fprintln(out, "note: with no legacy transport every publish goes to Inngest (mode=realtime) whatever the flags say")
	}

	scope := flags.ScopeOf(eventName)
	fmt.Fprintf(out, "publishing %d × %s to room %s (scope %s) every %v\n", cfg.N, eventName, room, scope, cfg.Interval)
	next := time.Now()
	for i := 1; i <= cfg.N; i++ {
		if i > 1 {
			next = next.Add(cfg.Interval)
			select {
			case <-ctx.Done():
				return results, ctx.Err()
			case <-time.After(time.Until(next)):
			}
		}
		if i <= len(lines) {
			if err := setFlag(path, lines[i-1].key, lines[i-1].value); err != nil {
				return results, fmt.Errorf("write flags file: %w", err)
			}
			if err := provider.Refresh(); err != nil {
				return results, err
			}
		}
		msg := realtime.Message{
			Room: room, Name: eventName, RequestID: fmt.Sprintf("req_%d", i),
			Body: map[string]any{"id": room, "muxPlaybackId": fmt.Sprintf("pb_%d", i), "duration": 93.4},
		}
		r := result{N: i, Flags: ev.Mode(ctx, scope, room), Mode: b.Route(ctx, msg.Room, msg.Name).Mode, Received: map[string]time.Duration{}}
		start := time.Now()
		r.Err = b.Publish(ctx, msg)

		want := map[string]bool{
			broadcast.TransportPartyKit: party != nil && r.Mode.PublishesLegacy(),
			broadcast.TransportInngest:  r.Mode.PublishesRealtime(),
		}
		collect(ctx, receipts, msg.RequestID, start, want, cfg.Wait, cfg.Quiet, r.Received)
		results = append(results, r)
		fmt.Fprintln(out, r.line(party != nil, want))
		if ctx.Err() != nil {
			return results, ctx.Err()
		}
	}
	return results, nil
}

// read forwards every message of a subscription as a receipt until the
// subscription ends.
func read(transport string, next func(context.Context) ([]byte, error), to chan<- receipt) {
	for {
		data, err := next(context.Background())
		if err != nil {
			return
		}
		at := time.Now()
		var env struct {
			RequestID string `json:"requestId"`
		}
		if json.Unmarshal(data, &env) != nil || env.RequestID == "" {
			continue // not one of ours
		}
		select {
		case to <- receipt{transport, env.RequestID, at}:
		default: // nobody is collecting; never block the reader
		}
	}
}

// collect records the receipts of requestID until every wanted transport
// has delivered (or wait has passed), then listens quiet longer for
// deliveries that should not happen. Receipts of earlier publishes are
// dropped.
func collect(ctx context.Context, from <-chan receipt, requestID string, start time.Time, want map[string]bool, wait, quiet time.Duration, got map[string]time.Duration) {
	pending := func() bool {
		for t, w := range want {
			if _, ok := got[t]; w && !ok {
				return true
			}
		}
		return false
	}
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	var quietC <-chan time.Time
	if !pending() {
		quietC = time.After(quiet)
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-deadline.C:
			return
		case <-quietC:
			return
		case rc := <-from:
			if rc.requestID != requestID {
				continue
			}
			if _, dup := got[rc.transport]; !dup {
				got[rc.transport] = rc.at.Sub(start)
			}
			if quietC == nil && !pending() {
				quietC = time.After(quiet)
			}
		}
	}
}

// line renders a result: "#3 flags=shadow mode=shadow partykit=2.1ms inngest=0.9ms".
func (r result) line(withParty bool, want map[string]bool) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "#%d flags=%s mode=%s", r.N, r.Flags, r.Mode)
	transports := []string{broadcast.TransportInngest}
	if withParty {
		transports = []string{broadcast.TransportPartyKit, broadcast.TransportInngest}
	}
	for _, t := range transports {
		d, ok := r.Received[t]
		switch {
		case ok && want[t]:
			fmt.Fprintf(&sb, " %s=%v", t, roundLatency(d))
		case ok:
			fmt.Fprintf(&sb, " %s=UNEXPECTED(%v)", t, roundLatency(d))
		case want[t]:
			fmt.Fprintf(&sb, " %s=MISSING", t)
		default:
			fmt.Fprintf(&sb, " %s=-", t)
		}
	}
	if r.Err != nil {
		fmt.Fprintf(&sb, " error=%v", r.Err)
	}
	return sb.String()
}

func roundLatency(d time.Duration) time.Duration {
	if d >= time.Millisecond {
		return d.Round(100 * time.Microsecond)
	}
	return d.Round(time.Microsecond)
}

// absent stands in for a transport that is not configured: every publish to
// it fails with realtime.ErrNotConfigured.
func absent(transport string) realtime.Provider {
	return realtime.ProviderFunc(func(context.Context, realtime.Message) error {
		return fmt.Errorf("%w: %s is not configured", realtime.ErrNotConfigured, transport)
	})
}
