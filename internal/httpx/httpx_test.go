package httpx

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
	"unicode"
)

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	cases := map[string]struct {
		d  time.Duration
		ok bool
	}{
		"":                              {0, false},
		"3":                             {3 * time.Second, true},
		" 0 ":                           {0, true},
		"-1":                            {0, false},
		"9227000000":                    {24 * time.Hour, true},
		"soon":                          {0, false},
		"Wed, 25 Nov 2026 12:00:05 GMT": {5 * time.Second, true},
		"Wed, 25 Nov 2026 11:00:00 GMT": {0, true},
	}
	for in, want := range cases {
		d, ok := ParseRetryAfter(in, now)
		if d != want.d || ok != want.ok {
			t.Errorf("ParseRetryAfter(%q) = %v, %v; want %v, %v", in, d, ok, want.d, want.ok)
		}
	}
}

func TestSnippet(t *testing.T) {
	if got := Snippet([]byte("  bad\r\n\x1b[31m request  \xff"), 100); got != "bad [31m request ?" {
		t.Errorf("Snippet = %q", got)
	}
	if got := Snippet([]byte(strings.Repeat("x", 50)), 10); got != strings.Repeat("x", 10) {
		t.Errorf("Snippet did not cut: %q", got)
	}
}

func FuzzParseRetryAfter(f *testing.F) {
	for _, s := range []string{"1", "120", "Wed, 21 Oct 2015 07:28:00 GMT", "", "-5", "99999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, ok := ParseRetryAfter(s, time.Now())
		if d < 0 || (!ok && d != 0) {
			t.Fatalf("ParseRetryAfter(%q) = %v, %v", s, d, ok)
		}
	})
}

func FuzzSnippet(f *testing.F) {
	f.Add([]byte("hello\nworld"), 5)
	f.Fuzz(func(t *testing.T, b []byte, n int) {
		if n < 0 || n > 1<<16 {
			t.Skip()
		}
		s := Snippet(b, n)
		if strings.ContainsFunc(s, unicode.IsControl) || len(s) > 3*n+3 {
			t.Fatalf("Snippet(%q, %d) = %q", b, n, s)
		}
	})
}

func TestPostSendsTheBodyWithItsLength(t *testing.T) {
	var got []byte
	var length int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		length = r.ContentLength
		got, _ = io.ReadAll(r.Body)
		w.Header().Set("Retry-After", "2")
		w.WriteHeader(http.StatusTooManyRequests)
		_, _ = io.WriteString(w, "slow down")
	}))
	defer srv.Close()
	ans, err := Post(context.Background(), srv.Client(), srv.URL, http.Header{"X-A": {"1"}}, []byte(`{"a":1}`), 4, time.Second)
	if err != nil || ans.Status != http.StatusTooManyRequests || string(ans.Body) != "slow" || ans.RetryAfter != 2*time.Second {
		t.Fatalf("Post = %+v, %v", ans, err)
	}
	if string(got) != `{"a":1}` || length != 7 {
		t.Fatalf("server got %q with Content-Length %d", got, length)
	}
}

func TestPostKeepsTheCallersEarlierDeadline(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body) // then the server notices the client leave
		<-r.Context().Done()
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := Post(ctx, srv.Client(), srv.URL, nil, []byte("x"), 0, time.Hour)
	var ate *AttemptTimeoutError
	if !errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ate) || !errors.Is(err, ErrSent) {
		t.Fatalf("err = %v; want the caller's deadline, sent, and no attempt timeout", err)
	}
	ctx2 := context.Background()
	_, err = Post(ctx2, srv.Client(), srv.URL, nil, []byte("x"), 0, 50*time.Millisecond)
	if !errors.As(err, &ate) || !errors.Is(err, ErrSent) {
		t.Fatalf("err = %v; want the attempt timeout, sent", err)
	}
}
