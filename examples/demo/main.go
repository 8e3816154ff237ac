// Command demo runs course-builder's video pipeline in Go on embedded
// defaults and prints every notification a browser receives, per transport,
// with its latency. It needs nothing but Go (and uses PartyKit too when its
// dev server is installed):
//
//	cd examples && go run ./demo              # shadow mode when PartyKit is installed, else realtime
//	cd examples && go run ./demo -mode primary
//
// What runs, all on loopback:
//
//   - Inngest Realtime: the real server code (github.com/inngest/inngest's
//     realtime API over miniredis), in-process, with a signing key.
//   - PartyKit: the real `partykit dev` server, when `npm ci --prefix
//     harness/partykit/server` has installed it.
//   - The app: an HTTP server with the inngestgo handler of the video
//     functions (package videopipeline), whose client carries
//     realtime.Middleware(broadcast), and GET /api/realtime/token
//     (package tokens) for browsers.
//   - A browser: it fetches tokens from the app for the four video scopes
//     and subscribes to Inngest Realtime, and opens a PartyKit websocket on
//     the same room.
//
// Each function is then run the way the Inngest executor runs it (called
// once per step, with the finished steps memoized), so every announcement
// goes through the middleware, the Broadcast and the transports of the mode.
//
// # The live page
//
//	cd examples && go run ./demo -serve -every 5s   # then open http://127.0.0.1:8080/
//
// With -serve the demo keeps running and serves a page that subscribes with
// the browser client (client/dist/realtime-client.js, one subscription per
// scope of the room) and shows each notification as it arrives: its seq,
// the transport that carried it (or "catchup") and its latency from the
// publish, next to the mode of each scope and the page's own view of it.
// The Broadcast's modes come from a flags file (-flags; the demo prints its
// path), re-read while it runs: rewriting it moves the open page to the
// other transport within -recheck (2s), without a reload. The page's
// buttons run the pipeline again (or -every does) and cut the browser's
// connections for two seconds, to show them repaired and what was
// published meanwhile caught up. Endpoints besides the page:
//
//	GET  /api/realtime/token     the token endpoint (package tokens), v=2 answers and catch-up
//	GET  /api/realtime/modes     the mode of each scope now (Broadcast.Route)
//	GET  /api/demo/published     every notification published, with the Go subscribers' latency per transport
//	POST /api/demo/run           runs the pipeline once and returns what it published
//	POST /api/demo/cut?for=2s    drops the browsers' websockets and refuses new ones for that long
//	POST /api/demo/heal          accepts them again at once
//	POST /api/demo/fault?kind=   a fault on the app's way to Inngest, for rehearsals: key (Inngest
//	                             refuses the app's signing key, 401), down (connection refused),
//	                             hang (accepts, never answers); none removes it
//	GET  /api/demo/fault         the fault in force
//	GET  /metrics                the library's metrics (OpenTelemetry Prometheus exporter) as
//	                             monitoring/alerts.yml and dashboard.json read them
//
// Browsers reach both servers through relays of the demo's own (so that a
// cut drops the browser's connections only); the Go subscribers, on both
// transports and without gap repair, connect directly and show what each
// transport carried and how fast.
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/inngest/inngestgo"
	"github.com/inngest/inngestgo/middleware"

	"github.com/coursebuilder/realtime-go/broadcast"
	"github.com/coursebuilder/realtime-go/examples/internal/executor"
	"github.com/coursebuilder/realtime-go/examples/videopipeline"
	"github.com/coursebuilder/realtime-go/flags"
	"github.com/coursebuilder/realtime-go/harness/inngestrt"
	"github.com/coursebuilder/realtime-go/harness/partykit"
	"github.com/coursebuilder/realtime-go/legacyparty"
	"github.com/coursebuilder/realtime-go/realtime"
	"github.com/coursebuilder/realtime-go/realtime/inngest"
	"github.com/coursebuilder/realtime-go/realtime/realtimetest"
	"github.com/coursebuilder/realtime-go/tokens"
)

func main() {
	mode := flag.String("mode", "", "legacy, shadow, primary or realtime (default: shadow with PartyKit, realtime without); with -serve, the mode a new flags file starts in")
	noParty := flag.Bool("no-partykit", false, "do not start the PartyKit dev server")
	serveMode := flag.Bool("serve", false, "keep running and serve the live page")
	addr := flag.String("addr", "127.0.0.1:8080", "with -serve, the app's address (the page is at /)")
	flagsPath := flag.String("flags", "", "with -serve, the flags file (KEY=VALUE lines, re-read while it runs; created if missing); default demo.flags in a new temp dir")
	recheck := flag.Duration("recheck", 2*time.Second, "with -serve, how often a page asks again where to listen")
	every := flag.Duration("every", 0, "with -serve, run the pipeline at this interval (0: only from the page's button)")
	flag.Parse()
	if !*serveMode {
		if err := run(context.Background(), os.Stdout, *mode, !*noParty); err != nil {
			fmt.Fprintln(os.Stderr, "demo:", err)
			os.Exit(1)
		}
		return
	}
	m := flags.Shadow
	if *mode != "" {
		var err error
		if m, err = flags.ParseMode(*mode); err != nil {
			fmt.Fprintln(os.Stderr, "demo:", err)
			os.Exit(2)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := serve(ctx, serveConfig{Addr: *addr, FlagsPath: *flagsPath, Mode: m, Recheck: *recheck, Every: *every, PartyKit: !*noParty, Out: os.Stdout})
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

const room = "vid_demo"

// the runs of the pipeline, in the order a video lives through them.
var runs = []struct {
	fn    func(inngestgo.Client, videopipeline.Store) (inngestgo.ServableFunction, error)
	event string
	data  any
	name  string // the notification it sends
}{
	{videopipeline.VideoUploadedFn, videopipeline.EventVideoUploaded,
		videopipeline.VideoUploaded{FileName: room, OriginalMediaURL: "https://uploads.example/vid_demo.mp4"}, videopipeline.NameVideoResourceCreated},
	{videopipeline.VideoReadyFn, videopipeline.EventMuxWebhook, muxHook("video.asset.ready"), videopipeline.NameVideoAssetReady},
	{videopipeline.TranscriptReadyFn, videopipeline.EventTranscriptReady,
		videopipeline.TranscriptReady{VideoResourceID: room, Transcript: "Welcome to the course <3 — let's start & have fun."}, videopipeline.NameTranscriptReady},
	{videopipeline.VideoErroredFn, videopipeline.EventMuxWebhook, muxHook("video.asset.errored"), videopipeline.NameVideoAssetErrored},
}

func muxHook(typ string) map[string]any {
	return map[string]any{"muxWebhookEvent": map[string]any{"type": typ, "data": map[string]any{"id": "asset_vid_demo", "passthrough": room}}}
}

func run(ctx context.Context, out io.Writer, modeName string, wantParty bool) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	// The demo runs on its own servers: the shell's Inngest fallback key
	// and branch, which no option can turn off, must not reach them.
	for _, k := range []string{"INNGEST_SIGNING_KEY_FALLBACK", "INNGEST_ENV"} {
		_ = os.Unsetenv(k)
	}

	// Refuse a bad -mode before starting anything.
	var chosen *flags.Mode
	if modeName != "" {
		m, err := flags.ParseMode(modeName)
		if err != nil {
			return err
		}
		chosen = &m
	}

	// The transports.
	key := inngestrt.NewSigningKey()
	inn, err := inngestrt.Start(ctx, inngestrt.Options{SigningKeys: []string{key}})
	if err != nil {
		return err
	}
	defer inn.Close()
	fmt.Fprintf(out, "Inngest Realtime  %s  (the real server code, in-process)\n", inn.URL())
	var party *partykit.Server
	switch err := partykit.Available(""); {
	case !wantParty:
		fmt.Fprintln(out, "PartyKit          off (-no-partykit)")
	case err != nil:
		fmt.Fprintf(out, "PartyKit          not installed (%v); running Inngest only\n", err)
	default:
		if party, err = partykit.Start(ctx, partykit.Options{}); err != nil {
			return err
		}
		defer party.Close()
		fmt.Fprintf(out, "PartyKit          %s  (the real partykit dev server)\n", party.URL())
	}

	// Every option the environment could supply is set here, so the
	// demo's providers read nothing from the shell: a field set in code
	// wins over its variable, and the fallback key and branch name
	// (INNGEST_SIGNING_KEY_FALLBACK, INNGEST_ENV), which have no "none"
	// value, were cleared from this process's environment above.
	rt, err := inngest.New(&inngest.Options{BaseURL: inn.URL(), SigningKey: key, ChannelSecret: rand.Text() + rand.Text()})
	if err != nil {
		return err
	}
	defer rt.Close()
	// broadcast.New takes two providers: without PartyKit a stand-in takes
	// its place and every publish goes to Inngest (realtime mode).
	var legacy realtime.Provider = realtime.ProviderFunc(func(context.Context, realtime.Message) error {
		return fmt.Errorf("%w: PartyKit is not running", realtime.ErrNotConfigured)
	})
	if party != nil {
		lp, err := legacyparty.New(&legacyparty.Options{BaseURL: party.URL()})
		if err != nil {
			return err
		}
		defer lp.Close()
		legacy = lp
	}
	mode := flags.Realtime
	switch {
	case party == nil:
		if chosen != nil && *chosen != flags.Realtime {
			fmt.Fprintf(out, "-mode %s needs PartyKit; running in realtime mode\n", *chosen)
		}
	case chosen != nil:
		mode = *chosen
	default:
		mode = flags.Shadow
	}
	b, err := broadcast.New(legacy, rt, &broadcast.Options{Resolver: flags.Fixed(mode)})
	if err != nil {
		return err
	}
	defer b.Close(context.Background())
	fmt.Fprintf(out, "Broadcast mode    %s\n\n", b.Route(ctx, room, videopipeline.NameVideoAssetReady).Mode)

	// The app: inngestgo handler with realtime.Middleware, and the token
	// endpoint. A stopwatch around the Broadcast notes when each
	// notification is published, to time its delivery.
	watch := &stopwatch{started: map[string]time.Time{}}
	client, err := inngestgo.NewClient(inngestgo.ClientOpts{
		AppID: "course-builder", Dev: inngestgo.BoolPtr(true), Logger: slog.New(slog.DiscardHandler),
		Middleware: []func() middleware.Middleware{realtime.Middleware(watch.wrap(b))},
	})
	if err != nil {
		return err
	}
	store := videopipeline.NewMemoryStore()
	fns := make([]inngestgo.ServableFunction, len(runs))
	for i, r := range runs {
		if fns[i], err = r.fn(client, store); err != nil {
			return err
		}
	}
	mux := http.NewServeMux()
	mux.Handle("/api/inngest", client.Serve())
	mux.Handle("GET /api/realtime/token", tokens.NewHandler(b, &tokens.HandlerOptions{
		Authenticate: func(r *http.Request) (tokens.Subject, error) {
			if r.Header.Get("Authorization") != "Bearer demo-user" {
				return tokens.Subject{}, errors.New("not signed in")
			}
			return tokens.Subject{ID: "demo-user"}, nil
		},
		Authorize: func(context.Context, tokens.Subject, string, flags.Scope) error { return nil },
	}))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	app := &http.Server{Handler: mux}
	go func() { _ = app.Serve(ln) }()
	defer app.Close()
	appURL := "http://" + ln.Addr().String()
	fmt.Fprintf(out, "App               %s/api/inngest and /api/realtime/token\n", appURL)

	// The browser.
	br, err := openBrowser(ctx, out, appURL, inn, party, mode)
	if err != nil {
		return err
	}
	defer br.close()

	// The pipeline, run as the Inngest executor runs it.
	fmt.Fprintf(out, "\n%-22s %-9s %-10s %s\n", "notification", "transport", "latency", "payload")
	failed := false
	for i, r := range runs {
		req, err := executor.Start(r.event, r.data)
		if err != nil {
			return err
		}
		status, body, _, err := executor.RunToEnd(http.DefaultClient, executor.FunctionURL(appURL+"/api/inngest", fns[i]), req)
		if err != nil {
			return err
		}
		if status != http.StatusOK {
			return fmt.Errorf("%s run ended with status %d: %s", fns[i].Config().ID, status, body)
		}
		want, published := watch.envelope(r.name)
		for _, tr := range br.transports(mode) {
			got, at, err := tr.next(ctx, r.name)
			if err != nil {
				fmt.Fprintf(out, "%-22s %-9s %-10s NOT RECEIVED: %v\n", r.name, tr.name, "-", err)
				failed = true
				continue
			}
			fmt.Fprintf(out, "%-22s %-9s %-10s %s\n", r.name, tr.name, at.Sub(published).Round(10*time.Microsecond), describe(got, want))
		}
	}
	if err := br.expectNothingElse(); err != nil {
		return err
	}
	if failed {
		return errors.New("a notification was not delivered")
	}
	fmt.Fprintf(out, "\nevery notification delivered once on every transport of %s mode\n", mode)
	return nil
}

// describe compares a delivered payload with the envelope that was sent.
func describe(got, want []byte) string {
	switch {
	case bytes.Equal(got, want):
		return "identical to the envelope: " + string(got)
	case bytes.Equal(got, realtimetest.JSSpelling(want)):
		return "the envelope as JSON.stringify spells it: " + string(got)
	}
	return "DIFFERS: " + string(got)
}

// stopwatch notes when each notification was handed to the Broadcast, and
// the envelope the Broadcast sent for it.
type stopwatch struct {
	mu      sync.Mutex
	started map[string]time.Time
	sent    map[string][]byte
}

func (s *stopwatch) wrap(b *broadcast.Broadcast) realtime.Provider {
	return realtime.ProviderFunc(func(ctx context.Context, msg realtime.Message) error {
		// The envelope the Broadcast makes of msg, with the same id: ctx
		// comes from the middleware, so the id derives from the run.
		env, err := realtime.NewEnvelope(ctx, msg)
		if err != nil {
			return err
		}
		s.mu.Lock()
		s.started[msg.Name] = time.Now()
		s.mu.Unlock()
		if err := b.Publish(ctx, msg); err != nil {
			return err
		}
		sent := sentEnvelope(ctx, b, env)
		s.mu.Lock()
		if s.sent == nil {
			s.sent = map[string][]byte{}
		}
		s.sent[msg.Name] = sent
		s.mu.Unlock()
		return nil
	})
}

// sentEnvelope returns what b sent for env: the envelope as its replay log
// numbered and keeps it, or env without seq if the log has none.
func sentEnvelope(ctx context.Context, b *broadcast.Broadcast, env *realtime.Envelope) []byte {
	msg := env.Message()
	page, err := b.History(ctx, msg.Room, 0, 100)
	if err == nil {
		for _, e := range page.Entries {
			if e.ID == msg.ID {
				return e.Envelope
			}
		}
	}
	return env.Bytes()
}

func (s *stopwatch) envelope(name string) ([]byte, time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sent[name], s.started[name]
}

// browser holds a page's subscriptions: one Inngest subscription per scope
// (with a token from the app's endpoint) and one PartyKit websocket.
type browser struct {
	inngest []*inngestrt.Subscription
	party   *partykit.Subscription
	recv    *receiver
}

type delivery struct {
	name    string
	payload []byte
	at      time.Time
}

// receiver collects deliveries per transport as they arrive.
type receiver struct {
	mu     sync.Mutex
	got    map[string][]delivery
	change chan struct{}
}

func (r *receiver) add(transport string, d delivery) {
	r.mu.Lock()
	r.got[transport] = append(r.got[transport], d)
	close(r.change)
	r.change = make(chan struct{})
	r.mu.Unlock()
}

type transport struct {
	name string
	r    *receiver
}

// next waits for the delivery of name on this transport and removes it.
func (t transport) next(ctx context.Context, name string) ([]byte, time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for {
		t.r.mu.Lock()
		for i, d := range t.r.got[t.name] {
			if d.name == name {
				t.r.got[t.name] = append(t.r.got[t.name][:i], t.r.got[t.name][i+1:]...)
				t.r.mu.Unlock()
				return d.payload, d.at, nil
			}
		}
		change := t.r.change
		t.r.mu.Unlock()
		select {
		case <-change:
		case <-ctx.Done():
			return nil, time.Time{}, ctx.Err()
		}
	}
}

func (b *browser) transports(mode flags.Mode) []transport {
	var ts []transport
	if b.party != nil && mode.PublishesLegacy() {
		ts = append(ts, transport{"partykit", b.recv})
	}
	if mode.PublishesRealtime() || b.party == nil {
		ts = append(ts, transport{"inngest", b.recv})
	}
	return ts
}

// expectNothingElse reports deliveries nobody waited for: duplicates, or a
// transport outside the mode.
func (b *browser) expectNothingElse() error {
	time.Sleep(200 * time.Millisecond) // a short window for stragglers, not a sync point
	b.recv.mu.Lock()
	defer b.recv.mu.Unlock()
	for tr, ds := range b.recv.got {
		for _, d := range ds {
			return fmt.Errorf("unexpected %s delivery on %s: %s", d.name, tr, d.payload)
		}
	}
	return nil
}

func (b *browser) close() {
	for _, s := range b.inngest {
		_ = s.Close()
	}
	if b.party != nil {
		_ = b.party.Close()
	}
}

func openBrowser(ctx context.Context, out io.Writer, appURL string, inn *inngestrt.Server, party *partykit.Server, mode flags.Mode) (*browser, error) {
	b := &browser{recv: &receiver{got: map[string][]delivery{}, change: make(chan struct{})}}
	if mode.PublishesRealtime() || party == nil {
		for _, scope := range []flags.Scope{flags.ScopeVideoUpload, flags.ScopeVideoReady, flags.ScopeTranscript, flags.ScopeVideoErrored} {
			tok, err := fetchToken(ctx, appURL, scope)
			if err != nil {
				b.close()
				return nil, err
			}
			sub, err := inn.Subscribe(ctx, tok.Key)
			if err != nil {
				b.close()
				return nil, err
			}
			b.inngest = append(b.inngest, sub)
			go func() {
				for {
					m, err := sub.NextData(context.Background())
					if err != nil {
						return
					}
					b.recv.add("inngest", delivery{name: m.Topic, payload: m.Data, at: time.Now()})
				}
			}()
		}
		fmt.Fprintf(out, "Browser           4 Inngest subscriptions on channel %s, tokens from the app's endpoint\n", room)
	}
	if party != nil {
		sub, err := party.Subscribe(ctx, room)
		if err != nil {
			b.close()
			return nil, err
		}
		b.party = sub
		go func() {
			for {
				p, err := sub.Next(context.Background())
				if err != nil {
					return
				}
				m, _ := realtime.DecodeEnvelope(p)
				b.recv.add("partykit", delivery{name: m.Name, payload: p, at: time.Now()})
			}
		}()
		fmt.Fprintf(out, "Browser           PartyKit websocket on /party/%s\n", room)
	}
	return b, nil
}

// fetchToken asks the app for a token, as useRealtime's token function
// (inngest/react) does.
func fetchToken(ctx context.Context, appURL string, scope flags.Scope) (tokens.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, appURL+"/api/realtime/token?"+url.Values{"room": {room}, "scope": {string(scope)}}.Encode(), nil)
	if err != nil {
		return tokens.Response{}, err
	}
	req.Header.Set("Authorization", "Bearer demo-user")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return tokens.Response{}, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return tokens.Response{}, fmt.Errorf("token for %s: status %d: %s", scope, resp.StatusCode, strings.TrimSpace(string(body)))
	}
	var tok tokens.Response
	return tok, json.Unmarshal(body, &tok)
}
