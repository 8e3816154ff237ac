package runbook_test

import (
	"context"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/coursebuilder/realtime-go/broadcast"
	"github.com/coursebuilder/realtime-go/chunkstream"
	"github.com/coursebuilder/realtime-go/flags"
	"github.com/coursebuilder/realtime-go/harness/inngestrt"
	"github.com/coursebuilder/realtime-go/legacyparty"
	"github.com/coursebuilder/realtime-go/realtime"
	"github.com/coursebuilder/realtime-go/realtime/inngest"
	"github.com/coursebuilder/realtime-go/replay"
	"github.com/coursebuilder/realtime-go/tokens"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, inngestrt.LeakOptions()...)
}

// root is the repository root, relative to this package's directory.
const root = "../.."

// sentinels are the errors the runbook's table documents, by the name it
// gives them.
var sentinels = map[string]error{
	"ErrInvalidMessage":              realtime.ErrInvalidMessage,
	"ErrEmpty":                       realtime.ErrEmpty,
	"ErrTooLong":                     realtime.ErrTooLong,
	"ErrControlCharacter":            realtime.ErrControlCharacter,
	"ErrInvalidUTF8":                 realtime.ErrInvalidUTF8,
	"ErrPayloadTooLarge":             realtime.ErrPayloadTooLarge,
	"ErrUnauthorized":                realtime.ErrUnauthorized,
	"ErrRejected":                    realtime.ErrRejected,
	"ErrUnavailable":                 realtime.ErrUnavailable,
	"ErrMaybeDelivered":              realtime.ErrMaybeDelivered,
	"ErrNotConfigured":               realtime.ErrNotConfigured,
	"ErrEncode":                      realtime.ErrEncode,
	"broadcast.ErrPanic":             broadcast.ErrPanic,
	"broadcast.ErrClosed":            broadcast.ErrClosed,
	"broadcast.ErrNilError":          broadcast.ErrNilError,
	"broadcast.ErrNilProvider":       broadcast.ErrNilProvider,
	"inngest.ErrInvalidToken":        inngest.ErrInvalidToken,
	"inngest.ErrMappingPanicked":     inngest.ErrMappingPanicked,
	"inngest.ErrStreamTruncated":     inngest.ErrStreamTruncated,
	"tokens.ErrMisconfigured":        tokens.ErrMisconfigured,
	"replay.ErrInvalid":              replay.ErrInvalid,
	"replay.ErrClosed":               replay.ErrClosed,
	"chunkstream.ErrBufferFull":      chunkstream.ErrBufferFull,
	"chunkstream.ErrClosed":          chunkstream.ErrClosed,
	"legacyparty.ErrRoomNotRoutable": legacyparty.ErrRoomNotRoutable,
	"context.DeadlineExceeded":       context.DeadlineExceeded,
	"context.Canceled":               context.Canceled,
}

// errorTable returns the rows of the runbook's "Errors and what to do"
// table: the names in the first column and the logged texts in the second,
// both as the backquoted spans of their cells.
func errorTable(t *testing.T) (rows [][2][]string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "docs", "runbook.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "\n## Errors and what to do\n")
	if !ok {
		t.Fatal(`docs/runbook.md has no "## Errors and what to do" section`)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	code := regexp.MustCompile("`([^`]+)`")
	header := false
	for _, line := range strings.Split(section, "\n") {
		if !strings.HasPrefix(line, "|") {
			if header {
				break // the end of the table
			}
			continue
		}
		cells := splitRow(line)
		switch {
		case !header:
			if len(cells) < 2 || strings.TrimSpace(cells[0]) != "error" || strings.TrimSpace(cells[1]) != "logged text" {
				t.Fatalf("the error table's header is %q, want | error | logged text | …", line)
			}
			header = true
			continue
		case strings.HasPrefix(strings.TrimSpace(cells[0]), "---"):
			continue
		}
		var row [2][]string
		for i := range 2 {
			for _, m := range code.FindAllStringSubmatch(cells[i], -1) {
				row[i] = append(row[i], m[1])
			}
		}
		rows = append(rows, row)
	}
	if len(rows) == 0 {
		t.Fatal("the error table has no rows")
	}
	return rows
}

// TestErrorTableLogsTheRealText: each sentinel the table names has its
// exact Error() text in the logged-text column of its row, so that an
// on-call engineer searching the logs for the text finds the row; and
// every sentinel of the library is in the table.
func TestErrorTableLogsTheRealText(t *testing.T) {
	named := map[string]bool{}
	for _, row := range errorTable(t) {
		names, texts := row[0], row[1]
		var errs []string
		for _, n := range names {
			if !sentinelName.MatchString(n) {
				continue // a type (*ValidationError), a field or an outcome label
			}
			err, ok := sentinels[n]
			if !ok {
				errs = append(errs, n+" is not a sentinel this test knows")
				continue
			}
			named[n] = true
			if !containsText(texts, err.Error()) {
				errs = append(errs, n+" logs "+`"`+err.Error()+`"`+", which its row's logged-text column does not list")
			}
		}
		for _, e := range errs {
			t.Errorf("docs/runbook.md error table, row %v: %s", names, e)
		}
	}
	for n := range sentinels {
		if !named[n] {
			t.Errorf("docs/runbook.md error table: no row names %s (%q)", n, sentinels[n].Error())
		}
	}
}

// splitRow splits a Markdown table row on its unescaped pipes and
// unescapes the escaped ones (\| in a cell is a literal |).
func splitRow(line string) []string {
	line = strings.TrimSpace(line)
	line = strings.TrimPrefix(line, "|")
	line = strings.TrimSuffix(line, "|")
	var cells []string
	var cell strings.Builder
	for i := 0; i < len(line); i++ {
		switch {
		case line[i] == '\\' && i+1 < len(line) && line[i+1] == '|':
			cell.WriteByte('|')
			i++
		case line[i] == '|':
			cells = append(cells, cell.String())
			cell.Reset()
		default:
			cell.WriteByte(line[i])
		}
	}
	return append(cells, cell.String())
}

// sentinelName is how the table spells a sentinel: ErrX, pkg.ErrX, or
// context.DeadlineExceeded and context.Canceled.
var sentinelName = regexp.MustCompile(`^([a-z]+\.)?Err[A-Za-z0-9]+$|^context\.(DeadlineExceeded|Canceled)$`)

func containsText(texts []string, s string) bool {
	for _, t := range texts {
		if strings.Contains(t, s) {
			return true
		}
	}
	return false
}

// TestEverySentinelOfTheLibraryIsKnown reads the library's sources for
// exported error variables made with errors.New, so that a new sentinel
// cannot be added without a row in the runbook (through sentinels above).
func TestEverySentinelOfTheLibraryIsKnown(t *testing.T) {
	def := regexp.MustCompile(`(?m)^\s*(?:var\s+)?(Err[A-Za-z0-9]*)\s*=\s*errors\.New\(("(?:[^"\\]|\\.)*")\)`)
	texts := map[string]bool{}
	for _, err := range sentinels {
		texts[err.Error()] = true
	}
	for _, dir := range []string{"realtime", "realtime/inngest", "internal/field", "broadcast", "tokens", "replay", "replay/internal/core", "replay/redislog", "flags", "chunkstream", "legacyparty"} {
		files, _ := filepath.Glob(filepath.Join(root, dir, "*.go"))
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range def.FindAllStringSubmatch(string(b), -1) {
				text, err := strconv.Unquote(m[2])
				if err != nil {
					t.Fatalf("%s: %s: %v", f, m[2], err)
				}
				if !texts[text] {
					t.Errorf("%s defines %s = errors.New(%q): add it to the runbook's error table and to sentinels here", f, m[1], text)
				}
			}
		}
	}
}

// TestUnauthorizedLogLineMatchesTheTable publishes with a signing key the
// (real, in-process) Inngest server refuses and checks that the logged
// error field contains the text the table lists for ErrUnauthorized: what
// on-call searches for.
func TestUnauthorizedLogLineMatchesTheTable(t *testing.T) {
	var text string
	for _, row := range errorTable(t) {
		if len(row[0]) > 0 && row[0][0] == "ErrUnauthorized" {
			text = row[1][0]
		}
	}
	if text == "" {
		t.Fatal("no ErrUnauthorized row")
	}
	srv := inngestrt.NewTest(t, inngestrt.Options{SigningKeys: []string{inngestrt.NewSigningKey()}})
	p, err := inngest.New(&inngest.Options{BaseURL: srv.URL(), SigningKey: inngestrt.NewSigningKey(), ChannelSecret: rand.Text() + rand.Text()})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	party, err := legacyparty.New(&legacyparty.Options{BaseURL: "http://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	defer party.Close()
	core, logs := observer.New(zapcore.InfoLevel)
	b, err := broadcast.New(party, p, &broadcast.Options{Resolver: flags.Fixed(flags.Realtime), Logger: zap.New(core)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	defer b.Close(ctx)
	err = b.Publish(ctx, realtime.Message{Room: "vid_1", Name: "video.asset.ready", RequestID: "req_1", Body: 1})
	if !errors.Is(err, realtime.ErrUnauthorized) {
		t.Fatalf("publish: %v, want ErrUnauthorized", err)
	}
	lines := logs.FilterMessage("realtime: publish").All()
	if len(lines) != 1 {
		t.Fatalf("%d realtime: publish lines, want 1", len(lines))
	}
	logged, _ := lines[0].ContextMap()["error"].(string)
	t.Logf("logged error: %s", logged)
	if !strings.Contains(logged, text) {
		t.Errorf("the logged error %q does not contain %q, the table's text for ErrUnauthorized", logged, text)
	}
}
