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
		"room=vid_1&scope=video-ready":                                              {room: "vid_1", scope: flags.ScopeVideoReady, names: []string{"video.asset.ready"}},
		"scope=ai-stream&room=chat%201":                                             {room: "chat 1", scope: flags.ScopeAIStream, names: []string{"ai.message"}},
		"room=vid_1&names=video.asset.ready":                                        {room: "vid_1", scope: flags.ScopeVideoReady, names: []string{"video.asset.ready"}},
		"room=vid_1&names=transcript.ready,transcript.partial":                      {room: "vid_1", scope: flags.ScopeTranscript, names: []string{"transcript.ready", "transcript.partial"}},
		"room=vid_1&names=transcript.ready&names=transcript.ready&scope=transcript": {room: "vid_1", scope: flags.ScopeTranscript, names: []string{"transcript.ready"}},
		"room=vid_1&scope=default&names=course.updated":                             {room: "vid_1", scope: flags.ScopeDefault, names: []string{"course.updated"}},
		"room=vid_1&names=" + manyNames(maxNames):                                   {room: "vid_1", scope: flags.ScopeDefault, names: strings.Split(manyNames(maxNames), ",")},
		"room=vid_1&scope=video-upload&_=1700000000":                                {room: "vid_1", scope: flags.ScopeVideoUpload, names: []string{"videoResource.created"}},
		// A catch-up request: after a seq, a page of limit (default 100).
		"room=vid_1&scope=video-ready&after=0":                  {room: "vid_1", scope: flags.ScopeVideoReady, names: []string{"video.asset.ready"}, catchUp: true, after: 0, limit: defaultCatchUpLimit},
		"after=18446744073709551615&room=vid_1&scope=ai-stream": {room: "vid_1", scope: flags.ScopeAIStream, names: []string{"ai.message"}, catchUp: true, after: 18446744073709551615, limit: defaultCatchUpLimit},
		"room=vid_1&scope=video-ready&after=42&limit=1":         {room: "vid_1", scope: flags.ScopeVideoReady, names: []string{"video.asset.ready"}, catchUp: true, after: 42, limit: 1},
		"room=vid_1&scope=video-ready&limit=500&after=7":        {room: "vid_1", scope: flags.ScopeVideoReady, names: []string{"video.asset.ready"}, catchUp: true, after: 7, limit: maxCatchUpLimit},
	}
	for raw, want := range ok {
		got, err := parseQuery(raw)
		if err != nil || got.room != want.room || got.scope != want.scope || !slices.Equal(got.names, want.names) ||
			got.catchUp != want.catchUp || got.after != want.after || got.limit != want.limit {
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
		"room=vid_1&scope=video-ready&after=",
		"room=vid_1&scope=video-ready&after=-1",
		"room=vid_1&scope=video-ready&after=1.5",
		"room=vid_1&scope=video-ready&after=18446744073709551616",
		"room=vid_1&scope=video-ready&after=1&after=2",
		"room=vid_1&scope=video-ready&limit=5",
		"room=vid_1&scope=video-ready&after=1&limit=0",
		"room=vid_1&scope=video-ready&after=1&limit=501",
		"room=vid_1&scope=video-ready&after=1&limit=nope",
		"room=vid_1&scope=video-ready&after=1&limit=5&limit=5",
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
		"room=vid_1&scope=video-ready&after=3&limit=20",
		"room=vid_1&scope=video-ready&limit=0&after=99999999999999999999",
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
		if q.catchUp != (q.limit != 0) || q.limit < 0 || q.limit > maxCatchUpLimit || (!q.catchUp && q.after != 0) {
			t.Fatalf("accepted catch-up %v after %d limit %d", q.catchUp, q.after, q.limit)
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
