// Package monitoring_test checks monitoring/alerts.yml, monitoring/dashboard.json
// and the documentation they point at against the metrics the library emits.
// It lives in the lint module so that the library's own module takes no YAML
// dependency; it reads the repository's files by relative path.
package monitoring_test

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// root is the repository root, relative to this package's directory.
const root = "../.."

type kind int

const (
	counter kind = iota
	histogram
	gauge
)

// instrument is one OpenTelemetry instrument the library records.
type instrument struct {
	otel   string   // OpenTelemetry name
	kind   kind     // counter, histogram or gauge
	unit   string   // metric.WithUnit
	labels []string // attribute keys
}

// emitted is every instrument of the library. When a package adds one, add
// it here, to docs/runbook.md's table, and to a panel and (if it can go
// wrong) an alert; TestLibraryDefinesTheseMetrics fails until this list is
// updated.
var emitted = []instrument{
	{"realtime.broadcast.publishes", counter, "", []string{"transport", "mode", "scope", "outcome"}},
	{"realtime.broadcast.errors", counter, "", []string{"transport", "mode", "scope", "outcome"}},
	{"realtime.broadcast.duration", histogram, "s", []string{"transport", "mode", "scope", "outcome"}},
	{"realtime.broadcast.detached", counter, "", []string{"transport", "mode", "scope", "outcome"}},
	{"realtime.broadcast.resolver_failures", counter, "", []string{"scope", "cause", "mode"}},
	{"realtime.broadcast.log_appends", counter, "", []string{"outcome"}},
	{"realtime.flag.fallbacks", counter, "{fallback}", []string{"scope", "reason", "answer"}},
	{"realtime.token.requests", counter, "", []string{"outcome", "status", "scope"}},
	{"realtime.broadcast.mode", gauge, "", []string{"scope", "mode"}},
}

// unitSuffixes are the OTel units the exporter turns into a name suffix
// (a subset of its table: the units this library could use). A unit in
// curly braces, such as {fallback}, is an annotation and adds nothing.
var unitSuffixes = map[string]string{
	"s": "seconds", "ms": "milliseconds", "By": "bytes",
}

// family returns the Prometheus metric family the OpenTelemetry Prometheus
// exporter (go.opentelemetry.io/otel/exporters/prometheus, strategy
// UnderscoreEscapingWithSuffixes, no namespace) exports in for: the name
// with every character outside [a-zA-Z0-9_:] as an underscore, then the
// unit's suffix, then _total for a counter.
func family(in instrument) string {
	name := regexp.MustCompile(`[^a-zA-Z0-9_:]`).ReplaceAllString(in.otel, "_")
	if s, ok := unitSuffixes[in.unit]; ok && !strings.HasSuffix(name, "_"+s) {
		name += "_" + s
	}
	if in.kind == counter {
		name += "_total"
	}
	return name
}

// series returns the names of the series of a family: the family itself,
// or for a histogram its _bucket, _sum and _count series.
func series(in instrument) []string {
	f := family(in)
	if in.kind == histogram {
		return []string{f + "_bucket", f + "_sum", f + "_count"}
	}
	return []string{f}
}

// known maps every series name to its instrument.
func known() map[string]instrument {
	m := map[string]instrument{}
	for _, in := range emitted {
		for _, s := range series(in) {
			m[s] = in
		}
	}
	return m
}

// labelsOf returns the labels a series may be selected by.
func labelsOf(name string, in instrument) []string {
	labels := slices.Clone(in.labels)
	if strings.HasSuffix(name, "_bucket") && in.kind == histogram {
		labels = append(labels, "le")
	}
	// Added by the Prometheus exporter and by the scrape.
	return append(labels, "otel_scope_name", "otel_scope_version", "otel_scope_schema_url", "job", "instance")
}

// TestNameMapping pins the OTel → Prometheus names stated in the docs.
func TestNameMapping(t *testing.T) {
	want := map[string][]string{
		"realtime.broadcast.publishes":         {"realtime_broadcast_publishes_total"},
		"realtime.broadcast.errors":            {"realtime_broadcast_errors_total"},
		"realtime.broadcast.duration":          {"realtime_broadcast_duration_seconds_bucket", "realtime_broadcast_duration_seconds_sum", "realtime_broadcast_duration_seconds_count"},
		"realtime.broadcast.detached":          {"realtime_broadcast_detached_total"},
		"realtime.broadcast.resolver_failures": {"realtime_broadcast_resolver_failures_total"},
		"realtime.broadcast.log_appends":       {"realtime_broadcast_log_appends_total"},
		"realtime.flag.fallbacks":              {"realtime_flag_fallbacks_total"},
		"realtime.token.requests":              {"realtime_token_requests_total"},
		"realtime.broadcast.mode":              {"realtime_broadcast_mode"},
	}
	for _, in := range emitted {
		if got := series(in); !slices.Equal(got, want[in.otel]) {
			t.Errorf("%s exports as %v, want %v", in.otel, got, want[in.otel])
		}
	}
	if len(want) != len(emitted) {
		t.Errorf("the table names %d instruments, emitted %d", len(want), len(emitted))
	}
}

// TestLibraryDefinesTheseMetrics reads the library's Go sources and checks
// that every metric name they define (a string literal such as
// "realtime.broadcast.publishes") is in emitted, and that every instrument
// in emitted is defined somewhere.
func TestLibraryDefinesTheseMetrics(t *testing.T) {
	nameRE := regexp.MustCompile(`^realtime(\.[a-z0-9_]+){2,}$`)
	found := map[string]string{} // name → file
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			base := d.Name()
			if path != root && (strings.HasPrefix(base, ".") || strings.HasPrefix(base, "_") ||
				base == "testdata" || base == "node_modules" || base == "lint" || base == "harness" || base == "examples") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			if lit, ok := n.(*ast.BasicLit); ok && lit.Kind == token.STRING {
				if s, err := strconv.Unquote(lit.Value); err == nil && nameRE.MatchString(s) {
					found[s] = path
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(found) == 0 {
		t.Fatalf("no metric name found under %s: is the test running from lint/monitoringtest?", root)
	}
	byName := map[string]instrument{}
	for _, in := range emitted {
		byName[in.otel] = in
	}
	for name, file := range found {
		if _, ok := byName[name]; !ok {
			t.Errorf("%s defines the metric %q, which is not in emitted: add it there, to docs/runbook.md, to monitoring/dashboard.json and, if it can go wrong, to monitoring/alerts.yml", file, name)
		}
	}
	for _, in := range emitted {
		if _, ok := found[in.otel]; !ok {
			t.Errorf("emitted lists %s, which no library source defines", in.otel)
		}
	}
}

// problems checks one expression against the catalogue: every metric it
// selects is one the library exports, every label it matches or groups by
// is one of those metrics'. It returns what the expression refers to.
func problems(expr string, allowVars bool) (exprInfo, []string) {
	info, err := analyze(expr, allowVars)
	if err != nil {
		return info, []string{err.Error()}
	}
	cat := known()
	var out, all []string
	for _, sel := range info.selectors {
		in, ok := cat[sel.metric]
		if !ok {
			out = append(out, "unknown metric "+sel.metric+" (the library exports "+strings.Join(slices.Sorted(maps.Keys(cat)), ", ")+")")
			continue
		}
		labels := labelsOf(sel.metric, in)
		all = append(all, labels...)
		for _, l := range sel.labels {
			if !slices.Contains(labels, l) {
				out = append(out, fmt.Sprintf("%s has no label %q (it has %v)", sel.metric, l, in.labels))
			}
		}
	}
	for _, l := range append(slices.Clone(info.grouping), info.joining...) {
		if len(all) > 0 && !slices.Contains(all, l) {
			out = append(out, fmt.Sprintf("groups by %q, which none of its metrics has", l))
		}
	}
	return info, out
}

// checkExpr reports the problems of expr, found at where.
func checkExpr(t *testing.T, where, expr string, allowVars bool) exprInfo {
	t.Helper()
	info, probs := problems(expr, allowVars)
	for _, p := range probs {
		t.Errorf("%s: %s", where, p)
	}
	return info
}

func readFile(t *testing.T, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, rel))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestExprChecker shows that the expression checks bite.
func TestExprChecker(t *testing.T) {
	good := `sum by (transport, le) (rate(realtime_broadcast_duration_seconds_bucket{outcome!="canceled"}[10m])) > 1 and on (transport) sum by (transport) (increase(realtime_broadcast_duration_seconds_count[10m])) >= 20`
	if _, err := analyze(good, false); err != nil {
		t.Fatalf("analyze(good): %v", err)
	}
	info, _ := analyze(`x{a="1"} unless y offset 5m # comment (`, false)
	if len(info.selectors) != 2 || info.selectors[0].metric != "x" || !slices.Equal(info.selectors[0].labels, []string{"a"}) || info.selectors[1].metric != "y" {
		t.Errorf("selectors = %+v", info.selectors)
	}
	if info, err := analyze(`rate(x[$__rate_interval]) * on (a) group_left y{b=~"$scope"}`, true); err != nil ||
		!slices.Equal(info.vars, []string{"__rate_interval"}) || !slices.Equal(info.joining, []string{"a"}) {
		t.Errorf("variables: %+v, %v", info, err)
	}
	for _, bad := range []string{
		`sum(rate(x[5m])`,      // unclosed
		`sum(rate(x[5m])))`,    // one too many
		`x{a="1"`,              // unclosed selector
		`x{a="1}`,              // unterminated string
		`summ(x)`,              // unknown function
		`rate(x[5 m])`,         // bad range
		`rate(x[$__interval])`, // variable outside a dashboard
		`{__name__="x"}`,       // no metric name
		`x{a=1}`,               // matcher without a string
		`sum by transport (x)`, // by without a list
		`0.5 > 1`,              // no metric at all
		`x{a=="1"}`,            // bad operator
	} {
		if _, err := analyze(bad, false); err == nil {
			t.Errorf("analyze(%q) accepted it", bad)
		}
	}
	for _, d := range []string{"5m", "1h30m", "250ms", "1d"} {
		if !isDuration(d) {
			t.Errorf("isDuration(%q) = false", d)
		}
	}
	for _, d := range []string{"", "m", "5", "5 m", "1.5m", "5x"} {
		if isDuration(d) {
			t.Errorf("isDuration(%q) = true", d)
		}
	}
	// The catalogue: unknown metrics and labels are reported.
	_, probs := problems(`sum by (reason) (rate(realtime_broadcast_errors_total{reason="x"}[5m])) + realtime_broadcast_publishes`, false)
	if len(probs) != 3 {
		t.Errorf("problems reported %d, want 3 (label reason twice, an unknown metric):\n%s", len(probs), strings.Join(probs, "\n"))
	}
}
