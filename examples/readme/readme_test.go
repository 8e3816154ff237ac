// Package readme checks that every Go snippet in the repository's README
// compiles as shown, against the library as it is now.
package readme

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// imports maps the package names README snippets use to their import paths;
// a snippet gets the ones it mentions.
var imports = map[string]string{
	"context":     "context",
	"errors":      "errors",
	"fmt":         "fmt",
	"http":        "net/http",
	"log":         "log",
	"time":        "time",
	"zap":         "go.uber.org/zap",
	"inngestgo":   "github.com/inngest/inngestgo",
	"step":        "github.com/inngest/inngestgo/step",
	"middleware":  "github.com/inngest/inngestgo/middleware",
	"openfeature": "github.com/open-feature/go-sdk/openfeature",
	"isolated":    "github.com/open-feature/go-sdk/openfeature/isolated",
	"realtime":    "github.com/coursebuilder/realtime-go/realtime",
	"inngest":     "github.com/coursebuilder/realtime-go/realtime/inngest",
	"legacyparty": "github.com/coursebuilder/realtime-go/legacyparty",
	"broadcast":   "github.com/coursebuilder/realtime-go/broadcast",
	"flags":       "github.com/coursebuilder/realtime-go/flags",
	"tokens":      "github.com/coursebuilder/realtime-go/tokens",
	"chunkstream": "github.com/coursebuilder/realtime-go/chunkstream",
}

// A snippet is a fence of Go code. Unless it is a whole file (it starts with
// "package"), it is compiled as the body of a function, after the snippets
// before it in the README (they build on each other), with the variables an
// HTML comment right before its fence declares:
//
//	<!-- snippet given: logger *zap.Logger; evaluator flags.Resolver -->
var (
	fence = regexp.MustCompile("(?s)(?:<!-- snippet given: ([^>]*?) -->\\s*)?```go\\n(.*?)```")
	ident = regexp.MustCompile(`\b([a-z][a-z0-9]*)\.[A-Z]`)
)

func TestREADMESnippetsCompile(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the snippets with the go command")
	}
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	blocks := fence.FindAllSubmatch(readme, -1)
	if len(blocks) == 0 {
		t.Fatal("no Go snippet found in README.md")
	}
	// The snippets that are function bodies run one after the other in one
	// function, as a reader follows them.
	var body, given bytes.Buffer
	var files [][]byte
	for _, b := range blocks {
		code := b[2]
		if bytes.HasPrefix(bytes.TrimSpace(code), []byte("package ")) {
			files = append(files, code)
			continue
		}
		for _, g := range strings.Split(string(b[1]), ";") {
			if g = strings.TrimSpace(g); g != "" {
				fmt.Fprintf(&given, "\tvar %s\n", g)
			}
		}
		body.Write(code)
	}
	src := fmt.Sprintf("package snippets\n\n%s\nfunc readme() {\n%s%s\n}\n", importBlock(body.String()+given.String()), given.String(), body.String())
	// Declared-but-unused givens are fine: every given is used by name below.
	src += "\nvar _ = readme\n"

	dir, err := os.MkdirTemp(".", "_snippets")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.WriteFile(filepath.Join(dir, "body.go"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	for i, f := range files {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("file%d.go", i)), f, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command("go", "vet", "./"+filepath.Base(dir))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("README.md's Go snippets do not compile:\n%s\nas compiled:\n%s", out, numbered(src))
	}
}

// importBlock imports the packages code names.
func importBlock(code string) string {
	seen := map[string]bool{}
	for _, m := range ident.FindAllStringSubmatch(code, -1) {
		if _, ok := imports[m[1]]; ok {
			seen[m[1]] = true
		}
	}
	names := make([]string, 0, len(seen))
	for n := range seen {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString("import (\n")
	for _, n := range names {
		fmt.Fprintf(&b, "\t%s %q\n", n, imports[n])
	}
	b.WriteString(")\n")
	return b.String()
}

func numbered(src string) string {
	var b strings.Builder
	for i, l := range strings.Split(src, "\n") {
		fmt.Fprintf(&b, "%4d  %s\n", i+1, l)
	}
	return b.String()
}

// TestREADMETablesAreWhole: a blank line inside a Markdown table ends it,
// and the rows after it render as a paragraph of pipes.
func TestREADMETablesAreWhole(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(readme), "\n")
	isRow := func(i int) bool { return i < len(lines) && strings.HasPrefix(lines[i], "|") }
	isSeparator := func(i int) bool {
		return i < len(lines) && regexp.MustCompile(`^\|[\s|:-]+\|$`).MatchString(lines[i])
	}
	for i := 1; i+1 < len(lines); i++ {
		if strings.TrimSpace(lines[i]) == "" && isRow(i-1) && isRow(i+1) && !isSeparator(i+2) {
			t.Errorf("README.md:%d: a blank line splits a table; line %d is a row without a header", i+1, i+2)
		}
	}
}
