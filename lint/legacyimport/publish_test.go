package legacyimport_test

import (
	"bytes"
	"go/ast"
	"go/format"
	"go/parser"
	"go/printer"
	"go/token"
	"go/types"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/tools/go/analysis"
	"golang.org/x/tools/go/analysis/analysistest"

	"github.com/coursebuilder/realtime-go/lint/legacyimport"
)

// The testdata packages with publishes through *legacyparty.Provider, and
// the allowed one that has one too.
var publishPackages = []string{
	"example.com/app/pubvar", "example.com/app/pubfield", "example.com/app/pubalias",
	"example.com/app/pubnoimport", "example.com/app/pubdrop", "example.com/app/pubnofix",
	"example.com/app/internal/legacy",
}

func publishAnalyzer(t *testing.T) *analysis.Analyzer {
	return newAnalyzer(t, &legacyimport.Config{Allow: []string{".../internal/..."}})
}

// TestSuggestedFixes checks the diagnostics against the // want comments
// and the files after every fix against the .golden files, as `-fix`
// writes them: a variable, a field (through parentheses, of a parameter, by
// embedding), realtime imported under an alias and not at all, imports of
// legacyparty kept or deleted, and publishes reported without a fix.
func TestSuggestedFixes(t *testing.T) {
	analysistest.RunWithSuggestedFixes(t, analysistest.TestData(), publishAnalyzer(t), publishPackages...)
}

// TestEachFixCompiles applies each suggested fix alone, as an editor does,
// and type-checks the package: the fix adds the import it needs, deletes
// the legacyparty import it leaves unused and no other, and its code is
// gofmt-clean (the import block aside, which gofmt sorts).
func TestEachFixCompiles(t *testing.T) {
	fixes := 0
	for _, r := range analysistest.Run(ignoreWants{t}, analysistest.TestData(), publishAnalyzer(t), publishPackages...) {
		for _, d := range r.Diagnostics {
			for _, fix := range d.SuggestedFixes {
				fixes++
				filename := r.Pass.Fset.File(d.Pos).Name()
				src, err := os.ReadFile(filename)
				if err != nil {
					t.Fatal(err)
				}
				fixed := apply(t, r.Pass.Fset, src, fix.TextEdits)
				where := r.Pass.Fset.Position(d.Pos).String()
				if err := typeCheck(r.Pass, map[string][]byte{filename: fixed}); err != nil {
					t.Errorf("%s: after the fix alone: %v\n%s", where, err, fixed)
				}
				if a, b := afterImports(t, fixed), afterImports(t, gofmt(t, fixed)); a != b {
					t.Errorf("%s: the fixed code is not gofmt-clean:\n%s", where, fixed)
				}
			}
		}
	}
	if fixes != 12 {
		t.Errorf("%d suggested fixes, want 12", fixes)
	}
}

// TestGoldenFilesCompile type-checks each package with its .golden files in
// place of the sources: the code -fix writes builds.
func TestGoldenFilesCompile(t *testing.T) {
	for _, r := range analysistest.Run(ignoreWants{t}, analysistest.TestData(), publishAnalyzer(t), publishPackages...) {
		golden := map[string][]byte{}
		for _, f := range r.Pass.Files {
			name := r.Pass.Fset.File(f.Pos()).Name()
			if b, err := os.ReadFile(name + ".golden"); err == nil {
				golden[name] = b
			}
		}
		if len(golden) == 0 {
			continue
		}
		if err := typeCheck(r.Pass, golden); err != nil {
			t.Errorf("%s with its .golden files: %v", r.Pass.Pkg.Path(), err)
		}
	}
}

// TestPublishFollowsAllowAndDeny checks that the publish check obeys -allow
// and -deny as the import check does: nothing is reported from an allowed
// package, nor when legacyparty is not denied.
func TestPublishFollowsAllowAndDeny(t *testing.T) {
	for name, c := range map[string]*legacyimport.Config{
		"allowed":    {Allow: []string{"example.com/..."}},
		"not denied": {Deny: []string{"...partykit..."}},
	} {
		if got := collect(t, newAnalyzer(t, c), publishPackages...); len(got) != 0 {
			t.Errorf("%s: still reports:\n%s", name, strings.Join(got, "\n"))
		}
	}
}

// TestStubsMatchLibrary compares the signatures the fix relies on in the
// testdata stubs with the library's own, when the test runs inside the
// realtime-go repository, so that the stubs cannot drift from the API the
// fix writes code against.
func TestStubsMatchLibrary(t *testing.T) {
	root := filepath.Join("..", "..")
	if b, err := os.ReadFile(filepath.Join(root, "go.mod")); err != nil || !bytes.HasPrefix(b, []byte("module github.com/coursebuilder/realtime-go\n")) {
		t.Skip("not inside the realtime-go repository")
	}
	stubs := filepath.Join(analysistest.TestData(), "src", "github.com", "coursebuilder", "realtime-go")
	for _, c := range []struct{ dir, name string }{
		{"realtime", "FromContext"},
		{"realtime", "ErrNotConfigured"},
		{"realtime", "Message"},
		{"realtime", "Provider.Publish"},
		{"legacyparty", "Provider.Publish"},
	} {
		want := declared(t, filepath.Join(root, c.dir), c.name)
		got := declared(t, filepath.Join(stubs, c.dir), c.name)
		if want == "" || got == "" || (got != want && c.name != "Message") {
			t.Errorf("%s.%s: library %q, stub %q", c.dir, c.name, want, got)
		}
	}
}

// declared returns how the non-test files of dir declare name ("F",
// "T.Method" or "V"): a function's or method's signature, "var" or "type".
func declared(t *testing.T, dir, name string) string {
	t.Helper()
	fset := token.NewFileSet()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	typ, method, isMethod := strings.Cut(name, ".")
	sig := func(ft *ast.FuncType) string {
		var b bytes.Buffer
		if err := printer.Fprint(&b, fset, ft); err != nil {
			t.Fatal(err)
		}
		return b.String()
	}
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, e.Name()), nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		for _, decl := range f.Decls {
			switch d := decl.(type) {
			case *ast.FuncDecl:
				if !isMethod && d.Recv == nil && d.Name.Name == name {
					return sig(d.Type)
				}
				if isMethod && d.Recv != nil && d.Name.Name == method && strings.TrimPrefix(types.ExprString(d.Recv.List[0].Type), "*") == typ {
					return sig(d.Type)
				}
			case *ast.GenDecl:
				for _, s := range d.Specs {
					switch s := s.(type) {
					case *ast.ValueSpec:
						if !isMethod && slices.ContainsFunc(s.Names, func(id *ast.Ident) bool { return id.Name == name }) {
							return "var"
						}
					case *ast.TypeSpec:
						if s.Name.Name != typ {
							continue
						}
						if !isMethod {
							return "type"
						}
						if it, ok := s.Type.(*ast.InterfaceType); ok {
							for _, m := range it.Methods.List {
								if len(m.Names) == 1 && m.Names[0].Name == method {
									return sig(m.Type.(*ast.FuncType))
								}
							}
						}
					}
				}
			}
		}
	}
	return ""
}

// apply returns src with edits made, failing on overlapping edits.
func apply(t *testing.T, fset *token.FileSet, src []byte, edits []analysis.TextEdit) []byte {
	t.Helper()
	edits = slices.Clone(edits)
	slices.SortFunc(edits, func(a, b analysis.TextEdit) int { return int(a.Pos) - int(b.Pos) })
	var out []byte
	last := 0
	for _, e := range edits {
		tf := fset.File(e.Pos)
		start, end := tf.Offset(e.Pos), tf.Offset(e.End)
		if start < last {
			t.Fatalf("overlapping edits %v", edits)
		}
		out = append(append(out, src[last:start]...), e.NewText...)
		last = end
	}
	return append(out, src[last:]...)
}

// typeCheck type-checks pass's package with the files in replace in place
// of theirs, importing what the package's dependencies provide.
func typeCheck(pass *analysis.Pass, replace map[string][]byte) error {
	fset := token.NewFileSet()
	var files []*ast.File
	for _, f := range pass.Files {
		name := pass.Fset.File(f.Pos()).Name()
		src, ok := replace[name]
		if !ok {
			var err error
			if src, err = os.ReadFile(name); err != nil {
				return err
			}
		}
		pf, err := parser.ParseFile(fset, name, src, parser.ParseComments)
		if err != nil {
			return err
		}
		files = append(files, pf)
	}
	deps := map[string]*types.Package{}
	var visit func(*types.Package)
	visit = func(p *types.Package) {
		if deps[p.Path()] == nil {
			deps[p.Path()] = p
			for _, q := range p.Imports() {
				visit(q)
			}
		}
	}
	visit(pass.Pkg)
	conf := types.Config{Importer: importerFunc(func(path string) (*types.Package, error) {
		if p := deps[path]; p != nil {
			return p, nil
		}
		return nil, os.ErrNotExist
	})}
	_, err := conf.Check(pass.Pkg.Path(), fset, files, nil)
	return err
}

type importerFunc func(path string) (*types.Package, error)

func (f importerFunc) Import(path string) (*types.Package, error) { return f(path) }

func gofmt(t *testing.T, src []byte) []byte {
	t.Helper()
	b, err := format.Source(src)
	if err != nil {
		t.Fatalf("%v\n%s", err, src)
	}
	return b
}

// afterImports returns the source after the file's import declarations.
func afterImports(t *testing.T, src []byte) string {
	t.Helper()
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "x.go", src, parser.ImportsOnly)
	if err != nil {
		t.Fatal(err)
	}
	end := f.Name.End()
	if n := len(f.Decls); n > 0 {
		end = f.Decls[n-1].End()
	}
	return string(src[fset.File(end).Offset(end):])
}
