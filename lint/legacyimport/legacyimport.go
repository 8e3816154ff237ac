package legacyimport

import (
	"errors"
	"flag"
	"fmt"
	"go/ast"
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/tools/go/analysis"
)

// LegacyPartyPath is the import path of the deprecated PartyKit provider.
const LegacyPartyPath = "github.com/coursebuilder/realtime-go/legacyparty"

// DefaultGuide is the migration guide a diagnostic points at unless
// [Config.Guide] or -guide says otherwise.
const DefaultGuide = "https://github.com/coursebuilder/realtime-go/blob/main/docs/migration.md"

// DefaultDeny lists the import path patterns denied unless [Config.Deny] or
// -deny says otherwise: the legacyparty package and its subpackages, and any
// path that mentions partykit or partysocket (Go clients of PartyKit, the
// harness that runs the PartyKit dev server).
var DefaultDeny = []string{LegacyPartyPath + "/...", "...partykit...", "...partysocket..."}

// Config configures [New]. A nil *Config, or a zero field, means the
// default documented on the field.
type Config struct {
	// Allow lists patterns of importing packages that may import a denied
	// path. Defaults to none.
	Allow []string
	// Deny lists patterns of denied import paths. Defaults to [DefaultDeny].
	Deny []string
	// Guide is the migration guide the message points at. Defaults to
	// [DefaultGuide].
	Guide string
}

// Analyzer reports imports of PartyKit packages, and publishes through
// *legacyparty.Provider with a suggested fix, with the default
// configuration; its -allow, -deny and -guide flags change it. Use [New] for
// an Analyzer of your own (tests, several configurations in one driver).
var Analyzer = func() *analysis.Analyzer {
	a, err := New(nil)
	if err != nil { // the defaults are valid; a test checks
		panic(err)
	}
	return a
}()

// New returns an Analyzer named "legacyimport" configured by c (the package
// doc says what it reports and fixes), with the flags -allow, -deny and
// -guide initialised from it. It fails when a pattern is malformed: not
// UTF-8, or containing white space, a control character, a quote or a
// backslash. Empty patterns are ignored.
func New(c *Config) (*analysis.Analyzer, error) {
	var cfg Config
	if c != nil {
		cfg = *c
	}
	ck := &checker{guide: cfg.Guide}
	if ck.guide == "" {
		ck.guide = DefaultGuide
	}
	if err := ck.allow.set(cfg.Allow); err != nil {
		return nil, fmt.Errorf("legacyimport: allow: %w", err)
	}
	deny := cfg.Deny
	if deny == nil {
		deny = DefaultDeny
	}
	if err := ck.deny.set(deny); err != nil {
		return nil, fmt.Errorf("legacyimport: deny: %w", err)
	}
	a := &analysis.Analyzer{
		Name: "legacyimport",
		Doc: "report imports of PartyKit packages and legacyparty publishes outside an allow-list\n\n" +
			"legacyimport reports every import (plain, named, dot or blank, test files included) of " +
			LegacyPartyPath + " and of other PartyKit-related paths (-deny) from a package " +
			"that is not on the allow-list (-allow), so that PartyKit does not creep back " +
			"once code has moved to Inngest Realtime.\n\n" +
			"It also reports every call of (*legacyparty.Provider).Publish there, with a suggested " +
			"fix (apply it with -fix) that publishes through realtime.FromContext(ctx), the app's " +
			"Broadcast, instead.",
		URL: "https://pkg.go.dev/github.com/coursebuilder/realtime-go/lint/legacyimport",
		Run: ck.run,
	}
	a.Flags.Var(&ck.allow, "allow", "comma-separated `patterns` of importing packages that may import a denied path (\"...\" is a wildcard; a/... matches a and below)")
	a.Flags.Var(&ck.deny, "deny", "comma-separated `patterns` of denied import paths")
	a.Flags.StringVar(&ck.guide, "guide", ck.guide, "migration guide the diagnostic points at")
	return a, nil
}

// checker holds one Analyzer's configuration.
type checker struct {
	allow, deny patterns
	guide       string
}

func (ck *checker) run(pass *analysis.Pass) (any, error) {
	importer := pass.Pkg.Path()
	if pass.Pkg.Name() == "main" && strings.HasSuffix(importer, ".test") {
		// The test main the go command generates for package p ("p.test")
		// imports p and p_test, which are checked themselves.
		return nil, nil
	}
	// An external test package (package p_test, path p_test) is judged as
	// the package it tests.
	subject := importer
	if strings.HasSuffix(pass.Pkg.Name(), "_test") {
		subject = strings.TrimSuffix(importer, "_test")
	}
	if ck.allow.match(subject) {
		return nil, nil
	}
	for _, f := range pass.Files {
		for _, spec := range f.Imports {
			path, err := strconv.Unquote(spec.Path.Value)
			if err != nil || !ck.denied(path, subject) {
				continue
			}
			pass.Report(analysis.Diagnostic{
				Pos:      spec.Pos(),
				End:      spec.End(),
				Category: "legacyimport",
				Message:  ck.message(path, importer, subject, spec),
			})
		}
	}
	if ck.denied(LegacyPartyPath, subject) {
		ck.checkPublishes(pass)
	}
	return nil, nil
}

// denied reports whether importing path from subject is denied: some deny
// pattern matches path but not subject (a denied package's own tests and
// subpackages may import it).
func (ck *checker) denied(path, subject string) bool {
	for _, p := range ck.deny.list {
		if p.match(path) && !p.match(subject) {
			return true
		}
	}
	return false
}

func (ck *checker) message(path, importer, subject string, spec *ast.ImportSpec) string {
	kind := "import"
	if spec.Name != nil {
		switch spec.Name.Name {
		case "_":
			kind = "blank import"
		case ".":
			kind = "dot import"
		default:
			kind = "import (as " + spec.Name.Name + ")"
		}
	}
	var what, instead string
	if path == LegacyPartyPath || strings.HasPrefix(path, LegacyPartyPath+"/") {
		what = "deprecated PartyKit package"
		instead = "publish through inngest.Provider or broadcast.Broadcast instead"
	} else {
		what = "PartyKit-related package"
		instead = "realtime notifications go through Inngest Realtime now"
	}
	return fmt.Sprintf("%s of %s %q in %s is not allowed: %s (migration guide: %s; to keep it during the migration, add %s to -allow)",
		kind, what, path, importer, instead, ck.guide, subject)
}

// patterns is a comma-separated list of go-command-style package patterns;
// it is a [flag.Value].
type patterns struct {
	list []pattern
}

var _ flag.Value = (*patterns)(nil)

type pattern struct {
	text string
	re   *regexp.Regexp
}

func (p pattern) match(path string) bool { return p.re.MatchString(path) }

// String returns the patterns joined by commas.
func (ps *patterns) String() string {
	if ps == nil {
		return ""
	}
	s := make([]string, len(ps.list))
	for i, p := range ps.list {
		s[i] = p.text
	}
	return strings.Join(s, ",")
}

// Set replaces the list with the comma-separated patterns of v; empty
// elements are ignored, so "" clears the list.
func (ps *patterns) Set(v string) error {
	return ps.set(strings.Split(v, ","))
}

func (ps *patterns) set(texts []string) error {
	list := make([]pattern, 0, len(texts))
	for _, t := range texts {
		t = strings.TrimSpace(t)
		if t == "" {
			continue
		}
		p, err := compilePattern(t)
		if err != nil {
			return err
		}
		list = append(list, p)
	}
	ps.list = list
	return nil
}

func (ps *patterns) match(path string) bool {
	for _, p := range ps.list {
		if p.match(path) {
			return true
		}
	}
	return false
}

var errBadPattern = errors.New("malformed pattern")

// compilePattern turns a go-command-style pattern into a matcher: "..."
// matches any string, and a trailing "/..." also matches the empty string,
// as in cmd/go's pkgpattern.MatchPattern.
func compilePattern(t string) (pattern, error) {
	if !utf8.ValidString(t) || strings.ContainsFunc(t, func(r rune) bool {
		return unicode.IsSpace(r) || unicode.IsControl(r) || strings.ContainsRune("\"'`\\", r)
	}) {
		return pattern{}, fmt.Errorf("%w %q: white space, control characters, quotes and backslashes are not allowed", errBadPattern, t)
	}
	re := regexp.QuoteMeta(t)
	re = strings.ReplaceAll(re, `\.\.\.`, `.*`)
	if strings.HasSuffix(re, `/.*`) {
		re = strings.TrimSuffix(re, `/.*`) + `(/.*)?`
	}
	compiled, err := regexp.Compile(`(?s)^` + re + `$`)
	if err != nil {
		return pattern{}, fmt.Errorf("%w %q: %v", errBadPattern, t, err)
	}
	return pattern{text: t, re: compiled}, nil
}

// Match reports whether the import path matches the go-command-style
// pattern, the way -allow and -deny match them. A malformed pattern matches
// nothing.
func Match(pattern, path string) bool {
	p, err := compilePattern(pattern)
	return err == nil && p.match(path)
}
