package legacyparty_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/coursebuilder/realtime-go/legacyparty"
	"github.com/coursebuilder/realtime-go/realtime"
)

// captureTransport answers every request with 200 "ok" without a network,
// keeping the request's URL.
type captureTransport struct {
	mu   sync.Mutex
	urls []*url.URL
}

func (c *captureTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		_, _ = io.Copy(io.Discard, r.Body)
		_ = r.Body.Close()
	}
	c.mu.Lock()
	c.urls = append(c.urls, r.URL)
	c.mu.Unlock()
	return &http.Response{
		StatusCode: http.StatusOK, Header: http.Header{}, Request: r,
		Body: io.NopCloser(strings.NewReader("ok")),
	}, nil
}

func (c *captureTransport) take() []*url.URL {
	c.mu.Lock()
	defer c.mu.Unlock()
	u := c.urls
	c.urls = nil
	return u
}

// FuzzRoomPath checks that every room that passes message validation is
// either refused ([legacyparty.ErrRoomNotRoutable], [legacyparty.ErrRoomNotRoutable])
// with nothing sent, or posted to /party/ plus exactly one path segment that
// is no dot segment and unescapes to the room (rooms holding a "%" go as
// they are, as partysocket sends them), so no room id reaches another path.
// FuzzPublishURL checks that the segment is partysocket's.
func FuzzRoomPath(f *testing.F) {
	for _, seed := range []string{
		"vid_123", "../x", "a/b", "?q", "#f", "%2e%2e", "%2F..", ".", "..", "...",
		"a b", "é🎬", "\\..\\x", "/party/x", "//evil.example/x", "a?b#c", ";", "%", "%zz",
	} {
		f.Add(seed)
	}
	p, tr := captured(f)
	f.Fuzz(func(t *testing.T, room string) {
		m := realtime.Message{Room: room, Name: "video.asset.ready", Body: 1}
		err := p.Publish(context.Background(), m)
		sent := tr.take()
		if m.Validate() != nil || room == "." || room == ".." {
			if !errors.Is(err, realtime.ErrInvalidMessage) {
				t.Fatalf("room %q: got %v, want an ErrInvalidMessage", room, err)
			}
			if len(sent) != 0 {
				t.Fatalf("room %q: invalid room was sent to %s", room, sent[0])
			}
			return
		}
		if errors.Is(err, legacyparty.ErrRoomNotRoutable) {
			if len(sent) != 0 {
				t.Fatalf("room %q: refused room was sent to %s", room, sent[0])
			}
			return
		}
		if err != nil {
			t.Fatalf("room %q: %v", room, err)
		}
		if len(sent) != 1 {
			t.Fatalf("room %q: %d requests, want 1", room, len(sent))
		}
		u := sent[0]
		if u.Scheme != "https" || u.Host != "party.example.com" || u.User != nil {
			t.Fatalf("room %q: request went to %s://%s", room, u.Scheme, u.Host)
		}
		if u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
			t.Fatalf("room %q: request URL %s has a query or fragment", room, u)
		}
		// What goes on the wire: the request line's target.
		target := u.RequestURI()
		seg, ok := strings.CutPrefix(target, "/base/party/")
		if !ok || seg == "" || strings.ContainsAny(seg, "/?#\\") {
			t.Fatalf("room %q: request target %q is not /base/party/<one segment>", room, target)
		}
		switch strings.ToLower(seg) {
		case ".", "..", ".%2e", "%2e.", "%2e%2e", "%2e":
			t.Fatalf("room %q: segment %q is a dot segment", room, seg)
		}
		if strings.Contains(room, "%") {
			return
		}
		got, err := url.PathUnescape(seg)
		if err != nil || got != room {
			t.Fatalf("room %q: segment %q unescapes to %q, %v", room, seg, got, err)
		}
		// And what a Go server decodes from it.
		parsed, err := url.ParseRequestURI(target)
		if err != nil || parsed.Path != "/base/party/"+room {
			t.Fatalf("room %q: server would see path %q, %v", room, parsed.Path, err)
		}
	})
}

// captured returns a provider whose requests tr records instead of sending,
// one attempt each.
func captured(tb testing.TB) (*legacyparty.Provider, *captureTransport) {
	tb.Helper()
	tr := &captureTransport{}
	p, err := legacyparty.New(&legacyparty.Options{
		BaseURL:    "https://party.example.com/base",
		HTTPClient: &http.Client{Transport: tr},
		Retry:      &realtime.RetryPolicy{Attempts: 1},
	})
	if err != nil {
		tb.Fatal(err)
	}
	return p, tr
}
