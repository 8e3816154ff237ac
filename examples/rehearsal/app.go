package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/open-feature/go-sdk/openfeature/isolated"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/coursebuilder/realtime-go/broadcast"
	"github.com/coursebuilder/realtime-go/examples/internal/faultproxy"
	"github.com/coursebuilder/realtime-go/examples/internal/metrics"
	"github.com/coursebuilder/realtime-go/flags"
	"github.com/coursebuilder/realtime-go/harness/inngestrt"
	"github.com/coursebuilder/realtime-go/harness/partykit"
	"github.com/coursebuilder/realtime-go/legacyparty"
	"github.com/coursebuilder/realtime-go/realtime"
	"github.com/coursebuilder/realtime-go/realtime/inngest"
)

// The room every message of the rehearsal goes to, and its event: scope
// video-ready.
const (
	room      = "vid_rehearsal"
	eventName = "video.asset.ready"
)

// The faults the rehearsal can inject into the app's Inngest.
const (
	faultKey  = "key"  // the real server refuses the app's signing key (rotated): 401
	faultDown = "down" // the port refuses connections (the fault proxy)
	faultHang = "hang" // connections accepted, never answered (the fault proxy)
)

// app is the rehearsal's application and the servers it talks to: the real
// Inngest realtime server behind a fault proxy, the real PartyKit dev
// server, a Broadcast over a flags file with its metrics on /metrics, and a
// Go subscriber on each transport for the room.
type app struct {
	metricsAddr string // host:port serving GET /metrics

	inn   *inngestrt.Server
	key   string
	proxy *faultproxy.Proxy
	b     *broadcast.Broadcast
	seen  *deliveries

	closers []func() // run in reverse order by close
}

// startApp starts everything; onFlip receives each mode change the
// Broadcast observes (the flip log).
func startApp(ctx context.Context, flagsPath string, onFlip func(broadcast.ModeChange)) (_ *app, err error) {
	a := &app{seen: newDeliveries()}
	defer func() {
		if err != nil {
			a.close()
		}
	}()

	// Metrics, as an app exports them (monitoring/alerts.yml's names).
	exp, err := metrics.New("github.com/coursebuilder/realtime-go/examples/rehearsal")
	if err != nil {
		return nil, err
	}
	a.defer_(func() { _ = exp.Shutdown(context.Background()) })
	meter := exp.Meter
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	a.metricsAddr = ln.Addr().String()
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", exp.Handler)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = srv.Serve(ln)
	}()
	a.defer_(func() {
		_ = srv.Close()
		<-served
	})

	// Inngest: the real server code, reached by the app through a fault proxy.
	a.key = inngestrt.NewSigningKey()
	if a.inn, err = inngestrt.Start(ctx, inngestrt.Options{SigningKeys: []string{a.key}}); err != nil {
		return nil, err
	}
	a.defer_(func() { _ = a.inn.Close() })
	innURL, err := url.Parse(a.inn.URL())
	if err != nil {
		return nil, err
	}
	if a.proxy, err = faultproxy.Start(innURL.Host); err != nil {
		return nil, err
	}
	a.defer_(func() { _ = a.proxy.Close() })
	rt, err := inngest.New(&inngest.Options{BaseURL: "http://" + a.proxy.Addr(), SigningKey: a.key, ChannelSecret: rand.Text() + rand.Text()})
	if err != nil {
		return nil, err
	}
	a.defer_(func() { _ = rt.Close() })

	// PartyKit: the real dev server.
	party, err := partykit.Start(ctx, partykit.Options{})
	if err != nil {
		return nil, err
	}
	a.defer_(func() { _ = party.Close() })
	lp, err := legacyparty.New(&legacyparty.Options{BaseURL: party.URL()})
	if err != nil {
		return nil, err
	}
	a.defer_(func() { _ = lp.Close() })

	// The flags file, re-read every 250 ms, and the Broadcast over it. Its
	// publish log lines say which mode and transports each message took.
	api := isolated.NewAPI()
	a.defer_(func() { _ = api.Shutdown(context.Background()) })
	if err := api.SetProviderAndWait(ctx, flags.NewEnvProvider(&flags.EnvOptions{File: flagsPath})); err != nil {
		return nil, err
	}
	ev := flags.NewEvaluator(api.NewClient(), &flags.Options{App: "rehearsal", Meter: meter})
	a.defer_(func() { _ = ev.Close() })
	core, logs := observer.New(zapcore.InfoLevel)
	a.seen.logs = logs
	if a.b, err = broadcast.New(lp, rt, &broadcast.Options{Resolver: ev, Meter: meter, Logger: zap.New(core), OnModeChange: onFlip}); err != nil {
		return nil, err
	}
	a.defer_(func() {
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = a.b.Close(cctx)
	})

	// The subscribers, straight to each server (the fault is on the app's
	// way to Inngest, not the browsers').
	sub, err := inngest.Subscribe(ctx, a.inn.URL(), rt.TokenFunc(room, eventName), func(m inngest.Message) {
		a.seen.received(transportInngest, m.ID)
	}, nil)
	if err != nil {
		return nil, fmt.Errorf("inngest subscriber: %w", err)
	}
	a.defer_(func() { _ = sub.Close() })
	ps, err := party.Subscribe(ctx, room)
	if err != nil {
		return nil, fmt.Errorf("partykit subscriber: %w", err)
	}
	read := make(chan struct{})
	go func() {
		defer close(read)
		for {
			p, err := ps.Next(context.Background())
			if err != nil {
				return
			}
			if m, err := realtime.DecodeEnvelope(p); err == nil {
				a.seen.received(transportPartyKit, m.ID)
			}
		}
	}()
	a.defer_(func() {
		_ = ps.Close()
		<-read
	})
	return a, nil
}

func (a *app) defer_(f func()) { a.closers = append(a.closers, f) }

// close stops everything startApp started, the last started first.
func (a *app) close() {
	for i := len(a.closers) - 1; i >= 0; i-- {
		a.closers[i]()
	}
	a.closers = nil
}

// setFault puts kind in force on the app's way to Inngest; "" removes it.
func (a *app) setFault(kind string) error {
	if err := a.inn.SetSigningKeys(a.key); err != nil {
		return err
	}
	pf := faultproxy.None
	switch kind {
	case "":
	case faultKey:
		// A key the app does not have: the real server's auth answers 401.
		if err := a.inn.SetSigningKeys(inngestrt.NewSigningKey()); err != nil {
			return err
		}
	case faultDown:
		pf = faultproxy.Down
	case faultHang:
		pf = faultproxy.Hang
	default:
		return fmt.Errorf("rehearsal: unknown fault %q (want %s, %s or %s)", kind, faultKey, faultDown, faultHang)
	}
	return a.proxy.Set(pf)
}

// publishEvery publishes a video.asset.ready to the room every interval,
// each in its own goroutine (a hanging Inngest must not slow the pace),
// until the returned stop is called; stop waits for them.
func (a *app) publishEvery(ctx context.Context, interval time.Duration) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for n := 1; ; n++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			id := fmt.Sprintf("rehearsal-%06d", n)
			wg.Add(1)
			go func() {
				defer wg.Done()
				pctx, cancel := context.WithTimeout(ctx, 15*time.Second)
				defer cancel()
				a.seen.start(id, time.Now())
				err := a.b.Publish(pctx, realtime.Message{Room: room, Name: eventName, ID: id, RequestID: id, Body: map[string]any{"n": n}})
				a.seen.published(id, err)
			}()
		}
	}()
	return func() {
		cancel()
		wg.Wait()
	}
}

const (
	transportPartyKit = broadcast.TransportPartyKit
	transportInngest  = broadcast.TransportInngest
)

// deliveries is what happened to each message: when it was published and
// with what result, which mode and transports the Broadcast logged for it,
// and when each subscriber received it.
type deliveries struct {
	logs *observer.ObservedLogs

	mu   sync.Mutex
	msgs map[string]*delivery
}

type delivery struct {
	at       time.Time            // publish started
	done     bool                 // Publish returned
	err      error                // what it returned
	modes    map[string]string    // transport → mode, from the "realtime: publish" lines
	received map[string]time.Time // transport → when its subscriber got it
}

func newDeliveries() *deliveries { return &deliveries{msgs: map[string]*delivery{}} }

func (d *deliveries) get(id string) *delivery {
	m := d.msgs[id]
	if m == nil {
		m = &delivery{modes: map[string]string{}, received: map[string]time.Time{}}
		d.msgs[id] = m
	}
	return m
}

func (d *deliveries) start(id string, at time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.get(id).at = at
}

func (d *deliveries) published(id string, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	m := d.get(id)
	m.done, m.err = true, err
}

func (d *deliveries) received(transport, id string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if m := d.get(id); m.received[transport].IsZero() {
		m.received[transport] = time.Now()
	}
}

// sync takes the Broadcast's publish log lines in.
func (d *deliveries) sync() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, e := range d.logs.TakeAll() {
		if e.Message != "realtime: publish" {
			continue
		}
		f := e.ContextMap()
		id, _ := f["request_id"].(string)
		tr, _ := f["transport"].(string)
		mode, _ := f["mode"].(string)
		if id != "" && tr != "" {
			d.get(id).modes[tr] = mode
		}
	}
}

// delivered returns the id of a message published at or after since
// whose Publish succeeded, that the Broadcast logged in mode (on
// transport alone, if only), and that transport's subscriber received; ""
// if none yet.
func (d *deliveries) delivered(since time.Time, mode, transport string, only bool) string {
	d.sync()
	d.mu.Lock()
	defer d.mu.Unlock()
	for id, m := range d.msgs {
		if !m.done || m.err != nil || m.at.Before(since) || m.received[transport].IsZero() {
			continue
		}
		if m.modes[transport] == mode && (!only || len(m.modes) == 1) {
			return id
		}
	}
	return ""
}

// receivedSince returns the ids of messages published in [from, to) that
// transport's subscriber received (to zero: no end).
func (d *deliveries) receivedSince(transport string, from, to time.Time) []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var ids []string
	for id, m := range d.msgs {
		if m.at.IsZero() || m.at.Before(from) || (!to.IsZero() && !m.at.Before(to)) {
			continue
		}
		if !m.received[transport].IsZero() {
			ids = append(ids, id)
		}
	}
	return ids
}

// counts sums up the publishes so far: how many, how many failed.
func (d *deliveries) counts() (published, failed int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, m := range d.msgs {
		if m.done {
			published++
			if m.err != nil {
				failed++
			}
		}
	}
	return published, failed
}

// lastError is the text of the latest failed publish, for the log.
func (d *deliveries) lastError() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	var last *delivery
	for _, m := range d.msgs {
		if m.done && m.err != nil && (last == nil || m.at.After(last.at)) {
			last = m
		}
	}
	if last == nil {
		return nil
	}
	return last.err
}
