package main

import (
	"context"
	"crypto/rand"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/inngest/inngestgo"
	"github.com/inngest/inngestgo/middleware"
	"github.com/open-feature/go-sdk/openfeature/isolated"

	"github.com/coursebuilder/realtime-go/broadcast"
	"github.com/coursebuilder/realtime-go/examples/internal/executor"
	"github.com/coursebuilder/realtime-go/examples/internal/faultproxy"
	"github.com/coursebuilder/realtime-go/examples/internal/flagsource"
	"github.com/coursebuilder/realtime-go/examples/internal/metrics"
	"github.com/coursebuilder/realtime-go/examples/videopipeline"
	"github.com/coursebuilder/realtime-go/flags"
	"github.com/coursebuilder/realtime-go/harness/inngestrt"
	"github.com/coursebuilder/realtime-go/harness/partykit"
	"github.com/coursebuilder/realtime-go/legacyparty"
	"github.com/coursebuilder/realtime-go/realtime"
	"github.com/coursebuilder/realtime-go/realtime/inngest"
	"github.com/coursebuilder/realtime-go/tokens"
)

// The live page and the browser client it imports. static/realtime-client.js
// is a copy of client/dist/realtime-client.js, which lies outside this
// module (go:embed cannot reach it); TestBundleIsTheClientsDist fails when
// the two differ, and go generate copies it again.
//
//go:generate cp ../../client/dist/realtime-client.js static/realtime-client.js
//go:embed static
var static embed.FS

// The scopes of the pipeline's four notifications, each watched by its own
// subscription on the page (a token covers the names of one scope).
var pageScopes = []flags.Scope{flags.ScopeVideoUpload, flags.ScopeVideoReady, flags.ScopeTranscript, flags.ScopeVideoErrored}

// session is the demo user's cookie, set by the page and accepted by the
// token endpoint (as is "Authorization: Bearer demo-user").
const session = "demo_session"

// serveConfig is what -serve needs; main fills it from the command line.
type serveConfig struct {
	// Addr is where the app (the page, the token endpoint, the pipeline)
	// listens; the browsers' relays listen on its host.
	Addr string
	// FlagsPath is the flags file; "" means demo.flags in a new temp dir.
	// A file that does not exist is created with REALTIME_DEFAULT_MODE=Mode.
	FlagsPath string
	// Mode is the mode a new flags file starts in.
	Mode flags.Mode
	// Recheck is how often a page asks the token endpoint again where to
	// listen, whichever transport it reads.
	Recheck time.Duration
	// Every runs the pipeline at this interval; 0 runs it only on request.
	Every time.Duration
	// PartyKit starts the PartyKit dev server when it is installed.
	PartyKit bool
	Out      io.Writer
}

// serve runs the live demo until ctx ends.
func serve(ctx context.Context, cfg serveConfig) error {
	d, err := startServe(ctx, cfg)
	if err != nil {
		return err
	}
	defer d.close()
	looped := make(chan struct{})
	go func() {
		defer close(looped)
		if cfg.Every > 0 {
			d.loop(ctx, cfg.Every)
		}
	}()
	<-ctx.Done()
	fmt.Fprintln(cfg.Out, "\nstopping")
	<-looped // a run under way ends first
	return nil
}

// liveDemo is the running -serve mode: both transports, the Broadcast over
// the flags file, the app's HTTP server and the Go subscribers.
type liveDemo struct {
	url       string
	flagsPath string
	out       io.Writer
	hasParty  bool

	b      *broadcast.Broadcast
	faults *faults
	fns    []inngestgo.ServableFunction
	http   *http.Client
	relays []*relay
	pubs   *publications

	runMu sync.Mutex // one pipeline run at a time

	healMu    sync.Mutex
	healTimer *time.Timer

	closers []func() // in reverse order at close
	once    sync.Once
}

// startServe starts everything and returns once the page can be opened.
func startServe(ctx context.Context, cfg serveConfig) (_ *liveDemo, err error) {
	if cfg.Out == nil {
		cfg.Out = io.Discard
	}
	if cfg.Recheck <= 0 {
		cfg.Recheck = 2 * time.Second
	}
	d := &liveDemo{out: cfg.Out, pubs: newPublications()}
	defer func() {
		if err != nil {
			d.close()
		}
	}()
	out := cfg.Out
	// Only the flags file counts: the shell's flags variables, and its
	// Inngest fallback key and branch, must not reach the demo.
	for _, k := range append(flags.EnvVariables(), "INNGEST_SIGNING_KEY_FALLBACK", "INNGEST_ENV") {
		_ = os.Unsetenv(k)
	}
	if d.flagsPath, err = flagsFile(cfg.FlagsPath, cfg.Mode, d); err != nil {
		return nil, err
	}

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, err
	}
	d.defer_(func() { _ = ln.Close() })
	host, _, _ := net.SplitHostPort(ln.Addr().String())
	d.url = "http://" + reachable(ln.Addr().String())

	// The metrics, as an app exports them to Prometheus (GET /metrics).
	exp, err := metrics.New("github.com/coursebuilder/realtime-go/examples/demo")
	if err != nil {
		return nil, err
	}
	d.defer_(func() { _ = exp.Shutdown(context.Background()) })
	meter := exp.Meter

	// The transports, each behind a relay for the browsers. Everything
	// reaches Inngest through a fault proxy, for rehearsals (POST
	// /api/demo/fault).
	key := inngestrt.NewSigningKey()
	inn, err := inngestrt.Start(ctx, inngestrt.Options{SigningKeys: []string{key}})
	if err != nil {
		return nil, err
	}
	d.defer_(func() { _ = inn.Close() })
	innURL, err := url.Parse(inn.URL())
	if err != nil {
		return nil, err
	}
	proxy, err := faultproxy.Start(innURL.Host)
	if err != nil {
		return nil, err
	}
	d.defer_(func() { _ = proxy.Close() })
	d.faults = &faults{inn: inn, key: key, proxy: proxy, current: faultNone}
	innProxied := "http://" + proxy.Addr()
	innRelay, err := d.relay(host, innProxied)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(out, "Inngest Realtime  %s  (the real server code, in-process, reached via %s; browsers via %s)\n", inn.URL(), proxy.Addr(), innRelay.addr())
	var party *partykit.Server
	var partyRelay *relay
	switch why := partykit.Available(""); {
	case !cfg.PartyKit:
		fmt.Fprintln(out, "PartyKit          off (-no-partykit): every scope is in realtime mode, whatever the flags say")
	case why != nil:
		fmt.Fprintf(out, "PartyKit          not installed (%v): every scope is in realtime mode, whatever the flags say\n", why)
	default:
		if party, err = partykit.Start(ctx, partykit.Options{}); err != nil {
			return nil, err
		}
		d.defer_(func() { _ = party.Close() })
		if partyRelay, err = d.relay(host, party.URL()); err != nil {
			return nil, err
		}
		d.hasParty = true
		fmt.Fprintf(out, "PartyKit          %s  (the real partykit dev server; browsers via %s)\n", party.URL(), partyRelay.addr())
	}

	// The providers and the Broadcast over the flags file.
	rt, err := inngest.New(&inngest.Options{BaseURL: innProxied, SigningKey: key, ChannelSecret: rand.Text() + rand.Text()})
	if err != nil {
		return nil, err
	}
	d.defer_(func() { _ = rt.Close() })
	var legacy realtime.Provider = realtime.ProviderFunc(func(context.Context, realtime.Message) error {
		return fmt.Errorf("%w: PartyKit is not running", realtime.ErrNotConfigured)
	})
	var resolver flags.Resolver = flags.Fixed(flags.Realtime)
	if party != nil {
		lp, err := legacyparty.New(&legacyparty.Options{BaseURL: party.URL()})
		if err != nil {
			return nil, err
		}
		d.defer_(func() { _ = lp.Close() })
		legacy = lp
		api := isolated.NewAPI()
		d.defer_(func() { _ = api.Shutdown(context.Background()) })
		if err := api.SetProviderAndWait(ctx, flags.NewEnvProvider(&flags.EnvOptions{File: d.flagsPath})); err != nil {
			return nil, err
		}
		ev := flags.NewEvaluator(api.NewClient(), &flags.Options{App: "demo", Meter: meter})
		d.defer_(func() { _ = ev.Close() })
		resolver = ev
	}
	if d.b, err = broadcast.New(legacy, rt, &broadcast.Options{Resolver: resolver, Meter: meter}); err != nil {
		return nil, err
	}
	d.defer_(func() {
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = d.b.Close(cctx)
	})

	// The Go subscribers, straight to each server (not through the relays
	// nor the fault proxy):
	// what each transport carried, and when.
	if err := d.subscribeGo(ctx, rt, inn.URL(), party); err != nil {
		return nil, err
	}

	// The app.
	tr := &http.Transport{}
	d.http = &http.Client{Transport: tr}
	d.defer_(tr.CloseIdleConnections)
	client, err := inngestgo.NewClient(inngestgo.ClientOpts{
		AppID: "course-builder", Dev: inngestgo.BoolPtr(true), Logger: slog.New(slog.DiscardHandler),
		Middleware: []func() middleware.Middleware{realtime.Middleware(d.publisher())},
	})
	if err != nil {
		return nil, err
	}
	store := videopipeline.NewMemoryStore()
	d.fns = make([]inngestgo.ServableFunction, len(runs))
	for i, r := range runs {
		if d.fns[i], err = r.fn(client, store); err != nil {
			return nil, err
		}
	}
	opts := &tokens.HandlerOptions{
		Authenticate:   authenticate,
		Authorize:      func(context.Context, tokens.Subject, string, flags.Scope) error { return nil },
		BrowserBaseURL: "http://" + reachable(innRelay.addr()),
		Recheck:        cfg.Recheck,
		Meter:          meter,
	}
	if partyRelay != nil {
		opts.PartyKitURL = "http://" + reachable(partyRelay.addr())
	}
	th := tokens.NewHandler(recheckRouter{d.b, cfg.Recheck}, opts)
	if err := th.Err(); err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/api/inngest", client.Serve())
	mux.Handle("GET /api/realtime/token", th)
	mux.Handle("GET /metrics", exp.Handler)
	d.routes(mux)
	app := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = app.Serve(ln)
	}()
	d.defer_(func() {
		_ = app.Close()
		<-served
	})

	if d.hasParty {
		fmt.Fprintf(out, "Flags file        %s  (re-read every 250ms; pages follow within %v)\n", d.flagsPath, cfg.Recheck)
		fmt.Fprintf(out, "  define:         %s\n", flagsource.Setflag(d.flagsPath))
		fmt.Fprintf(out, "  flip:           setflag REALTIME_DEFAULT_MODE primary   (legacy, shadow, primary, realtime)\n")
		fmt.Fprintf(out, "  kill switch:    setflag REALTIME_KILL_SWITCH true       (false undoes it; the modes are kept)\n")
	}
	fmt.Fprintf(out, "Metrics           %s/metrics  (Prometheus text format)\n", d.url)
	fmt.Fprintf(out, "Faults            curl -X POST '%s/api/demo/fault?kind=key'   (key, down, hang; none removes it)\n", d.url)
	fmt.Fprintf(out, "Live page         %s/\n", d.url)
	return d, nil
}

// The faults POST /api/demo/fault plays, for on-call rehearsals.
const (
	faultNone = "none" // all healthy
	faultKey  = "key"  // Inngest refuses the app's signing key (it was rotated): 401
	faultDown = "down" // Inngest's port refuses connections
	faultHang = "hang" // Inngest accepts connections and never answers
)

// faults holds the fault in force on the app's way to Inngest.
type faults struct {
	inn   *inngestrt.Server
	key   string // the app's signing key
	proxy *faultproxy.Proxy

	mu      sync.Mutex
	current string
}

// set puts kind in force, removing the previous fault first.
func (f *faults) set(kind string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch kind {
	case faultNone, faultKey, faultDown, faultHang:
	default:
		return fmt.Errorf("demo: kind must be one of %s, %s, %s, %s", faultNone, faultKey, faultDown, faultHang)
	}
	if err := f.inn.SetSigningKeys(f.key); err != nil {
		return err
	}
	proxyFault := faultproxy.None
	switch kind {
	case faultKey:
		// A new key the app does not have: the real server's auth answers 401.
		if err := f.inn.SetSigningKeys(inngestrt.NewSigningKey()); err != nil {
			return err
		}
	case faultDown:
		proxyFault = faultproxy.Down
	case faultHang:
		proxyFault = faultproxy.Hang
	}
	if err := f.proxy.Set(proxyFault); err != nil {
		return err
	}
	f.current = kind
	return nil
}

func (f *faults) get() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.current == "" {
		return faultNone
	}
	return f.current
}

// reachable is addr as a browser on this machine dials it: a listener on
// every interface (-addr :8080) is reached at 127.0.0.1.
func reachable(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if ip := net.ParseIP(host); err == nil && ip != nil && ip.IsUnspecified() {
		return net.JoinHostPort("127.0.0.1", port)
	}
	return addr
}

// defer_ registers f to run at close, after everything registered later.
func (d *liveDemo) defer_(f func()) { d.closers = append(d.closers, f) }

func (d *liveDemo) relay(host, target string) (*relay, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, err
	}
	r, err := startRelay(host, u.Host)
	if err != nil {
		return nil, err
	}
	d.relays = append(d.relays, r)
	d.defer_(func() { _ = r.close() })
	return r, nil
}

// close stops everything startServe started. Safe to call twice.
func (d *liveDemo) close() {
	d.once.Do(func() {
		d.healMu.Lock()
		if d.healTimer != nil {
			d.healTimer.Stop()
		}
		d.healMu.Unlock()
		for i := len(d.closers) - 1; i >= 0; i-- {
			d.closers[i]()
		}
	})
}

// flagsFile returns the flags file to use, creating it (and, for "", its
// temp dir, removed at close) with REALTIME_DEFAULT_MODE=mode when it does
// not exist. An existing file is kept as it is.
func flagsFile(path string, mode flags.Mode, d *liveDemo) (string, error) {
	if path == "" {
		dir, err := os.MkdirTemp("", "demo-")
		if err != nil {
			return "", err
		}
		d.defer_(func() { _ = os.RemoveAll(dir) })
		path = filepath.Join(dir, "demo.flags")
	}
	if _, err := os.Stat(path); err == nil {
		return path, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	content := "# the demo re-reads this file while it runs: edit it\nREALTIME_DEFAULT_MODE=" + mode.String() + "\n"
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		return "", fmt.Errorf("write flags file: %w", err)
	}
	return path, nil
}

// authenticate accepts the demo user, from the page's cookie or a bearer
// header.
func authenticate(r *http.Request) (tokens.Subject, error) {
	if c, err := r.Cookie(session); err == nil && c.Value == "demo-user" {
		return tokens.Subject{ID: "demo-user"}, nil
	}
	if r.Header.Get("Authorization") == "Bearer demo-user" {
		return tokens.Subject{ID: "demo-user"}, nil
	}
	return tokens.Subject{}, errors.New("not signed in")
}

// recheckRouter is the Broadcast as the token endpoint's Router, with the
// expiry of every Inngest answer brought forward to at most recheck from
// now. tokens.HandlerOptions.Recheck sets only the expiry of PartyKit
// answers; an Inngest answer expires with its key, a minute after it was
// minted, so without this a page reading Inngest would follow a rollback
// only up to a minute later. The key itself still lives its minute: the
// page asks again sooner, keeps its connection when the answer is the same
// transport, and moves when it is not.
type recheckRouter struct {
	*broadcast.Broadcast
	recheck time.Duration
}

func (r recheckRouter) SubscriptionToken(ctx context.Context, room string, names []string) (inngest.Token, error) {
	tok, err := r.Broadcast.SubscriptionToken(ctx, room, names)
	if limit := time.Now().Add(r.recheck); err == nil && tok.Expires.After(limit) {
		tok.Expires = limit
	}
	return tok, err
}

// --- publishing and what the Go subscribers saw ----------------------------

// publication is one notification the pipeline published, as
// /api/demo/published lists it.
type publication struct {
	ID    string `json:"id"`
	Seq   uint64 `json:"seq"`
	Name  string `json:"name"`
	Scope string `json:"scope"`
	// Mode is the scope's mode (Broadcast.Route) just before the publish.
	Mode string `json:"mode"`
	// PublishedAt is when the envelope was handed to the Broadcast, in ms
	// since the Unix epoch (the page's latency is its receive time minus
	// this: both clocks are this machine's).
	PublishedAt float64 `json:"publishedAt"`
	// Go maps a transport to the latency (ms) of the Go subscriber on it,
	// for each transport that carried the message.
	Go    map[string]float64 `json:"go"`
	Error string             `json:"error,omitempty"`
}

// publications is the list of every publication, in order.
type publications struct {
	mu      sync.Mutex
	list    []*publication
	byID    map[string]*publication
	total   int           // publications ever added
	lastSeq uint64        // the highest seq looked up
	change  chan struct{} // closed and replaced on every receipt
}

func newPublications() *publications {
	return &publications{byID: map[string]*publication{}, change: make(chan struct{})}
}

// wait returns once cond, called with the list locked, holds after a
// receipt (or at once), or ctx's error.
func (p *publications) wait(ctx context.Context, cond func([]*publication) bool) error {
	for {
		p.mu.Lock()
		ok, change := cond(p.list), p.change
		p.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-change:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func unixMillis(t time.Time) float64 { return float64(t.UnixMicro()) / 1000 }

// maxPublications bounds the list: a demo left running with -every keeps
// the newest, as the replay log keeps each room's last 1,000 messages.
const maxPublications = 1000

// add appends pub, stamped with the time now, dropping the oldest beyond
// maxPublications.
func (p *publications) add(pub *publication) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, dup := p.byID[pub.ID]; !dup {
		if len(p.list) == maxPublications {
			delete(p.byID, p.list[0].ID)
			p.list = append(p.list[:0:0], p.list[1:]...)
		}
		p.list = append(p.list, pub)
		p.byID[pub.ID] = pub
		p.total++
	}
	pub.PublishedAt = unixMillis(time.Now())
}

// received notes that the Go subscriber on transport received id at at.
func (p *publications) received(transport, id string, at time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if pub := p.byID[id]; pub != nil {
		if _, dup := pub.Go[transport]; !dup {
			pub.Go[transport] = unixMillis(at) - pub.PublishedAt
			close(p.change)
			p.change = make(chan struct{})
		}
	}
}

// last returns copies of the newest n publications (all for n < 0), oldest
// first.
func (p *publications) last(n int) []publication {
	p.mu.Lock()
	defer p.mu.Unlock()
	if n < 0 || n > len(p.list) {
		n = len(p.list)
	}
	out := make([]publication, 0, n)
	for _, pub := range p.list[len(p.list)-n:] {
		c := *pub
		c.Go = make(map[string]float64, len(pub.Go))
		for k, v := range pub.Go {
			c.Go[k] = v
		}
		out = append(out, c)
	}
	return out
}

// publisher is the provider realtime.Middleware gives the pipeline: the
// Broadcast, noting each envelope it is handed.
func (d *liveDemo) publisher() realtime.Provider {
	return realtime.ProviderFunc(func(ctx context.Context, msg realtime.Message) error {
		env, err := realtime.NewEnvelope(ctx, msg)
		if err != nil {
			return err
		}
		pub := &publication{ID: env.Message().ID, Name: msg.Name, Scope: string(flags.ScopeOf(msg.Name)),
			Mode: d.b.Route(ctx, msg.Room, msg.Name).Mode.String(), Go: map[string]float64{}}
		d.pubs.add(pub)
		err = d.b.PublishEnvelope(ctx, env)
		d.lookUpSeq(ctx, pub, msg.Room)
		if err != nil {
			d.pubs.mu.Lock()
			pub.Error = err.Error()
			d.pubs.mu.Unlock()
		}
		fmt.Fprintf(d.out, "published #%-4d %-22s %s  mode %-8s %s\n", pub.Seq, pub.Name, pub.ID, pub.Mode, errText(err))
		return err
	})
}

func errText(err error) string {
	if err != nil {
		return "error: " + err.Error()
	}
	return ""
}

// lookUpSeq finds the seq the replay log gave pub.
func (d *liveDemo) lookUpSeq(ctx context.Context, pub *publication, room string) {
	d.pubs.mu.Lock()
	after := d.pubs.lastSeq
	d.pubs.mu.Unlock()
	page, err := d.b.History(ctx, room, after, 100)
	if err != nil {
		return
	}
	d.pubs.mu.Lock()
	defer d.pubs.mu.Unlock()
	for _, e := range page.Entries {
		if e.ID == pub.ID {
			pub.Seq = e.Seq
		}
		d.pubs.lastSeq = max(d.pubs.lastSeq, e.Seq)
	}
}

// subscribeGo subscribes in Go to the room on each transport, with no gap
// repair: the Go subscriber on Inngest (inngest.Subscribe, a token for the
// four names) and a PartyKit websocket. They tell which transports carried
// a message and how fast. The Inngest one connects to innURL, the server
// itself, not through the fault proxy: it observes what the server
// carried, whatever fault the app's way to it has.
func (d *liveDemo) subscribeGo(ctx context.Context, rt *inngest.Provider, innURL string, party *partykit.Server) error {
	var names []string
	for _, s := range pageScopes {
		names = append(names, s.Names()...)
	}
	sub, err := inngest.Subscribe(ctx, innURL, rt.TokenFunc(room, names...), func(m inngest.Message) {
		d.pubs.received(broadcast.TransportInngest, m.ID, time.Now())
	}, nil)
	if err != nil {
		return err
	}
	d.defer_(func() { _ = sub.Close() })
	if party == nil {
		return nil
	}
	ps, err := party.Subscribe(ctx, room)
	if err != nil {
		return err
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			p, err := ps.Next(context.Background())
			if err != nil {
				return
			}
			if m, err := realtime.DecodeEnvelope(p); err == nil {
				d.pubs.received(broadcast.TransportPartyKit, m.ID, time.Now())
			}
		}
	}()
	d.defer_(func() {
		_ = ps.Close()
		<-done
	})
	return nil
}

// runPipeline runs the four video functions once, as the Inngest executor
// runs them, and returns what they published.
func (d *liveDemo) runPipeline(ctx context.Context) ([]publication, error) {
	d.runMu.Lock()
	defer d.runMu.Unlock()
	d.pubs.mu.Lock()
	first := d.pubs.total
	d.pubs.mu.Unlock()
	for i, r := range runs {
		req, err := executor.Start(r.event, r.data)
		if err != nil {
			return nil, err
		}
		// Each run its own id, as Inngest gives it: message ids derive
		// from the run, so a second run is new messages, not a retry.
		req.Ctx.RunID = rand.Text()
		status, body, _, err := executor.RunToEnd(d.http, executor.FunctionURL(d.url+"/api/inngest", d.fns[i]), req)
		if err != nil {
			return nil, err
		}
		if status != http.StatusOK {
			return nil, fmt.Errorf("%s run ended with status %d: %s", d.fns[i].Config().ID, status, body)
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
	d.pubs.mu.Lock()
	n := d.pubs.total - first
	d.pubs.mu.Unlock()
	return d.pubs.last(n), nil
}

// loop runs the pipeline every interval until ctx ends.
func (d *liveDemo) loop(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if _, err := d.runPipeline(ctx); err != nil && ctx.Err() == nil {
			fmt.Fprintln(d.out, "run:", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// --- the page's endpoints --------------------------------------------------

func (d *liveDemo) routes(mux *http.ServeMux) {
	page, _ := fs.Sub(static, "static")
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.SetCookie(w, &http.Cookie{Name: session, Value: "demo-user", Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode})
		w.Header().Set("Cache-Control", "no-store")
		http.ServeFileFS(w, r, page, "index.html")
	})
	mux.HandleFunc("GET /realtime-client.js", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
		http.ServeFileFS(w, r, page, "realtime-client.js")
	})
	mux.HandleFunc("GET /api/realtime/modes", d.modes)
	mux.HandleFunc("GET /api/demo/published", func(w http.ResponseWriter, r *http.Request) {
		n, err := parseLast(r.URL.Query())
		if err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"room": room, "published": d.pubs.last(n)})
	})
	mux.HandleFunc("POST /api/demo/run", func(w http.ResponseWriter, r *http.Request) {
		pubs, err := d.runPipeline(r.Context())
		if err != nil {
			writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"published": pubs})
	})
	mux.HandleFunc("POST /api/demo/cut", func(w http.ResponseWriter, r *http.Request) {
		hold, err := parseHold(r.URL.Query())
		if err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"cut": d.cut(hold), "refusingFor": hold.String()})
	})
	mux.HandleFunc("POST /api/demo/fault", func(w http.ResponseWriter, r *http.Request) {
		kind := r.URL.Query().Get("kind")
		if err := d.faults.set(kind); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		fmt.Fprintf(d.out, "fault: %s\n", kind)
		writeJSON(w, http.StatusOK, map[string]string{"fault": kind})
	})
	mux.HandleFunc("GET /api/demo/fault", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"fault": d.faults.get()})
	})
	mux.HandleFunc("POST /api/demo/heal", func(w http.ResponseWriter, r *http.Request) {
		d.heal()
		writeJSON(w, http.StatusOK, map[string]any{"healed": true})
	})
}

// modes answers the mode of each scope of the page's room, as the
// Broadcast routes publishes (and the token endpoint answers) now.
func (d *liveDemo) modes(w http.ResponseWriter, r *http.Request) {
	type scope struct {
		Scope string   `json:"scope"`
		Names []string `json:"names"`
		Mode  string   `json:"mode"`
	}
	var scopes []scope
	for _, s := range pageScopes {
		scopes = append(scopes, scope{string(s), s.Names(), d.b.Route(r.Context(), room, s.Names()[0]).Mode.String()})
	}
	writeJSON(w, http.StatusOK, map[string]any{"room": room, "flagsFile": d.flagsPath, "partykit": d.hasParty, "scopes": scopes})
}

// cut drops the browsers' connections to both transports and refuses new
// ones for hold (none for 0); it returns how many it dropped.
func (d *liveDemo) cut(hold time.Duration) int {
	d.healMu.Lock()
	defer d.healMu.Unlock()
	if d.healTimer != nil {
		d.healTimer.Stop()
		d.healTimer = nil
	}
	n := 0
	for _, r := range d.relays {
		n += r.cut(hold > 0)
	}
	if hold > 0 {
		d.healTimer = time.AfterFunc(hold, d.heal)
	}
	fmt.Fprintf(d.out, "cut %d browser connections; refusing new ones for %v\n", n, hold)
	return n
}

// heal lets the browsers connect again.
func (d *liveDemo) heal() {
	for _, r := range d.relays {
		r.heal()
	}
}

// maxHold bounds how long a cut may refuse connections.
const maxHold = 5 * time.Minute

// parseHold reads the cut's "for" parameter: a duration from 0 to 5m
// (time.ParseDuration's syntax), 0 when absent.
func parseHold(q url.Values) (time.Duration, error) {
	s := q.Get("for")
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 || d > maxHold {
		return 0, fmt.Errorf("demo: for must be a duration from 0 to %v, such as 2s", maxHold)
	}
	return d, nil
}

// parseLast reads the published list's "last" parameter: how many of the
// newest publications to return, -1 (all that are kept) when absent.
func parseLast(q url.Values) (int, error) {
	s := q.Get("last")
	if s == "" {
		return -1, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, errors.New("demo: last must be a non-negative integer")
	}
	return n, nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
