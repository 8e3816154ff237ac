package monitoring_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode"

	"go.yaml.in/yaml/v3"
)

// runbookURL is the prefix of every runbook_url; the anchor follows.
const runbookURL = "https://github.com/coursebuilder/realtime-go/blob/main/docs/runbook.md#"

type ruleFile struct {
	Groups []struct {
		Name     string `yaml:"name"`
		Interval string `yaml:"interval"`
		Rules    []rule `yaml:"rules"`
	} `yaml:"groups"`
}

type rule struct {
	Alert       string            `yaml:"alert"`
	Record      string            `yaml:"record"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

func decodeYAML(t *testing.T, rel string, v any) {
	t.Helper()
	dec := yaml.NewDecoder(bytes.NewReader(readFile(t, rel)))
	dec.KnownFields(true) // a misspelt key ("annotation:") is an error
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%s: %v", rel, err)
	}
}

func loadAlerts(t *testing.T) []rule {
	t.Helper()
	var f ruleFile
	decodeYAML(t, "monitoring/alerts.yml", &f)
	if len(f.Groups) == 0 {
		t.Fatal("alerts.yml has no groups")
	}
	var rules []rule
	groups := map[string]bool{}
	for _, g := range f.Groups {
		if g.Name == "" || groups[g.Name] {
			t.Errorf("group name %q is empty or repeated", g.Name)
		}
		groups[g.Name] = true
		if len(g.Rules) == 0 {
			t.Errorf("group %s has no rules", g.Name)
		}
		rules = append(rules, g.Rules...)
	}
	return rules
}

var (
	alertNameRE = regexp.MustCompile(`^[A-Z][A-Za-z0-9]+$`)
	labelRefRE  = regexp.MustCompile(`\$labels\.([a-zA-Z_][a-zA-Z0-9_]*)`)
	severities  = []string{"critical", "warning", "info"}
)

func TestAlertRules(t *testing.T) {
	rules := loadAlerts(t)
	anchors := headingAnchors(t, "docs/runbook.md")
	runbook := string(readFile(t, "docs/runbook.md"))
	// An alert name may repeat only as tiers of one alert: the same
	// runbook section, each rule with a severity of its own (such as
	// critical where browsers read the failing transport, warning where
	// they do not).
	tiers := map[string]map[string]bool{} // alert → severities
	runbookOf := map[string]string{}
	used := map[string]bool{} // metric families the alerts read
	for _, r := range rules {
		where := "alert " + r.Alert
		if r.Record != "" || !alertNameRE.MatchString(r.Alert) {
			t.Errorf("rule %q/%q: want an alerting rule with a CamelCase name", r.Alert, r.Record)
		}
		sev, u := r.Labels["severity"], r.Annotations["runbook_url"]
		if tiers[r.Alert] == nil {
			tiers[r.Alert] = map[string]bool{}
			runbookOf[r.Alert] = u
		} else if tiers[r.Alert][sev] || runbookOf[r.Alert] != u {
			t.Errorf("%s: repeated with the same severity %q or another runbook_url", where, sev)
		}
		tiers[r.Alert][sev] = true
		if strings.TrimSpace(r.Expr) == "" {
			t.Errorf("%s: no expr", where)
			continue
		}
		info := checkExpr(t, where, r.Expr, false)
		for _, s := range info.selectors {
			if in, ok := known()[s.metric]; ok {
				used[family(in)] = true
			}
		}
		if !isDuration(r.For) {
			t.Errorf("%s: for %q is not a duration", where, r.For)
		}
		if !slices.Contains(severities, r.Labels["severity"]) {
			t.Errorf("%s: labels.severity %q, want one of %v", where, r.Labels["severity"], severities)
		}
		for _, a := range []string{"summary", "description", "runbook_url"} {
			if strings.TrimSpace(r.Annotations[a]) == "" {
				t.Errorf("%s: no annotations.%s", where, a)
			}
		}
		for a, text := range r.Annotations {
			if strings.Count(text, "{{") != strings.Count(text, "}}") {
				t.Errorf("%s: annotations.%s has unbalanced {{ }}", where, a)
			}
			// Only the labels the expression keeps can be shown.
			for _, m := range labelRefRE.FindAllStringSubmatch(text, -1) {
				if !slices.Contains(info.grouping, m[1]) {
					t.Errorf("%s: annotations.%s shows $labels.%s, which the expression does not keep (by %v)", where, a, m[1], info.grouping)
				}
			}
		}
		anchor, ok := strings.CutPrefix(u, runbookURL)
		switch {
		case !ok:
			t.Errorf("%s: runbook_url %q does not start with %s", where, u, runbookURL)
		case !anchors[anchor]:
			t.Errorf("%s: runbook_url anchor #%s is not a heading of docs/runbook.md (headings: %v)", where, anchor, sortedKeys(anchors))
		}
		if !strings.Contains(runbook, r.Alert) {
			t.Errorf("%s: docs/runbook.md never names it, so on-call cannot search for it", where)
		}
	}
	// Every metric the library exports is watched by some alert.
	for _, in := range emitted {
		if !used[family(in)] {
			t.Errorf("no alert reads %s (%s)", family(in), in.otel)
		}
	}
}

// TestAlertUnitTests checks the promtool unit tests of the alerts: they load
// alerts.yml, feed only known series, and make every alert fire at least once.
func TestAlertUnitTests(t *testing.T) {
	var f struct {
		RuleFiles          []string `yaml:"rule_files"`
		EvaluationInterval string   `yaml:"evaluation_interval"`
		Tests              []struct {
			Name        string `yaml:"name"`
			Interval    string `yaml:"interval"`
			InputSeries []struct {
				Series string `yaml:"series"`
				Values string `yaml:"values"`
			} `yaml:"input_series"`
			AlertRuleTest []struct {
				EvalTime  string `yaml:"eval_time"`
				Alertname string `yaml:"alertname"`
				ExpAlerts []struct {
					ExpLabels      map[string]string `yaml:"exp_labels"`
					ExpAnnotations map[string]string `yaml:"exp_annotations"`
				} `yaml:"exp_alerts"`
			} `yaml:"alert_rule_test"`
		} `yaml:"tests"`
	}
	decodeYAML(t, "monitoring/alerts_test.yml", &f)
	if !slices.Equal(f.RuleFiles, []string{"alerts.yml"}) {
		t.Errorf("rule_files = %v, want [alerts.yml]", f.RuleFiles)
	}
	fired := map[string]map[string]bool{} // alert → severities seen firing
	silent := map[string]bool{}
	for _, tc := range f.Tests {
		for _, in := range tc.InputSeries {
			checkExpr(t, "test "+tc.Name+" series", in.Series, false)
		}
		for _, a := range tc.AlertRuleTest {
			if len(a.ExpAlerts) == 0 {
				silent[a.Alertname] = true
			}
			for _, e := range a.ExpAlerts {
				if fired[a.Alertname] == nil {
					fired[a.Alertname] = map[string]bool{}
				}
				fired[a.Alertname][e.ExpLabels["severity"]] = true
			}
		}
	}
	for _, r := range loadAlerts(t) {
		if !fired[r.Alert][r.Labels["severity"]] {
			t.Errorf("alerts_test.yml never makes %s fire with severity %s", r.Alert, r.Labels["severity"])
		}
		if !silent[r.Alert] {
			t.Errorf("alerts_test.yml never shows %s silent (an alert_rule_test with exp_alerts: [])", r.Alert)
		}
	}
}

// promtool is Debian's prometheus package's rule checker.
const promtool = "/usr/bin/promtool"

// TestPromtool runs promtool on the rules and their unit tests: the
// syntax Prometheus itself accepts, and every alert_rule_test's outcome.
// It skips without promtool, unless CI is set.
func TestPromtool(t *testing.T) {
	if _, err := os.Stat(promtool); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not installed in CI (apt-get install prometheus): %v", promtool, err)
		}
		t.Skipf("%s is not installed (apt-get install prometheus)", promtool)
	}
	for _, args := range [][]string{{"check", "rules", "alerts.yml"}, {"test", "rules", "alerts_test.yml"}} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = filepath.Join(root, "monitoring")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// Grafana's own variables, usable without a templating entry.
var grafanaVars = []string{"__rate_interval", "__interval", "__range", "__all"}

type panel struct {
	ID         int                 `json:"id"`
	Type       string              `json:"type"`
	Title      string              `json:"title"`
	Datasource *datasource         `json:"datasource"`
	GridPos    *struct{ H, W int } `json:"gridPos"`
	Targets    []struct {
		RefID      string      `json:"refId"`
		Expr       string      `json:"expr"`
		Datasource *datasource `json:"datasource"`
	} `json:"targets"`
	Panels []panel `json:"panels"` // a collapsed row's panels
}

type datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

func TestDashboard(t *testing.T) {
	var d struct {
		UID           string  `json:"uid"`
		Title         string  `json:"title"`
		SchemaVersion int     `json:"schemaVersion"`
		Panels        []panel `json:"panels"`
		Templating    struct {
			List []struct {
				Name  string `json:"name"`
				Type  string `json:"type"`
				Query any    `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	dec := json.NewDecoder(bytes.NewReader(readFile(t, "monitoring/dashboard.json")))
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("dashboard.json: %v", err)
	}
	if d.UID == "" || d.Title == "" || d.SchemaVersion == 0 {
		t.Errorf("dashboard uid %q, title %q, schemaVersion %d: all required", d.UID, d.Title, d.SchemaVersion)
	}

	vars := slices.Clone(grafanaVars)
	labelValuesRE := regexp.MustCompile(`^label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*,\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)$`)
	for _, v := range d.Templating.List {
		vars = append(vars, v.Name)
		if v.Type != "query" {
			continue
		}
		q, _ := v.Query.(string)
		if m, ok := v.Query.(map[string]any); ok {
			q, _ = m["query"].(string)
		}
		m := labelValuesRE.FindStringSubmatch(q)
		if m == nil {
			t.Errorf("variable %s: query %q is not label_values(metric, label)", v.Name, q)
			continue
		}
		in, ok := known()[m[1]]
		if !ok || !slices.Contains(labelsOf(m[1], in), m[2]) {
			t.Errorf("variable %s: %s has no label %s", v.Name, m[1], m[2])
		}
	}

	var all []panel
	for _, p := range d.Panels {
		all = append(all, p)
		all = append(all, p.Panels...)
	}
	if len(all) == 0 {
		t.Fatal("dashboard has no panels")
	}
	ids := map[int]bool{}
	used := map[string]bool{}
	for _, p := range all {
		where := fmt.Sprintf("panel %d %q", p.ID, p.Title)
		if ids[p.ID] {
			t.Errorf("%s: repeated id", where)
		}
		ids[p.ID] = true
		if p.Type == "row" {
			continue
		}
		if p.Title == "" || p.Type == "" || p.GridPos == nil || p.GridPos.H <= 0 || p.GridPos.W <= 0 {
			t.Errorf("%s: title, type and gridPos are required", where)
		}
		if p.Datasource == nil || p.Datasource.Type != "prometheus" || p.Datasource.UID == "" {
			t.Errorf("%s: datasource %+v, want a prometheus datasource with a uid", where, p.Datasource)
		}
		if len(p.Targets) == 0 {
			t.Errorf("%s: no targets", where)
		}
		refs := map[string]bool{}
		for _, tg := range p.Targets {
			if tg.RefID == "" || refs[tg.RefID] {
				t.Errorf("%s: refId %q empty or repeated", where, tg.RefID)
			}
			refs[tg.RefID] = true
			if tg.Datasource == nil || tg.Datasource.UID == "" {
				t.Errorf("%s target %s: no datasource", where, tg.RefID)
			}
			info := checkExpr(t, where+" target "+tg.RefID, tg.Expr, true)
			for _, s := range info.selectors {
				if in, ok := known()[s.metric]; ok {
					used[family(in)] = true
				}
			}
			for _, v := range info.vars {
				if !slices.Contains(vars, v) {
					t.Errorf("%s target %s: variable $%s is not defined", where, tg.RefID, v)
				}
			}
			// Variables inside label matchers, such as scope=~"$scope".
			for _, m := range regexp.MustCompile(`\$\{?([a-zA-Z_][a-zA-Z0-9_]*)`).FindAllStringSubmatch(tg.Expr, -1) {
				if !slices.Contains(vars, m[1]) {
					t.Errorf("%s target %s: variable $%s is not defined", where, tg.RefID, m[1])
				}
			}
		}
		if p.Datasource != nil && strings.HasPrefix(p.Datasource.UID, "$") {
			name := strings.Trim(p.Datasource.UID, "${}")
			if !slices.Contains(vars, name) {
				t.Errorf("%s: datasource variable %s is not defined", where, name)
			}
		}
	}
	for _, in := range emitted {
		if !used[family(in)] {
			t.Errorf("no panel shows %s (%s)", family(in), in.otel)
		}
	}
}

// TestRunbookNamesEveryMetric: the runbook's table maps every OTel name to
// its Prometheus name.
func TestRunbookNamesEveryMetric(t *testing.T) {
	runbook := string(readFile(t, "docs/runbook.md"))
	for _, in := range emitted {
		for _, s := range append([]string{in.otel, family(in)}, in.labels...) {
			if !strings.Contains(runbook, s) {
				t.Errorf("docs/runbook.md does not mention %s", s)
			}
		}
	}
}

// TestDocsLinks checks every relative link of docs/*.md: the file exists
// and, for a #fragment into a Markdown file, the heading does.
func TestDocsLinks(t *testing.T) {
	linkRE := regexp.MustCompile(`\]\(([^)\s]+)\)`)
	docs, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil || len(docs) == 0 {
		t.Fatalf("no docs/*.md: %v", err)
	}
	for _, doc := range docs {
		rel, _ := filepath.Rel(root, doc)
		text := withoutCode(string(readFile(t, rel)))
		for _, m := range linkRE.FindAllStringSubmatch(text, -1) {
			link := m[1]
			if u, err := url.Parse(link); err != nil || u.Scheme != "" {
				continue // absolute links are not checked here
			}
			file, frag, _ := strings.Cut(link, "#")
			target := rel
			if file != "" {
				target = filepath.Join(filepath.Dir(rel), file)
				if _, err := os.Stat(filepath.Join(root, target)); err != nil {
					t.Errorf("%s: link %s: %v", rel, link, err)
					continue
				}
			}
			if frag != "" && strings.HasSuffix(target, ".md") && !headingAnchors(t, target)[frag] {
				t.Errorf("%s: link %s: no such heading in %s", rel, link, target)
			}
		}
	}
}

// headingAnchors returns the anchors GitHub gives the headings of a
// Markdown file: lower case, punctuation other than - and _ removed, spaces
// as -, and -1, -2 … appended to repeats.
func headingAnchors(t *testing.T, rel string) map[string]bool {
	t.Helper()
	anchors := map[string]bool{}
	seen := map[string]int{}
	for _, line := range strings.Split(withoutFences(string(readFile(t, rel))), "\n") {
		trimmed := strings.TrimLeft(line, "#")
		if len(trimmed) == len(line) || len(line)-len(trimmed) > 6 || !strings.HasPrefix(trimmed, " ") {
			continue
		}
		slug := slugify(strings.TrimSpace(trimmed))
		if n := seen[slug]; n > 0 {
			anchors[fmt.Sprintf("%s-%d", slug, n)] = true
		} else {
			anchors[slug] = true
		}
		seen[slug]++
	}
	return anchors
}

func slugify(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(heading) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
			b.WriteRune(r)
		}
	}
	return b.String()
}

// withoutCode blanks fenced code blocks and inline code, whose brackets are
// not links.
func withoutCode(md string) string {
	return regexp.MustCompile("`[^`\n]*`").ReplaceAllString(withoutFences(md), "``")
}

// withoutFences blanks fenced code blocks, whose # lines are not headings.
func withoutFences(md string) string {
	var out []string
	fenced := false
	for _, line := range strings.Split(md, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			fenced = !fenced
			out = append(out, "")
			continue
		}
		if fenced {
			out = append(out, "")
			continue
		}
		out = append(out, line)
	}
	return strings.Join(out, "\n")
}

func TestSlugify(t *testing.T) {
	for in, want := range map[string]string{
		"Publish errors":                  "publish-errors",
		"Roll back in one step":           "roll-back-in-one-step",
		"`ErrUnauthorized`: refused key":  "errunauthorized-refused-key",
		"Turn realtime on (per scope)":    "turn-realtime-on-per-scope",
		"Metric names: OTel → Prometheus": "metric-names-otel--prometheus",
		"On-call rehearsal checklist":     "on-call-rehearsal-checklist",
	} {
		if got := slugify(in); got != want {
			t.Errorf("slugify(%q) = %q, want %q", in, got, want)
		}
	}
}

func sortedKeys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
