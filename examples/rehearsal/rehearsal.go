package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coursebuilder/realtime-go/broadcast"
	"github.com/coursebuilder/realtime-go/examples/internal/promtest"
	"github.com/coursebuilder/realtime-go/flags"
	"github.com/coursebuilder/realtime-go/harness/partykit"
)

// config is what run needs; main fills it from the command line.
type config struct {
	Runbook string // docs/runbook.md
	Rules   string // monitoring/alerts.yml
	Fault   string // faultKey, faultDown or faultHang
	Every   time.Duration
	Limit   time.Duration // per phase (the steps one watch waits for)
	Out     io.Writer
}

// The scope rehearsed, the page for it and Prometheus's job for the app.
const (
	scope     = "video-ready"
	pageAlert = "RealtimePublishErrorRateHigh"
	job       = "rehearsal"
	// interval is Prometheus's scrape and evaluation interval.
	interval = time.Second
	// poll is how often the rehearsal looks at Prometheus and the subscribers.
	poll = 200 * time.Millisecond
)

// The steps, in the order they happen (those of one phase in any order).
const (
	stepHealthy      = "healthy"
	stepFault        = "fault"
	stepPending      = "page pending"
	stepFiring       = "page firing"
	stepKill         = "kill switch"
	stepLegacyGauge  = "PartyKit only (gauge)"
	stepPartyKitOnly = "PartyKit only (delivery)"
	stepCleared      = "page cleared"
	stepFaultRemoved = "fault removed"
	stepAllClear     = "all clear"
	stepUndo         = "kill switch undone"
	stepPrimaryGauge = "primary again (gauge)"
	stepInngest      = "primary again (delivery on Inngest)"
)

// Step is one step of the rehearsal and when it was seen.
type Step struct {
	Name string
	At   time.Time
}

// Report is what a rehearsal saw: its steps, in the order seen.
type Report struct {
	Steps []Step
}

// At is when the step named was seen; zero if it was not.
func (r *Report) At(name string) time.Time {
	for _, s := range r.Steps {
		if s.Name == name {
			return s.At
		}
	}
	return time.Time{}
}

// Figure is one measured time of the rehearsal: From → To.
type Figure struct {
	Label    string
	From, To string
}

// Figures are the times the rehearsal reports.
var Figures = []Figure{
	{"fault → pending", stepFault, stepPending},
	{"fault → firing", stepFault, stepFiring},
	{"page → PartyKit only (gauge)", stepFiring, stepLegacyGauge},
	{"page → PartyKit only (delivery)", stepFiring, stepPartyKitOnly},
	{"kill switch → page cleared", stepKill, stepCleared},
	{"fault removed → all clear", stepFaultRemoved, stepAllClear},
	{"undo → primary again (gauge)", stepUndo, stepPrimaryGauge},
	{"undo → primary again (delivery on Inngest)", stepUndo, stepInngest},
}

// Duration is the figure's time in r.
func (f Figure) Duration(r *Report) time.Duration { return r.At(f.To).Sub(r.At(f.From)) }

// rehearsal is one run's state.
type rehearsal struct {
	cfg     config
	prom    *promtest.Server
	app     *app
	setflag func(cmd string) error
	window  string // the page's range selector, shortened: "10s"
	report  Report

	outMu sync.Mutex
	start time.Time
}

func (r *rehearsal) printf(format string, args ...any) {
	r.outMu.Lock()
	defer r.outMu.Unlock()
	fmt.Fprintf(r.cfg.Out, "%7.1fs  %s\n", time.Since(r.start).Seconds(), fmt.Sprintf(format, args...))
}

func (r *rehearsal) step(name, format string, args ...any) {
	r.report.Steps = append(r.report.Steps, Step{name, time.Now()})
	r.printf("%-38s %s", strings.ToUpper(name), fmt.Sprintf(format, args...))
}

// run runs the rehearsal and returns what it saw; an error if a step did
// not happen within cfg.Limit.
func run(ctx context.Context, cfg config) (*Report, error) {
	if cfg.Out == nil {
		cfg.Out = io.Discard
	}
	if cfg.Every <= 0 {
		cfg.Every = 150 * time.Millisecond
	}
	if _, ok := faultText[cfg.Fault]; !ok {
		return &Report{}, fmt.Errorf("rehearsal: unknown fault %q (want %s, %s or %s)", cfg.Fault, faultKey, faultDown, faultHang)
	}
	if cfg.Limit <= 0 {
		cfg.Limit = 3 * time.Minute
	}
	if cfg.Fault == "" {
		cfg.Fault = faultKey
	}
	r := &rehearsal{cfg: cfg, start: time.Now()}
	if _, err := os.Stat(promtest.Binary); err != nil {
		return &r.report, promtest.ErrNoPrometheus
	}
	if err := partykit.Available(""); err != nil {
		return &r.report, fmt.Errorf("the PartyKit dev server cannot run (npm ci --prefix harness/partykit/server, from the repository root): %w", err)
	}
	// Only the flags file counts: the shell's flags variables, and its
	// Inngest fallback key and branch, must not reach the app.
	for _, k := range append(flags.EnvVariables(), "INNGEST_SIGNING_KEY_FALLBACK", "INNGEST_ENV") {
		_ = os.Unsetenv(k)
	}

	dir, err := os.MkdirTemp("", "rehearsal-")
	if err != nil {
		return &r.report, err
	}
	defer os.RemoveAll(dir)
	flagsPath := filepath.Join(dir, "realtime.flags")
	if err := os.WriteFile(flagsPath, []byte("# the rehearsal app's flags\nREALTIME_DEFAULT_MODE=legacy\nREALTIME_VIDEO_READY_MODE=primary\n"), 0o644); err != nil {
		return &r.report, err
	}
	if r.setflag, err = runbookSetflag(cfg.Runbook, flagsPath); err != nil {
		return &r.report, err
	}
	rules, err := os.ReadFile(cfg.Rules)
	if err != nil {
		return &r.report, err
	}
	if rules, err = promtest.Shorten(rules, promtest.Short); err != nil {
		return &r.report, err
	}
	if r.window, err = pageWindow(rules); err != nil {
		return &r.report, err
	}

	r.printf("starting the real Inngest server, the PartyKit dev server, the app and Prometheus")
	if r.app, err = startApp(ctx, flagsPath, r.flipLog); err != nil {
		return &r.report, err
	}
	defer r.app.close()
	promDir := filepath.Join(dir, "prometheus")
	if err := os.Mkdir(promDir, 0o755); err != nil {
		return &r.report, err
	}
	var promLog lastLines
	if r.prom, err = promtest.Start(ctx, promtest.Config{Dir: promDir, Job: job, Target: r.app.metricsAddr, Rules: rules, Interval: interval, Log: promLog.add}); err != nil {
		return &r.report, err
	}
	defer r.prom.Close()
	r.printf("flags file %s: REALTIME_VIDEO_READY_MODE=primary (browsers read Inngest)", flagsPath)
	r.printf("Prometheus %s scrapes http://%s/metrics every %v, evaluating %s shortened (windows ÷%d, for: ÷%d; the page: %s window, for: %s)",
		r.prom.URL, r.app.metricsAddr, interval, cfg.Rules, promtest.Short.RangeDiv, promtest.Short.ForDiv, r.window, pageFor(rules))
	stop := r.app.publishEvery(ctx, cfg.Every)
	defer stop()
	r.printf("publishing %s to room %s every %v", eventName, room, cfg.Every)

	if err := r.walk(ctx); err != nil {
		published, failed := r.app.seen.counts()
		return &r.report, fmt.Errorf("%w\n(%d publishes, %d failed; last error: %v)\nPrometheus's last log lines:\n%s", err, published, failed, r.app.seen.lastError(), promLog.String())
	}
	stop()
	published, failed := r.app.seen.counts()
	r.outMu.Lock() // the flip log may still print, from a scrape
	defer r.outMu.Unlock()
	fmt.Fprintf(cfg.Out, "\n%d publishes, %d failed (the fault, in primary mode). Times:\n", published, failed)
	for _, f := range Figures {
		fmt.Fprintf(cfg.Out, "  %-44s %6.1fs\n", f.Label, f.Duration(&r.report).Seconds())
	}
	fmt.Fprintf(cfg.Out, "(scrape and evaluation every %v; the page's window %s, for: %s; alerts.yml as written: 5m window, for: 2m, and your scrape interval)\n", interval, r.window, pageFor(rules))
	return &r.report, nil
}

// notSlowPartyKit leaves out the warnings that a PartyKit dev server slowed
// by a loaded machine raises on its own (over the shadow budget, or 1 s at
// p99): PartyKit is never faulted here, and "healthy" and "all clear" must
// not depend on how fast the machine is.
func notSlowPartyKit(alerts []promtest.Alert) []promtest.Alert {
	return slices.DeleteFunc(alerts, func(a promtest.Alert) bool {
		return a.Labels["transport"] == broadcast.TransportPartyKit &&
			(a.Name() == "RealtimePublishLatencyHigh" || a.Name() == "RealtimeShadowPublishesDetached")
	})
}

// faultText says, per fault, what it does and what its removal does.
var faultText = map[string][2]string{
	faultKey:  {"Inngest refuses the app's signing key (rotated on the server)", "Inngest accepts the app's key again"},
	faultDown: {"Inngest's port refuses connections", "Inngest's port accepts connections again"},
	faultHang: {"Inngest accepts connections and never answers", "Inngest answers again"},
}

// walk is the rehearsal's steps.
func (r *rehearsal) walk(ctx context.Context) error {
	seen := r.app.seen
	begin := time.Now()
	if err := r.watch(ctx, nil,
		cond{stepHealthy, func() (bool, string) {
			if ok, why := r.modeIs("primary"); !ok {
				return false, why
			}
			if id := seen.delivered(begin, "primary", transportInngest, false); id == "" {
				return false, "no message delivered on Inngest yet"
			}
			alerts, err := r.prom.Alerts(ctx)
			alerts = notSlowPartyKit(alerts)
			return err == nil && len(alerts) == 0, fmt.Sprintf("alerts %v (%v)", alerts, err)
		}}); err != nil {
		return err
	}

	// 1. The fault, and the page.
	if err := r.app.setFault(r.cfg.Fault); err != nil {
		return err
	}
	r.step(stepFault, "%s", faultText[r.cfg.Fault][0])
	var activeAt time.Time
	if err := r.watch(ctx, nil,
		cond{stepPending, func() (bool, string) {
			a, ok, why := r.page(ctx)
			if ok {
				activeAt = a.ActiveAt
			}
			return ok, why
		}},
		cond{stepFiring, func() (bool, string) {
			a, ok, why := r.page(ctx)
			return ok && a.State == "firing", why
		}}); err != nil {
		return err
	}
	if !activeAt.IsZero() {
		r.printf("(Prometheus: the page active since %.1fs after the fault)", activeAt.Sub(r.report.At(stepFault)).Seconds())
	}

	// 2. The kill switch, as the runbook gives it.
	kill := "setflag REALTIME_KILL_SWITCH true"
	if err := r.setflag(kill); err != nil {
		return err
	}
	tKill := time.Now()
	r.step(stepKill, "$ %s", kill)
	inngestQuiet := func() error {
		if ids := seen.receivedSince(transportInngest, tKill, time.Time{}); len(ids) > 0 {
			return fmt.Errorf("the Inngest subscriber received %v, published after the kill switch", ids)
		}
		return nil
	}
	if err := r.watch(ctx, inngestQuiet,
		cond{stepLegacyGauge, func() (bool, string) {
			if ok, why := r.modeIs("legacy"); !ok {
				return false, why
			}
			// The runbook's check: no scope in a mode other than legacy.
			got, err := r.prom.Query(ctx, `count by (job, scope, mode) (realtime_broadcast_mode{mode!="legacy"} == 1)`)
			return err == nil && len(got) == 0, fmt.Sprintf("modes other than legacy in force: %v (%v)", got, err)
		}},
		cond{stepPartyKitOnly, func() (bool, string) {
			id := seen.delivered(tKill, "legacy", transportPartyKit, true)
			return id != "", "no message published in legacy mode delivered on PartyKit yet"
		}},
		cond{stepCleared, func() (bool, string) {
			a, ok, why := r.page(ctx)
			return !ok && why == "", fmt.Sprintf("the page is still %s", a.State)
		}}); err != nil {
		return err
	}

	// 3. The fault removed; all clear.
	if err := r.app.setFault(""); err != nil {
		return err
	}
	r.step(stepFaultRemoved, "%s", faultText[r.cfg.Fault][1])
	if err := r.watch(ctx, inngestQuiet,
		cond{stepAllClear, func() (bool, string) {
			alerts, err := r.prom.Alerts(ctx)
			alerts = notSlowPartyKit(alerts)
			if err != nil || len(alerts) > 0 {
				return false, fmt.Sprintf("alerts %v (%v)", alerts, err)
			}
			left, err := r.prom.Query(ctx, fmt.Sprintf(`sum(increase(realtime_broadcast_errors_total{job=%q, scope=%q, transport="inngest", outcome!="canceled"}[%s])) > 0`, job, scope, r.window))
			return err == nil && len(left) == 0, fmt.Sprintf("Inngest failures of %s still in the page's %s window: %v (%v)", scope, r.window, left, err)
		}}); err != nil {
		return err
	}
	if err := inngestQuiet(); err != nil {
		return err
	}

	// 4. Undo the kill switch, as the runbook gives it.
	undo := "setflag REALTIME_KILL_SWITCH false"
	if err := r.setflag(undo); err != nil {
		return err
	}
	tUndo := time.Now()
	r.step(stepUndo, "$ %s", undo)
	noPage := func() error {
		if a, ok, _ := r.page(ctx); ok {
			return fmt.Errorf("the page came back after the undo: %v", a)
		}
		return nil
	}
	return r.watch(ctx, noPage,
		cond{stepPrimaryGauge, func() (bool, string) { return r.modeIs("primary") }},
		cond{stepInngest, func() (bool, string) {
			id := seen.delivered(tUndo, "primary", transportInngest, false)
			return id != "", "no message published in primary mode after the undo delivered on Inngest yet"
		}})
}

// cond is a step that comes true: check says whether it has, and if not,
// what is seen instead.
type cond struct {
	step  string
	check func() (ok bool, seen string)
}

// watch polls conds until each came true once, recording the step of each
// when it first did; invariant, if set, must hold at every poll.
func (r *rehearsal) watch(ctx context.Context, invariant func() error, conds ...cond) error {
	deadline := time.Now().Add(r.cfg.Limit)
	var origin *Step // a copy of the step this phase began with
	if n := len(r.report.Steps); n > 0 {
		first := r.report.Steps[n-1]
		origin = &first
	}
	done := make([]bool, len(conds))
	left := len(conds)
	for {
		if invariant != nil {
			if err := invariant(); err != nil {
				return err
			}
		}
		var waiting []string
		for i, c := range conds {
			if done[i] {
				continue
			}
			ok, why := c.check()
			if !ok {
				waiting = append(waiting, fmt.Sprintf("%s: %s", c.step, why))
				continue
			}
			done[i] = true
			left--
			if origin != nil {
				r.step(c.step, "%.1fs after %s", time.Since(origin.At).Seconds(), strings.ToLower(origin.Name))
			} else {
				r.step(c.step, "")
			}
		}
		if left == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not within %v: %s", r.cfg.Limit, strings.Join(waiting, "; "))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(poll):
		}
	}
}

// modeIs reports whether Prometheus has the scope's mode gauge at 1 for mode.
func (r *rehearsal) modeIs(mode string) (bool, string) {
	got, err := r.prom.Query(context.Background(), fmt.Sprintf(`realtime_broadcast_mode{job=%q, scope=%q, mode=%q} == 1`, job, scope, mode))
	if err != nil {
		return false, err.Error()
	}
	if len(got) == 0 {
		now, _ := r.prom.Query(context.Background(), fmt.Sprintf(`realtime_broadcast_mode{job=%q, scope=%q} == 1`, job, scope))
		return false, fmt.Sprintf("the gauge says %v", now)
	}
	return true, ""
}

// page returns the page for the scope's Inngest publishes if it is pending
// or firing; why is "" unless Prometheus could not be asked.
func (r *rehearsal) page(ctx context.Context) (a promtest.Alert, ok bool, why string) {
	alerts, err := r.prom.Alerts(ctx)
	if err != nil {
		return a, false, err.Error()
	}
	for _, a := range alerts {
		if a.Name() == pageAlert && a.Labels["scope"] == scope && a.Labels["transport"] == "inngest" && a.Labels["severity"] == "critical" {
			return a, true, ""
		}
	}
	return a, false, ""
}

// flipLog prints each mode change the Broadcast observes, the runbook's
// "realtime: mode changed" line.
func (r *rehearsal) flipLog(c broadcast.ModeChange) {
	if c.Initial {
		r.printf("flip log: %s starts in %s", c.Scope, c.To)
		return
	}
	var figs []string
	for _, f := range c.Figures {
		figs = append(figs, fmt.Sprintf("%s %d publishes, %d errors, p99 %v", f.Transport, f.Publishes, f.Errors, f.P99.Round(time.Millisecond)))
	}
	r.printf("flip log: %s %s → %s after %.1fs; %s", c.Scope, c.From, c.To, c.At.Sub(c.Since).Seconds(), strings.Join(figs, "; "))
}

// setflagDef finds the runbook's setflag function and the path it edits.
var setflagDef = regexp.MustCompile(`(?m)^setflag\(\) \{ f='([^']*)';.*$`)

// runbookSetflag returns a function that runs a setflag command of the
// runbook — its own function definition, with the path of its flags file
// replaced by path — with sh. The command must be one the runbook gives,
// in backquotes.
func runbookSetflag(runbook, path string) (func(cmd string) error, error) {
	b, err := os.ReadFile(runbook)
	if err != nil {
		return nil, err
	}
	def := setflagDef.FindStringSubmatch(string(b))
	if def == nil {
		return nil, fmt.Errorf("%s defines no setflag function (a line `setflag() { f='…'; …`)", runbook)
	}
	if strings.Contains(path, "'") {
		return nil, fmt.Errorf("rehearsal: the flags file's path %q has a quote", path)
	}
	define := strings.Replace(def[0], "f='"+def[1]+"'", "f='"+path+"'", 1)
	sh, err := exec.LookPath("sh")
	if err != nil {
		return nil, err
	}
	return func(cmd string) error {
		if !strings.Contains(string(b), "`"+cmd+"`") {
			return fmt.Errorf("%s does not give the command `%s`", runbook, cmd)
		}
		if out, err := exec.Command(sh, "-c", define+"\n"+cmd).CombinedOutput(); err != nil {
			return fmt.Errorf("%s: %v\n%s", cmd, err, out)
		}
		return nil
	}, nil
}

// pageWindow is the range selector of the page's rule in rules.
func pageWindow(rules []byte) (string, error) {
	m := regexp.MustCompile(`\[(\d+[smh])\]`).FindSubmatch(pageRule(rules))
	if m == nil {
		return "", fmt.Errorf("rehearsal: no rule %s with a range selector in the rules", pageAlert)
	}
	return string(m[1]), nil
}

// pageFor is the for: of the page's rule in rules.
func pageFor(rules []byte) string {
	m := regexp.MustCompile(`(?m)^\s*for:\s*(\S+)`).FindSubmatch(pageRule(rules))
	if m == nil {
		return "none"
	}
	return string(m[1])
}

// pageRule is the text of the page's rule, up to the next rule.
func pageRule(rules []byte) []byte {
	s := string(rules)
	i := strings.Index(s, "alert: "+pageAlert+"\n")
	if i < 0 {
		return nil
	}
	s = s[i:]
	if j := strings.Index(s[1:], "- alert:"); j >= 0 {
		s = s[:j+1]
	}
	return []byte(s)
}

// lastLines keeps the last lines of Prometheus's log, for an error.
type lastLines struct {
	mu    sync.Mutex
	lines []string
}

func (l *lastLines) add(line string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, line)
	if len(l.lines) > 20 {
		l.lines = l.lines[1:]
	}
}

func (l *lastLines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}
