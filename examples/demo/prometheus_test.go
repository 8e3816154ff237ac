package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coursebuilder/realtime-go/examples/internal/flagsource"
	"github.com/coursebuilder/realtime-go/examples/internal/promtest"
	"github.com/coursebuilder/realtime-go/flags"
	"github.com/coursebuilder/realtime-go/harness/partykit"
	"github.com/coursebuilder/realtime-go/realtime"
)

// The scopes of TestPrometheusAlerts and the mode each is put in: one per
// mode, so that every page is seen where it must fire and where it must
// not.
var promScopes = map[flags.Scope]flags.Mode{
	flags.ScopeVideoUpload:  flags.Legacy,   // browsers read PartyKit; Inngest is not called
	flags.ScopeTranscript:   flags.Shadow,   // browsers read PartyKit; Inngest in shadow
	flags.ScopeVideoReady:   flags.Primary,  // browsers read Inngest
	flags.ScopeVideoErrored: flags.Realtime, // browsers read Inngest
}

// flagsContent is a flags file that puts every scope of modes in its mode.
func flagsContent(modes map[flags.Scope]flags.Mode) string {
	var b strings.Builder
	b.WriteString("REALTIME_DEFAULT_MODE=legacy\n")
	for _, s := range slices.Sorted(maps.Keys(modes)) {
		fmt.Fprintf(&b, "REALTIME_%s_MODE=%s\n", strings.ToUpper(strings.ReplaceAll(string(s), "-", "_")), modes[s])
	}
	return b.String()
}

// writeAtomically replaces path's content at once, as the runbook's flags
// file command does (write a temp file beside it, rename it over).
func writeAtomically(t *testing.T, path, content string) {
	t.Helper()
	if err := flagsource.WriteFile(path, content); err != nil {
		t.Fatal(err)
	}
}

// TestPrometheusAlerts runs the live demo with its /metrics scraped by a
// real Prometheus that evaluates a shortened copy of monitoring/alerts.yml
// (promtest.Short: windows ÷30, for: ÷60, scrape and evaluation every 1s),
// publishes steadily on four scopes, one per mode, and asks for tokens as
// browsers do, then injects each fault of Inngest (the key refused by the
// real server, the server down, the server hanging) and checks through
// Prometheus's API that the intended alerts go pending or firing with the
// intended labels, that nothing critical concerns a scope whose browsers
// read PartyKit, that a rollback clears the page while the fault lasts, and
// that every alert goes back once the fault is removed; then it makes the
// flags file unreadable and checks that only the flag-fallback warnings
// fire, one per scope, and go back. On the healthy app
// it checks that every dashboard query returns data and that every metric
// family the alerts and the dashboard name is in the exporter's output.
func TestPrometheusAlerts(t *testing.T) {
	if _, err := os.Stat(promtest.Binary); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal(promtest.ErrNoPrometheus)
		}
		t.Skip(promtest.ErrNoPrometheus)
	}
	if err := partykit.Available(""); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("PartyKit dev server not installed in CI: %v", err)
		}
		t.Skipf("PartyKit dev server not installed (the scopes outside realtime mode need it): %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	started := time.Now()

	dir := t.TempDir()
	flagsPath := filepath.Join(dir, "app.flags")
	writeAtomically(t, flagsPath, flagsContent(promScopes))
	d, err := startServe(ctx, serveConfig{Addr: "127.0.0.1:0", FlagsPath: flagsPath, PartyKit: true})
	if err != nil {
		t.Fatal(err)
	}
	defer d.close()
	app := startTraffic(ctx, d)
	defer app.stop()

	rules, err := os.ReadFile(filepath.Join("..", "..", "monitoring", "alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	short, err := promtest.Shorten(rules, promtest.Short)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(d.url)
	promDir := filepath.Join(dir, "prometheus")
	if err := os.Mkdir(promDir, 0o755); err != nil {
		t.Fatal(err)
	}
	var logMu sync.Mutex
	var promLog []string
	prom, err := promtest.Start(ctx, promtest.Config{Dir: promDir, Job: "demo", Target: u.Host, Rules: short,
		Log: func(l string) { logMu.Lock(); promLog = append(promLog, l); logMu.Unlock() }})
	if err != nil {
		t.Fatal(err)
	}
	defer prom.Close()
	defer func() {
		if t.Failed() {
			logMu.Lock()
			t.Logf("prometheus log:\n%s", strings.Join(promLog, "\n"))
			logMu.Unlock()
		}
	}()

	w := &alertWatch{t: t, prom: prom}

	// Healthy: the mode of each scope is known, and every panel has data.
	w.poll(ctx, "the mode gauge of every scope", 2*time.Minute, func() string {
		got, err := prom.Query(ctx, `realtime_broadcast_mode == 1`)
		if err != nil {
			return err.Error()
		}
		modes := map[string]string{}
		for _, s := range got {
			modes[s.Metric["scope"]] = s.Metric["mode"]
		}
		for s, m := range promScopes {
			if modes[string(s)] != m.String() {
				return fmt.Sprintf("modes in force %v", modes)
			}
		}
		return ""
	})
	checkExportedFamilies(t, d.url)
	checkDashboardQueries(ctx, t, w)
	for _, a := range w.alerts(ctx) {
		if !slowOnly[a.Name()] {
			t.Errorf("healthy app, yet alert %v", a)
		}
	}
	t.Logf("healthy after %v", time.Since(started).Round(time.Second))

	pages := func(scopes ...string) []want {
		var ws []want
		for _, s := range scopes {
			ws = append(ws, want{"RealtimePublishErrorRateHigh", map[string]string{"severity": "critical", "transport": "inngest", "scope": s, "job": "demo"}})
		}
		return ws
	}
	shadow := want{"RealtimeShadowPublishErrors", map[string]string{"severity": "warning", "transport": "inngest", "scope": "transcript"}}
	tokenPages := []want{
		{"RealtimeTokenEndpointErrors", map[string]string{"severity": "critical", "scope": "video-ready"}},
		{"RealtimeTokenEndpointErrors", map[string]string{"severity": "critical", "scope": "video-errored"}},
		{"RealtimeTokenEndpointErrors", map[string]string{"severity": "warning", "scope": "transcript"}},
	}
	for _, fault := range []struct {
		kind string
		want []want
	}{
		{faultKey, append(append(pages("video-ready", "video-errored"), shadow), tokenPages...)},
		{faultDown, append(append(pages("video-ready", "video-errored"), shadow), tokenPages...)},
		// A hang: every Inngest attempt times out (outcome timeout), the
		// shadow legs outlive the budget (detached) and are cut by the
		// ShadowTimeout.
		{faultHang, append(pages("video-ready", "video-errored"), shadow,
			want{"RealtimePublishLatencyHigh", map[string]string{"severity": "warning", "transport": "inngest"}},
			want{"RealtimeShadowPublishesDetached", map[string]string{"severity": "warning", "transport": "inngest", "scope": "transcript"}})},
	} {
		postFault(t, d, fault.kind)
		at := time.Now()
		w.waitFor(ctx, "fault "+fault.kind, fault.want)
		t.Logf("fault %s: every intended alert pending or firing %v after the fault", fault.kind, time.Since(at).Round(100*time.Millisecond))
		if fault.kind == faultDown {
			// The runbook's rollback while the fault lasts: video-ready
			// back to legacy clears its page, though its failures are
			// still in the window.
			rolled := maps.Clone(promScopes)
			rolled[flags.ScopeVideoReady] = flags.Legacy
			writeAtomically(t, flagsPath, flagsContent(rolled))
			at := time.Now()
			w.waitGone(ctx, "rollback of video-ready", func(a promtest.Alert) bool {
				return a.Labels["scope"] == "video-ready" && a.Labels["severity"] == "critical"
			})
			took := time.Since(at).Round(100 * time.Millisecond)
			left, _ := prom.Query(ctx, `sum(increase(realtime_broadcast_errors_total{scope="video-ready", transport="inngest"}[10s]))`)
			t.Logf("rollback of video-ready: its pages inactive %v after the flags file changed (Inngest failures of the scope still in the 10s window then: %v)", took, left)
			writeAtomically(t, flagsPath, flagsContent(promScopes))
		}
		postFault(t, d, faultNone)
		at = time.Now()
		w.waitGone(ctx, "fault "+fault.kind+" removed", func(promtest.Alert) bool { return true })
		t.Logf("fault %s removed: every alert inactive %v later", fault.kind, time.Since(at).Round(100*time.Millisecond))
	}
	// The flag source broken: the flags file cannot be read (a directory
	// where the file was). Every evaluation answers the scope's last known
	// mode, so nothing pages; the fallbacks warn, for every scope.
	if err := os.Remove(flagsPath); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(flagsPath, 0o755); err != nil {
		t.Fatal(err)
	}
	at := time.Now()
	var fallbacks []want
	for s := range promScopes {
		fallbacks = append(fallbacks, want{"RealtimeFlagFallbacks", map[string]string{"severity": "warning", "scope": string(s), "job": "demo"}})
	}
	w.waitFor(ctx, "flags file unreadable", fallbacks)
	for _, a := range w.alerts(ctx) {
		if a.Name() != "RealtimeFlagFallbacks" && !slowOnly[a.Name()] {
			t.Errorf("flags file unreadable: the modes stay the last known ones, yet %v", a)
		}
	}
	t.Logf("flags file unreadable: every scope's fallback warning pending or firing %v after", time.Since(at).Round(100*time.Millisecond))
	if err := os.Remove(flagsPath); err != nil {
		t.Fatal(err)
	}
	writeAtomically(t, flagsPath, flagsContent(promScopes))
	at = time.Now()
	w.waitGone(ctx, "flags file readable again", func(promtest.Alert) bool { return true })
	t.Logf("flags file readable again: every alert inactive %v later", time.Since(at).Round(100*time.Millisecond))

	t.Logf("whole test %v; publishes %d, token requests %d", time.Since(started).Round(time.Second), app.publishes.Load(), app.tokens.Load())
}

// traffic publishes steadily on every scope of promScopes (four publishes
// a second each, each one in its own goroutine so that a hanging Inngest
// does not slow the others) and asks for a token of each scope twice a
// second, as open pages do.
type traffic struct {
	cancel            context.CancelFunc
	wg                sync.WaitGroup
	publishes, tokens atomic.Int64
}

func startTraffic(ctx context.Context, d *liveDemo) *traffic {
	ctx, cancel := context.WithCancel(ctx)
	tr := &traffic{cancel: cancel}
	client := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{}}
	every := func(interval time.Duration, f func()) {
		tr.wg.Add(1)
		go func() {
			defer tr.wg.Done()
			tick := time.NewTicker(interval)
			defer tick.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				tr.wg.Add(1)
				go func() {
					defer tr.wg.Done()
					f()
				}()
			}
		}()
	}
	for scope := range promScopes {
		every(250*time.Millisecond, func() {
			pctx, cancel := context.WithTimeout(ctx, 15*time.Second)
			defer cancel()
			_ = d.b.Publish(pctx, realtime.Message{Room: room, Name: scope.Names()[0], Body: map[string]string{"scope": string(scope)}})
			tr.publishes.Add(1)
		})
		every(500*time.Millisecond, func() {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, d.url+"/api/realtime/token?"+url.Values{"room": {room}, "scope": {string(scope)}}.Encode(), nil)
			if err != nil {
				return
			}
			req.Header.Set("Authorization", "Bearer demo-user")
			if resp, err := client.Do(req); err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
			}
			tr.tokens.Add(1)
		})
	}
	tr.wg.Add(1)
	go func() {
		defer tr.wg.Done()
		<-ctx.Done()
		client.CloseIdleConnections()
	}()
	return tr
}

func (tr *traffic) stop() {
	tr.cancel()
	tr.wg.Wait()
}

// want is an alert that must be pending or firing: its name and labels
// that it must carry.
type want struct {
	name   string
	labels map[string]string
}

func (w want) matches(a promtest.Alert) bool {
	if a.Name() != w.name {
		return false
	}
	for k, v := range w.labels {
		if a.Labels[k] != v {
			return false
		}
	}
	return true
}

func (w want) String() string { return fmt.Sprintf("%s%v", w.name, w.labels) }

// postFault puts kind in force through the demo's POST /api/demo/fault, as
// an on-call rehearsal does, and checks that GET reads it back.
func postFault(t *testing.T, d *liveDemo, kind string) {
	t.Helper()
	resp, err := http.Post(d.url+"/api/demo/fault?kind="+kind, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /api/demo/fault?kind=%s: %s", kind, resp.Status)
	}
	resp, err = http.Get(d.url + "/api/demo/fault")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got struct{ Fault string }
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil || got.Fault != kind {
		t.Fatalf("GET /api/demo/fault = %q (%v), want %q", got.Fault, err, kind)
	}
}

// slowOnly are the warnings a loaded machine's slowness alone can raise (a
// PartyKit dev server answering in over the shadow budget or 1 s at p99);
// the checks of what must stay silent leave them out, so that no check
// depends on how fast the machine is.
var slowOnly = map[string]bool{"RealtimePublishLatencyHigh": true, "RealtimeShadowPublishesDetached": true}

// alertWatch polls Prometheus's alerts, failing the test whenever an alert
// that must never be seen is: anything critical for a scope whose browsers
// read PartyKit (legacy or shadow), and anything about PartyKit, which is
// never faulted here (but for slowOnly's).
type alertWatch struct {
	t      *testing.T
	prom   *promtest.Server
	mu     sync.Mutex
	wrongs map[string]bool
}

func (w *alertWatch) alerts(ctx context.Context) []promtest.Alert {
	w.t.Helper()
	alerts, err := w.prom.Alerts(ctx)
	if err != nil {
		w.t.Fatalf("alerts: %v", err)
	}
	for _, a := range alerts {
		scope := flags.Scope(a.Labels["scope"])
		mode, known := promScopes[scope]
		var why string
		switch {
		case a.Labels["severity"] == "critical" && known && (mode == flags.Legacy || mode == flags.Shadow):
			why = "critical for a scope whose browsers read PartyKit (" + mode.String() + ")"
		case a.Labels["transport"] == "partykit" && !slowOnly[a.Name()]:
			why = "about PartyKit, which is healthy"
		}
		if why == "" {
			continue
		}
		key := a.Name() + fmt.Sprint(a.Labels)
		w.mu.Lock()
		if w.wrongs == nil {
			w.wrongs = map[string]bool{}
		}
		if !w.wrongs[key] {
			w.wrongs[key] = true
			w.t.Errorf("unintended alert %v: %s", a, why)
		}
		w.mu.Unlock()
	}
	return alerts
}

// poll calls cond every second until it answers "" (done), failing the
// test with cond's last answer after limit.
func (w *alertWatch) poll(ctx context.Context, what string, limit time.Duration, cond func() string) {
	w.t.Helper()
	deadline := time.Now().Add(limit)
	for {
		msg := cond()
		if msg == "" {
			return
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			w.t.Fatalf("%s: not after %v: %s", what, limit, msg)
		}
		time.Sleep(time.Second)
	}
}

// waitFor waits until every alert of wants is pending or firing.
func (w *alertWatch) waitFor(ctx context.Context, what string, wants []want) {
	w.t.Helper()
	w.poll(ctx, what, 2*time.Minute, func() string {
		alerts := w.alerts(ctx)
		var missing []string
		for _, wt := range wants {
			if !slices.ContainsFunc(alerts, wt.matches) {
				missing = append(missing, wt.String())
			}
		}
		if len(missing) == 0 {
			return ""
		}
		return fmt.Sprintf("missing %v; active %v", missing, alerts)
	})
}

// waitGone waits until no pending or firing alert matches.
func (w *alertWatch) waitGone(ctx context.Context, what string, match func(promtest.Alert) bool) {
	w.t.Helper()
	w.poll(ctx, what, 2*time.Minute, func() string {
		var left []promtest.Alert
		for _, a := range w.alerts(ctx) {
			if match(a) {
				left = append(left, a)
			}
		}
		if len(left) == 0 {
			return ""
		}
		return fmt.Sprintf("still active %v", left)
	})
}

// metricNameRE finds the metric names of an expression: the library's
// series all start with realtime_.
var metricNameRE = regexp.MustCompile(`\brealtime_[a-z0-9_]+\b`)

// checkExportedFamilies: every series name alerts.yml and dashboard.json
// select is one the exporter writes on /metrics (not a recomputation of
// the exporter's naming).
func checkExportedFamilies(t *testing.T, appURL string) {
	t.Helper()
	resp, err := http.Get(appURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	exported := map[string]bool{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if i := strings.IndexAny(line, "{ "); i > 0 {
			exported[line[:i]] = true
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	named := map[string]string{}
	for _, f := range []string{"alerts.yml", "dashboard.json"} {
		b, err := os.ReadFile(filepath.Join("..", "..", "monitoring", f))
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(strings.TrimSpace(line), "#") {
				continue // a comment of alerts.yml, not an expression
			}
			for _, m := range metricNameRE.FindAllString(line, -1) {
				named[m] = f
			}
		}
	}
	if len(named) < 8 {
		t.Fatalf("found only %d metric names in monitoring/: %v", len(named), named)
	}
	for name, f := range named {
		if !exported[name] {
			t.Errorf("monitoring/%s names %s, which the exporter does not write (it writes %v)", f, name, slices.Sorted(maps.Keys(exported)))
		}
	}
}

// checkDashboardQueries: every query of dashboard.json, with its variables
// set to "All" and $__rate_interval to 30s, returns data on the healthy
// app (polled: a rate needs two scrapes in its window).
func checkDashboardQueries(ctx context.Context, t *testing.T, w *alertWatch) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "monitoring", "dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	type panel struct {
		Title   string `json:"title"`
		Targets []struct {
			RefID string `json:"refId"`
			Expr  string `json:"expr"`
		} `json:"targets"`
		Panels []panel `json:"panels"`
	}
	var dash struct {
		Panels []panel `json:"panels"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatal(err)
	}
	vars := strings.NewReplacer("$__rate_interval", "30s", "${job}", ".*", "${scope}", ".*", "${mode}", ".*", "$job", ".*", "$scope", ".*", "$mode", ".*")
	var all []panel
	for _, p := range dash.Panels {
		all = append(all, p)
		all = append(all, p.Panels...)
	}
	n := 0
	for _, p := range all {
		for _, tg := range p.Targets {
			if tg.Expr == "" {
				continue
			}
			n++
			expr := vars.Replace(tg.Expr)
			w.poll(ctx, fmt.Sprintf("panel %q query %s", p.Title, tg.RefID), time.Minute, func() string {
				got, err := w.prom.Query(ctx, expr)
				switch {
				case err != nil:
					return err.Error()
				case len(got) == 0:
					return "no data: " + expr
				}
				return ""
			})
		}
	}
	if n == 0 {
		t.Fatal("dashboard.json has no queries")
	}
}
