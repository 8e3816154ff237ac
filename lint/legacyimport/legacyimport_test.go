package legacyimport_test

import (
	"fmt"
	"strings"
	"testing"

	"golang.org/x/tools/go/analysis"
	"golang.org/x/tools/go/analysis/analysistest"

	"github.com/coursebuilder/realtime-go/lint/legacyimport"
)

// Every package of the testdata tree: the app, the stand-in legacyparty
// (whose own tests and subpackage are exempt) and the third-party stand-ins.
var allPackages = []string{"example.com/...", "github.com/coursebuilder/realtime-go/..."}

func newAnalyzer(t *testing.T, c *legacyimport.Config) *analysis.Analyzer {
	t.Helper()
	a, err := legacyimport.New(c)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestAnalyzer checks the diagnostics against the // want comments of the
// testdata: plain, named, dot and blank imports, in-package and external
// test files, an allowed package (exact path), an allowed package (pattern),
// the denied package's own tests and subpackage, a PartyKit-related
// third-party path and a package with "party" in its path that is not one.
func TestAnalyzer(t *testing.T) {
	a := newAnalyzer(t, &legacyimport.Config{
		Allow: []string{"example.com/app/broadcast", ".../internal/..."},
	})
	analysistest.Run(t, analysistest.TestData(), a, allPackages...)
}

// TestFlags configures the package-level-style Analyzer through its flags,
// as singlechecker and go vet do.
func TestFlags(t *testing.T) {
	a := newAnalyzer(t, nil)
	for name, value := range map[string]string{
		"allow": "example.com/app/broadcast, .../internal/...",
		"guide": "https://github.com/coursebuilder/realtime-go/blob/main/docs/migration.md",
	} {
		if err := a.Flags.Set(name, value); err != nil {
			t.Fatalf("-%s=%s: %v", name, value, err)
		}
	}
	if got := a.Flags.Lookup("allow").Value.String(); got != "example.com/app/broadcast,.../internal/..." {
		t.Errorf("-allow reads back as %q", got)
	}
	analysistest.Run(t, analysistest.TestData(), a, allPackages...)
}

// collect runs a over pkgs and returns "importer: message" for every
// diagnostic, ignoring the // want comments.
func collect(t *testing.T, a *analysis.Analyzer, pkgs ...string) []string {
	t.Helper()
	var out []string
	for _, r := range analysistest.Run(ignoreWants{t}, analysistest.TestData(), a, pkgs...) {
		if r.Err != nil {
			t.Fatalf("%s: %v", r.Pass.Pkg.Path(), r.Err)
		}
		for _, d := range r.Diagnostics {
			out = append(out, r.Pass.Pkg.Path()+": "+d.Message)
		}
	}
	return out
}

// ignoreWants is an analysistest.Testing that drops the complaints about
// // want comments, so a test can look at the diagnostics of another
// configuration than the one the comments describe. Loading and analysis
// failures still fail the test: collect checks Result.Err, and analysistest
// reports loading errors through Errorf with a "loading" prefix.
type ignoreWants struct{ t *testing.T }

func (w ignoreWants) Errorf(format string, args ...any) {
	if msg := fmt.Sprintf(format, args...); strings.HasPrefix(msg, "loading") || strings.HasPrefix(msg, "Analyze") {
		w.t.Error(msg)
	}
}

func TestAllowEverything(t *testing.T) {
	a := newAnalyzer(t, &legacyimport.Config{Allow: []string{"example.com/..."}})
	if got := collect(t, a, allPackages...); len(got) != 0 {
		t.Errorf("-allow=example.com/... still reports:\n%s", strings.Join(got, "\n"))
	}
}

func TestEmptyDenyReportsNothing(t *testing.T) {
	a := newAnalyzer(t, &legacyimport.Config{Deny: []string{}})
	if got := collect(t, a, allPackages...); len(got) != 0 {
		t.Errorf("an empty -deny still reports:\n%s", strings.Join(got, "\n"))
	}
	// The flag form: -deny= clears the list too.
	b := newAnalyzer(t, nil)
	if err := b.Flags.Set("deny", ""); err != nil {
		t.Fatal(err)
	}
	if got := collect(t, b, allPackages...); len(got) != 0 {
		t.Errorf("-deny= still reports:\n%s", strings.Join(got, "\n"))
	}
}

func TestCustomDenyAndGuide(t *testing.T) {
	a := newAnalyzer(t, nil)
	for name, value := range map[string]string{"deny": "example.com/thirdparty", "guide": "https://wiki.example/realtime"} {
		if err := a.Flags.Set(name, value); err != nil {
			t.Fatal(err)
		}
	}
	got := collect(t, a, "example.com/app/clean", "example.com/app/video")
	want := []string{`example.com/app/clean: import of PartyKit-related package "example.com/thirdparty" in example.com/app/clean is not allowed: ` +
		`realtime notifications go through Inngest Realtime now (migration guide: https://wiki.example/realtime; to keep it during the migration, add example.com/app/clean to -allow)`}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("diagnostics:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestDiagnosticRange(t *testing.T) {
	a := newAnalyzer(t, nil)
	for _, r := range analysistest.Run(ignoreWants{t}, analysistest.TestData(), a, "example.com/app/stream") {
		if len(r.Diagnostics) != 1 {
			t.Fatalf("%d diagnostics, want 1", len(r.Diagnostics))
		}
		d := r.Diagnostics[0]
		f := r.Pass.Fset.File(d.Pos)
		src := f.Name()
		if d.Category != "legacyimport" || d.End <= d.Pos {
			t.Errorf("%s: category %q, range %d..%d", src, d.Category, d.Pos, d.End)
		}
		// The range covers the whole spec, name included.
		if got := f.Position(d.Pos).Column; got != 8 {
			t.Errorf("diagnostic starts at column %d, want 8 (the spec's name)", got)
		}
	}
}

func TestMatch(t *testing.T) {
	for _, c := range []struct {
		pattern, path string
		want          bool
	}{
		{"github.com/coursebuilder/realtime-go/legacyparty", "github.com/coursebuilder/realtime-go/legacyparty", true},
		{"github.com/coursebuilder/realtime-go/legacyparty", "github.com/coursebuilder/realtime-go/legacyparty/wire", false},
		{"github.com/coursebuilder/realtime-go/legacyparty", "github.com/coursebuilder/realtime-go/legacypartyx", false},
		{"github.com/coursebuilder/realtime-go/legacyparty/...", "github.com/coursebuilder/realtime-go/legacyparty", true},
		{"github.com/coursebuilder/realtime-go/legacyparty/...", "github.com/coursebuilder/realtime-go/legacyparty/a/b", true},
		{"github.com/coursebuilder/realtime-go/legacyparty/...", "github.com/coursebuilder/realtime-go/legacypartyx", false},
		{".../internal/...", "example.com/app/internal", true},
		{".../internal/...", "example.com/app/internal/legacy", true},
		{".../internal/...", "example.com/app/internalx", false},
		{"...partykit...", "github.com/x/partykit-go", true},
		{"...partykit...", "github.com/coursebuilder/realtime-go/harness/partykit", true},
		{"...partykit...", "github.com/x/PartyKit", false}, // import paths are case-sensitive
		{"...partysocket...", "example.com/thirdparty", false},
		{"example.com/a.b", "example.com/aXb", false}, // "." is not a wildcard
		{"...", "anything/at/all", true},
		{"bad pattern", "bad pattern", false},
	} {
		if got := legacyimport.Match(c.pattern, c.path); got != c.want {
			t.Errorf("Match(%q, %q) = %v, want %v", c.pattern, c.path, got, c.want)
		}
	}
}

func TestNewRejectsMalformedPatterns(t *testing.T) {
	for _, c := range []*legacyimport.Config{
		{Allow: []string{"example.com/a b"}},
		{Deny: []string{`"quoted"`}},
		{Deny: []string{`a\b`}},
	} {
		if _, err := legacyimport.New(c); err == nil || !strings.HasPrefix(err.Error(), "legacyimport: ") {
			t.Errorf("New(%+v) = %v, want a legacyimport error", *c, err)
		}
	}
	a := newAnalyzer(t, nil)
	if err := a.Flags.Set("allow", "ok/...,not ok"); err == nil {
		t.Error("-allow accepted a pattern with a space")
	}
}

func TestDefaults(t *testing.T) {
	a := legacyimport.Analyzer
	if a.Name != "legacyimport" || a.Run == nil || a.Doc == "" {
		t.Fatalf("Analyzer = %+v", a)
	}
	if err := analysis.Validate([]*analysis.Analyzer{a}); err != nil {
		t.Fatal(err)
	}
	if got, want := a.Flags.Lookup("deny").Value.String(), strings.Join(legacyimport.DefaultDeny, ","); got != want {
		t.Errorf("-deny defaults to %q, want %q", got, want)
	}
	if got := a.Flags.Lookup("allow").Value.String(); got != "" {
		t.Errorf("-allow defaults to %q, want empty", got)
	}
	if got := a.Flags.Lookup("guide").Value.String(); got != legacyimport.DefaultGuide {
		t.Errorf("-guide defaults to %q", got)
	}
	for _, p := range legacyimport.DefaultDeny {
		if !legacyimport.Match(p, strings.ReplaceAll(p, "...", "partykit")) {
			t.Errorf("default pattern %q is malformed", p)
		}
	}
}

// FuzzMatch checks that any pattern compiles or is refused without a panic,
// that a pattern without "..." matches exactly itself, and that "..."
// between two halves matches their concatenation.
func FuzzMatch(f *testing.F) {
	f.Add("github.com/coursebuilder/realtime-go/legacyparty", "x")
	f.Add(".../internal/...", "a/internal")
	f.Add("a(b)*[c]+?{2}|$^", "a(b)*[c]+?{2}|$^")
	f.Fuzz(func(t *testing.T, pattern, path string) {
		got := legacyimport.Match(pattern, path)
		if _, err := legacyimport.New(&legacyimport.Config{Allow: []string{pattern}}); err != nil {
			if got {
				t.Fatalf("malformed pattern %q matched %q", pattern, path)
			}
			return
		}
		if strings.TrimSpace(pattern) != pattern || pattern == "" {
			return
		}
		if !strings.Contains(pattern, "...") {
			if got != (pattern == path) {
				t.Fatalf("Match(%q, %q) = %v", pattern, path, got)
			}
			return
		}
		i := strings.Index(pattern, "...")
		if !legacyimport.Match(pattern, pattern[:i]+path+pattern[i+3:]) && !strings.Contains(pattern[i+3:], "...") {
			t.Fatalf("Match(%q, %q) = false", pattern, pattern[:i]+path+pattern[i+3:])
		}
	})
}
