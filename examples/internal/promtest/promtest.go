// Package promtest runs a real Prometheus (Debian's prometheus package,
// /usr/bin/prometheus) that scrapes an app and evaluates alerting rules, and
// reads its HTTP API: the alerts pending or firing, and instant queries.
// Rules are loaded from a copy shortened by Shorten, so that an alert's
// whole life (pending, firing, resolved) takes seconds instead of minutes.
package promtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Binary is where Debian's prometheus package installs the server.
const Binary = "/usr/bin/prometheus"

// ErrNoPrometheus is returned by Start when Binary is missing.
var ErrNoPrometheus = errors.New("promtest: " + Binary + " is not installed (apt-get install prometheus)")

// Config is what Start needs.
type Config struct {
	// Dir holds the configuration, the rules and the TSDB; it must exist
	// (a test's t.TempDir()).
	Dir string
	// Job is the scrape job's name, the job label of every series.
	Job string
	// Target is the app's address, "127.0.0.1:PORT"; Prometheus scrapes
	// its /metrics.
	Target string
	// Rules is the content of the rule file to load (Shorten's output).
	Rules []byte
	// Interval is both the scrape and the rule evaluation interval;
	// defaults to 1s.
	Interval time.Duration
	// Log receives Prometheus's own output (warnings and errors), line by
	// line; nil discards it.
	Log func(line string)
}

// Server is a running Prometheus.
type Server struct {
	URL    string // "http://127.0.0.1:PORT"
	cmd    *exec.Cmd
	done   chan struct{}
	client *http.Client
	once   sync.Once
}

// Start starts Prometheus on a free loopback port and returns once it is
// ready (its rules loaded) or ctx ends.
func Start(ctx context.Context, cfg Config) (*Server, error) {
	if _, err := os.Stat(Binary); err != nil {
		return nil, ErrNoPrometheus
	}
	if cfg.Interval <= 0 {
		cfg.Interval = time.Second
	}
	rules := filepath.Join(cfg.Dir, "rules.yml")
	if err := os.WriteFile(rules, cfg.Rules, 0o644); err != nil {
		return nil, err
	}
	conf := fmt.Sprintf(`global:
  scrape_interval: %[1]s
  scrape_timeout: %[1]s
  evaluation_interval: %[1]s
rule_files:
  - %[2]q
scrape_configs:
  - job_name: %[3]q
    static_configs:
      - targets: [%[4]q]
`, cfg.Interval, rules, cfg.Job, cfg.Target)
	confPath := filepath.Join(cfg.Dir, "prometheus.yml")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	// A free port: listen, note it, let go. Another process could take it
	// before Prometheus does: Prometheus then exits, and Start tries
	// another port, three times at most.
	var last error
	for range 3 {
		s, err := start(ctx, cfg, confPath)
		if err == nil || !errors.Is(err, errExited) {
			return s, err
		}
		last = err
	}
	return nil, last
}

// errExited is start's error when Prometheus exited before it was ready.
var errExited = errors.New("promtest: prometheus exited before it was ready")

func start(ctx context.Context, cfg Config, confPath string) (*Server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	cmd := exec.Command(Binary,
		"--config.file="+confPath,
		"--storage.tsdb.path="+filepath.Join(cfg.Dir, "data"),
		"--web.listen-address="+addr,
		"--log.level=warn",
	)
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("promtest: start %s: %w", Binary, err)
	}
	s := &Server{URL: "http://" + addr, cmd: cmd, done: make(chan struct{}), client: &http.Client{Timeout: 30 * time.Second}}
	go func() {
		_ = cmd.Wait()
		_ = pw.Close()
		close(s.done)
	}()
	go func() {
		buf := make([]byte, 0, 4096)
		tmp := make([]byte, 4096)
		for {
			n, err := pr.Read(tmp)
			buf = append(buf, tmp[:n]...)
			for {
				i := bytes.IndexByte(buf, '\n')
				if i < 0 {
					break
				}
				if cfg.Log != nil {
					cfg.Log(string(buf[:i]))
				}
				buf = buf[i+1:]
			}
			if err != nil {
				return
			}
		}
	}()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/-/ready", nil)
		if resp, err := s.client.Do(req); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s, nil
			}
		}
		select {
		case <-s.done:
			return nil, fmt.Errorf("%w: %v", errExited, cmd.ProcessState)
		case <-ctx.Done():
			s.Close()
			return nil, fmt.Errorf("promtest: prometheus not ready: %w", ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Close stops Prometheus and waits for it to exit.
func (s *Server) Close() {
	s.once.Do(func() {
		_ = s.cmd.Process.Signal(os.Interrupt)
		select {
		case <-s.done:
		case <-time.After(20 * time.Second):
			_ = s.cmd.Process.Kill()
			<-s.done
		}
		s.client.CloseIdleConnections()
	})
}

// Alert is one alert as /api/v1/alerts lists it: pending or firing.
type Alert struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	State       string            `json:"state"`
	ActiveAt    time.Time         `json:"activeAt"`
	Value       string            `json:"value"`
}

// Name is the alert's alertname label.
func (a Alert) Name() string { return a.Labels["alertname"] }

func (a Alert) String() string {
	return fmt.Sprintf("%s %s %v", a.Name(), a.State, a.Labels)
}

// Alerts returns every alert pending or firing now.
func (s *Server) Alerts(ctx context.Context) ([]Alert, error) {
	var data struct {
		Alerts []Alert `json:"alerts"`
	}
	return data.Alerts, s.get(ctx, "/api/v1/alerts", nil, &data)
}

// Sample is one series of an instant vector.
type Sample struct {
	Metric map[string]string
	Value  float64
}

// Query evaluates expr now and returns its samples (a scalar as one
// sample without labels).
func (s *Server) Query(ctx context.Context, expr string) ([]Sample, error) {
	var data struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	}
	if err := s.get(ctx, "/api/v1/query", url.Values{"query": {expr}}, &data); err != nil {
		return nil, err
	}
	var raw []struct {
		Metric map[string]string `json:"metric"`
		Value  [2]any            `json:"value"`
	}
	switch data.ResultType {
	case "vector":
		if err := json.Unmarshal(data.Result, &raw); err != nil {
			return nil, err
		}
	case "scalar":
		var v [2]any
		if err := json.Unmarshal(data.Result, &v); err != nil {
			return nil, err
		}
		raw = append(raw, struct {
			Metric map[string]string `json:"metric"`
			Value  [2]any            `json:"value"`
		}{Value: v})
	default:
		return nil, fmt.Errorf("promtest: %s: result type %s", expr, data.ResultType)
	}
	out := make([]Sample, 0, len(raw))
	for _, r := range raw {
		str, _ := r.Value[1].(string)
		v, err := strconv.ParseFloat(str, 64)
		if err != nil {
			return nil, fmt.Errorf("promtest: %s: value %v", expr, r.Value[1])
		}
		out = append(out, Sample{Metric: r.Metric, Value: v})
	}
	return out, nil
}

func (s *Server) get(ctx context.Context, path string, q url.Values, data any) error {
	u := s.URL + path
	if q != nil {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	var env struct {
		Status string          `json:"status"`
		Error  string          `json:"error"`
		Data   json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		return fmt.Errorf("promtest: %s: status %d: %s", path, resp.StatusCode, body)
	}
	if env.Status != "success" {
		return fmt.Errorf("promtest: %s: %s", path, env.Error)
	}
	return json.Unmarshal(env.Data, data)
}

// Mapping is how Shorten maps durations: a range or offset in an
// expression is divided by RangeDiv, a for: by ForDiv; results are whole
// seconds, at least MinRange and MinFor.
type Mapping struct {
	RangeDiv, ForDiv int
	MinRange, MinFor time.Duration
}

// Short is the mapping the tests and the rehearsal use with a 1s
// scrape and evaluation interval: windows ÷30 (10m → 20s, 5m → 10s,
// 15m → 30s), for: ÷60 (5m → 5s, 2m → 2s, 15m → 15s), so that a rule's
// 10m window still holds 20 scrapes.
var Short = Mapping{RangeDiv: 30, ForDiv: 60, MinRange: 4 * time.Second, MinFor: time.Second}

var (
	rangeRE  = regexp.MustCompile(`\[([0-9a-z:]+)\]`)
	offsetRE = regexp.MustCompile(`\boffset\s+([0-9a-z]+)`)
	forRE    = regexp.MustCompile(`(?m)^([ \t]*for:[ \t]*)([0-9a-z]+)[ \t]*$`)
)

// Shorten returns rules (a Prometheus rule file) with every range
// selector, offset and for: mapped by m. It fails on a duration it cannot
// read, so that a new rule is never loaded unshortened.
func Shorten(rules []byte, m Mapping) ([]byte, error) {
	var bad []string
	scale := func(s string, div int, floor time.Duration) string {
		d, err := parseDuration(s)
		if err != nil {
			bad = append(bad, s)
			return s
		}
		d = max((d / time.Duration(div)).Truncate(time.Second), floor)
		return strconv.Itoa(int(d/time.Second)) + "s"
	}
	out := rangeRE.ReplaceAllStringFunc(string(rules), func(x string) string {
		return "[" + scale(x[1:len(x)-1], m.RangeDiv, m.MinRange) + "]"
	})
	out = offsetRE.ReplaceAllStringFunc(out, func(x string) string {
		d := strings.TrimSpace(strings.TrimPrefix(x, "offset"))
		return "offset " + scale(d, m.RangeDiv, m.MinRange)
	})
	out = forRE.ReplaceAllStringFunc(out, func(x string) string {
		g := forRE.FindStringSubmatch(x)
		return g[1] + scale(g[2], m.ForDiv, m.MinFor)
	})
	if len(bad) > 0 {
		return nil, fmt.Errorf("promtest: durations not understood: %v", bad)
	}
	return []byte(out), nil
}

// parseDuration reads one Prometheus duration of a single unit ("10m").
func parseDuration(s string) (time.Duration, error) {
	units := map[byte]time.Duration{'s': time.Second, 'm': time.Minute, 'h': time.Hour, 'd': 24 * time.Hour, 'w': 7 * 24 * time.Hour, 'y': 365 * 24 * time.Hour}
	if len(s) < 2 {
		return 0, fmt.Errorf("bad duration %q", s)
	}
	u, ok := units[s[len(s)-1]]
	n, err := strconv.Atoi(s[:len(s)-1])
	if !ok || err != nil {
		return 0, fmt.Errorf("bad duration %q", s)
	}
	return time.Duration(n) * u, nil
}
