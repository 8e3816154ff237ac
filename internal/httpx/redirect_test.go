package httpx

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// Post never follows a redirect, even with a client whose CheckRedirect
// would, and leaves that client as it was; the answer names only the host
// Location points to.
func TestPostNeverFollowsARedirect(t *testing.T) {
	var reached atomic.Int32
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { reached.Add(1) }))
	defer target.Close()
	for _, status := range []int{301, 302, 303, 307, 308} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			w.Header().Set("Location", "http://user:pw@"+strings.TrimPrefix(target.URL, "http://")+"/path?token=secret")
			w.WriteHeader(status)
			_, _ = io.WriteString(w, "the redirect's own body")
		}))
		follow := func(*http.Request, []*http.Request) error { return nil }
		client := &http.Client{CheckRedirect: follow}
		for name, post := range map[string]func() (Answer, error){
			"Post": func() (Answer, error) {
				return Post(context.Background(), client, srv.URL, nil, []byte("x"), 512, time.Second)
			},
			"Sender": func() (Answer, error) {
				return NewSender(client, time.Second, time.Second).Post(context.Background(), srv.URL, nil, []byte("x"), 512)
			},
			"own Sender": func() (Answer, error) {
				s := NewSender(nil, time.Second, time.Second)
				defer s.Close()
				return s.Post(context.Background(), srv.URL, nil, []byte("x"), 512)
			},
		} {
			ans, err := post()
			if err != nil || ans.Status != status {
				t.Fatalf("%s %d: Post = %+v, %v; want the redirect as the answer", name, status, ans, err)
			}
			want := `redirect to host "` + strings.TrimPrefix(target.URL, "http://") + `" not followed`
			if string(ans.Body) != want {
				t.Errorf("%s %d: body %q, want %q", name, status, ans.Body, want)
			}
		}
		if client.CheckRedirect == nil {
			t.Fatal("the user's client was changed")
		}
		srv.Close()
	}
	if n := reached.Load(); n != 0 {
		t.Fatalf("the redirect target got %d requests", n)
	}
}

func TestNoRedirectsCopiesTheClient(t *testing.T) {
	jar := http.CookieJar(nil)
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 3 * time.Second, Jar: jar}
	n := NoRedirects(c)
	if n == c || c.CheckRedirect != nil || n.CheckRedirect == nil || n.Transport != tr || n.Timeout != c.Timeout {
		t.Fatalf("NoRedirects(%+v) = %+v", c, n)
	}
	if err := n.CheckRedirect(nil, nil); err != http.ErrUseLastResponse {
		t.Fatalf("CheckRedirect = %v", err)
	}
	if NewClient().CheckRedirect == nil {
		t.Fatal("NewClient follows redirects")
	}
}

func TestRedirectDetailNamesOnlyTheHost(t *testing.T) {
	req := httptest.NewRequest(http.MethodPost, "https://api.example/v1/realtime/publish?channel=c", nil)
	for loc, want := range map[string]string{
		"":                                  "redirect without a Location, not followed",
		"http://u:p@evil.example:81/x?k=v":  `redirect to host "evil.example:81" not followed`,
		"/elsewhere?token=t":                `redirect to host "api.example" not followed`,
		"//other.example/p":                 `redirect to host "other.example" not followed`,
		"http://[::1":                       "redirect to an unreadable Location, not followed",
		"mailto:someone@example.com?x=s3cr": "redirect to an unreadable Location, not followed",
	} {
		resp := &http.Response{Header: http.Header{}, Request: req}
		if loc != "" {
			resp.Header.Set("Location", loc)
		}
		if got := RedirectDetail(resp); got != want {
			t.Errorf("RedirectDetail(%q) = %q, want %q", loc, got, want)
		}
	}
}
