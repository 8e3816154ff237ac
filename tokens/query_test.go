package tokens

import (
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/coursebuilder/realtime-go/flags"
	"github.com/coursebuilder/realtime-go/internal/field"
	"github.com/coursebuilder/realtime-go/internal/transport"
)

func TestParseQuery(t *testing.T) {
	ok := map[string]query{
		"room=vid_1&scope=video-ready":                                              {"vid_1", flags.ScopeVideoReady, []string{"video.asset.ready"}},
		"scope=ai-stream&room=chat%201":                                             {"chat 1", flags.ScopeAIStream, []string{"ai.message"}},
		"room=vid_1&names=video.asset.ready":                                        {"vid_1", flags.ScopeVideoReady, []string{"video.asset.ready"}},
		"room=vid_1&names=transcript.ready,transcript.partial":                      {"vid_1", flags.ScopeTranscript, []string{"transcript.ready", "transcript.partial"}},
		"room=vid_1&names=transcript.ready&names=transcript.ready&scope=transcript": {"vid_1", flags.ScopeTranscript, []string{"transcript.ready"}},
		"room=vid_1&scope=default&names=course.updated":                             {"vid_1", flags.ScopeDefault, []string{"course.updated"}},
		"room=vid_1&names=" + manyNames(maxNames):                                   {"vid_1", flags.ScopeDefault, strings.Split(manyNames(maxNames), ",")},
		"room=vid_1&scope=video-upload&_=1700000000":                                {"vid_1", flags.ScopeVideoUpload, []string{"videoResource.created"}},
	}
	for raw, want := range ok {
		got, err := parseQuery(raw)
		if err != nil || got.room != want.room || got.scope != want.scope || !slices.Equal(got.names, want.names) {
			t.Errorf("parseQuery(%q) = %+v, %v; want %+v", raw, got, err, want)
		}
	}

	bad := []string{
		"",
		"scope=video-ready",
		"room=&scope=video-ready",
		"room=a&room=b&scope=video-ready",
		"room=vid_1",
		"room=vid_1&scope=nope",
		"room=vid_1&scope=video-ready&scope=video-ready",
		"room=vid_1&scope=default",
		"room=vid_1&scope=video-ready&names=ai.message",
		"room=vid_1&names=video.asset.ready,ai.message",
		"room=vid_1&names=video.asset.ready,",
		"room=vid_1&names=",
		"room=%zz&scope=video-ready",
		"room=vid_1;scope=video-ready",
		"room=a%0Ab&scope=video-ready",
		"room=%FF&scope=video-ready",
		"room=" + strings.Repeat("r", field.RoomBytes+1) + "&scope=video-ready",
		"room=vid_1&names=" + strings.Repeat("n", field.NameBytes+1),
		"room=vid_1&scope=default&names=" + manyNames(maxNames+1),
		"room=vid_1&scope=video-ready&pad=" + strings.Repeat("p", maxQueryBytes),
	}
	for _, raw := range bad {
		got, err := parseQuery(raw)
		if err == nil {
			t.Errorf("parseQuery(%.80q) = %+v, want an error", raw, got)
			continue
		}
		// The message goes back to the client: it never quotes the input.
		if msg := err.Error(); strings.Contains(msg, "zz") || strings.Contains(msg, "rrrr") || strings.Contains(msg, "nope") {
			t.Errorf("parseQuery(%.80q) error quotes the input: %v", raw, err)
		}
	}
}

func manyNames(n int) string {
	names := make([]string, n)
	for i := range names {
		names[i] = "custom.event" + strconv.Itoa(i)
	}
	return strings.Join(names, ",")
}

// FuzzTokenQuery: parsing never panics, and an accepted query has a valid
// room, a known scope and between 1 and maxNames valid, distinct names,
// all in that scope.
func FuzzTokenQuery(f *testing.F) {
	for _, s := range []string{
		"room=vid_1&scope=video-ready",
		"room=vid_1&names=transcript.ready,transcript.partial",
		"room=vid_1&scope=default&names=a,b",
		"room=%zz",
		"room=a;b",
		"room=a&room=b",
		"names=,,,&room=x&scope=ai-stream",
		"room=%E2%80%8B&scope=ai-stream",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := parseQuery(raw)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "tokens: invalid query: ") || !utf8.ValidString(err.Error()) {
				t.Fatalf("error %q", err)
			}
			return
		}
		if len(raw) > maxQueryBytes {
			t.Fatalf("accepted a query of %d bytes", len(raw))
		}
		if err := transport.Validate("room", q.room, field.RoomBytes); err != nil {
			t.Fatalf("accepted room %q: %v", q.room, err)
		}
		if !slices.Contains(flags.Scopes, q.scope) {
			t.Fatalf("accepted unknown scope %q", q.scope)
		}
		if len(q.names) == 0 || len(q.names) > maxNames {
			t.Fatalf("accepted %d names", len(q.names))
		}
		for i, n := range q.names {
			if err := transport.Validate("name", n, field.NameBytes); err != nil {
				t.Fatalf("accepted name %q: %v", n, err)
			}
			if flags.ScopeOf(n) != q.scope {
				t.Fatalf("name %q is not in scope %s", n, q.scope)
			}
			if slices.Contains(q.names[:i], n) {
				t.Fatalf("name %q twice", n)
			}
		}
	})
}
