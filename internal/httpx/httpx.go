// Package httpx holds the HTTP plumbing the transports share: a client tuned
// for many small POSTs to one host that never follows a redirect,
// Retry-After parsing, and careful reading of answers so that connections
// are reused and nothing unbounded is kept.
package httpx

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode"
)

// Defaults for [NewClient].
const (
	DialTimeout         = 3 * time.Second
	TLSHandshakeTimeout = 5 * time.Second
	IdleConnTimeout     = 90 * time.Second
	// MaxIdleConnsPerHost lets concurrent publishers keep their connections
	// alive instead of the standard library's 2.
	MaxIdleConnsPerHost = 64
)

// NewClient returns a client with its own transport: bounded dial and TLS
// handshake, and enough idle connections per host for concurrent publishers.
// It has no response header timeout: each attempt is bounded as a whole by a
// [Sender]'s timeout, which a shorter header timeout would silently undercut.
// It never follows a redirect (see [NoRedirects]).
func NewClient() *http.Client {
	return &http.Client{CheckRedirect: noRedirect, Transport: &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: DialTimeout, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          MaxIdleConnsPerHost * 2,
		MaxIdleConnsPerHost:   MaxIdleConnsPerHost,
		IdleConnTimeout:       IdleConnTimeout,
		TLSHandshakeTimeout:   TLSHandshakeTimeout,
		ExpectContinueTimeout: time.Second,
	}}
}

// noRedirect makes a client return a redirect as the answer instead of
// following it.
func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// NoRedirects returns a shallow copy of client that returns every redirect
// (3xx) as the answer instead of following it; client itself is not
// changed. Following one would turn a 301, 302 or 303 to a POST into a GET
// without a body whose 200 looks like success, and send a 307 or 308 again,
// credentials included, to wherever Location points. The copy shares
// client's transport, cookie jar and timeout.
func NoRedirects(client *http.Client) *http.Client {
	c := *client
	c.CheckRedirect = noRedirect
	return &c
}

// maxRetryAfterSecs caps a Retry-After in seconds (one day); callers cap
// their waits far lower anyway.
const maxRetryAfterSecs = 24 * 60 * 60

// ParseRetryAfter reads a Retry-After header value, either delay-seconds or an
// HTTP date, relative to now. It reports false when the value is absent or
// unreadable.
func ParseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.Atoi(v); err == nil {
		if secs < 0 {
			return 0, false
		}
		// Clamp before converting: a huge value would overflow Duration.
		return time.Duration(min(secs, maxRetryAfterSecs)) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

// maxDrain bounds how much of an unread answer is read so that its connection
// can go back to the pool; a larger rest is dropped with the connection.
const maxDrain = 64 << 10

// ReadBody reads at most limit bytes of resp's body, then drains a bounded
// rest and closes it so the connection can be reused.
func ReadBody(resp *http.Response, limit int64) ([]byte, error) {
	if resp.ContentLength == 0 || limit <= 0 {
		// Nothing to keep (a publish answers 200 with no body): skip the
		// read buffer, but still drain so the connection is reused.
		_, _ = io.CopyN(io.Discard, resp.Body, maxDrain)
		return nil, resp.Body.Close()
	}
	defer func() {
		_, _ = io.CopyN(io.Discard, resp.Body, maxDrain)
		_ = resp.Body.Close()
	}()
	return io.ReadAll(io.LimitReader(resp.Body, limit))
}

// Snippet turns at most n bytes of an answer into one printable line for an
// error message: control characters become spaces, runs of space collapse.
func Snippet(b []byte, n int) string {
	if len(b) > n {
		b = b[:n]
	}
	var sb strings.Builder
	space := false
	for _, r := range strings.ToValidUTF8(string(b), "?") {
		if unicode.IsControl(r) || unicode.IsSpace(r) {
			if !space && sb.Len() > 0 {
				sb.WriteByte(' ')
			}
			space = true
			continue
		}
		space = false
		sb.WriteRune(r)
	}
	return strings.TrimSpace(sb.String())
}

// Answer is what a server replied to [Post].
type Answer struct {
	// Status is the HTTP status code.
	Status int
	// Body is the start of the answer, at most the limit given to Post.
	// For a redirect (3xx), which is never followed, it is not the answer's
	// body but a line saying so and naming the host Location points to
	// (see [RedirectDetail]), so that error messages show it.
	Body []byte
	// RetryAfter is the parsed Retry-After header, zero if absent.
	RetryAfter time.Duration
}

// IsRedirect reports whether status is a redirect (3xx).
func IsRedirect(status int) bool { return status >= 300 && status < 400 }

// RedirectDetail describes a redirect that was not followed, naming only the
// host of its Location (resolved against the request's URL), never its path,
// query or user info, which may hold tokens.
func RedirectDetail(resp *http.Response) string {
	loc := resp.Header.Get("Location")
	if loc == "" {
		return "redirect without a Location, not followed"
	}
	u, err := url.Parse(loc)
	if err == nil && resp.Request != nil && resp.Request.URL != nil {
		u = resp.Request.URL.ResolveReference(u)
	}
	if err != nil || u.Host == "" {
		return "redirect to an unreadable Location, not followed"
	}
	return "redirect to host " + strconv.Quote(u.Host) + " not followed"
}

// ReadAnswer reads resp into an Answer, keeping at most limit bytes of its
// body (see [ReadBody]); a redirect's body is drained and replaced by
// [RedirectDetail].
func ReadAnswer(resp *http.Response, limit int64) (Answer, error) {
	ans := Answer{Status: resp.StatusCode}
	ans.RetryAfter, _ = ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	if IsRedirect(resp.StatusCode) {
		_, err := ReadBody(resp, 0)
		ans.Body = []byte(RedirectDetail(resp))
		return ans, err
	}
	var err error
	ans.Body, err = ReadBody(resp, limit)
	return ans, err
}

// AttemptTimeoutError reports a request that ran out of its own timeout
// while the caller's context was still live. It is deliberately not a
// context error: the caller may still retry.
type AttemptTimeoutError struct{ Timeout time.Duration }

func (e *AttemptTimeoutError) Error() string {
	return "no answer within the attempt timeout of " + e.Timeout.String()
}

// ErrSent marks a failure after the whole request was written: the server
// may have acted on it, so sending it again may deliver it twice.
var ErrSent = errors.New("the request was sent but no answer came")

// Post sends body to url with the given headers, bounded by timeout (none if
// zero) and ctx, and returns the answer with at most limit bytes of its body.
// A non-zero Answer.Status means the server answered, even when err reports
// that reading the rest of the answer failed; a zero Status means no answer
// came, and err says why (an [*AttemptTimeoutError] when timeout ran out
// before ctx did), joined with [ErrSent] when the whole request had been
// written. A redirect is returned as the answer, never followed, whatever
// client's CheckRedirect says.
func Post(ctx context.Context, client *http.Client, url string, header http.Header, body []byte, limit int64, timeout time.Duration) (Answer, error) {
	return post(ctx, NoRedirects(client), url, header, body, limit, timeout)
}

// post is Post with a client that does not follow redirects.
func post(ctx context.Context, client *http.Client, url string, header http.Header, body []byte, limit int64, timeout time.Duration) (Answer, error) {
	parent := ctx
	if deadline, ok := ctx.Deadline(); timeout > 0 && (!ok || time.Until(deadline) > timeout) {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	// The trace tells a request that never fully left from one the server
	// may have acted on. A body of a type of our own would be cheaper to
	// watch, but the transport then flushes the headers in a packet of
	// their own (it only trusts *bytes.Reader and friends to be in memory),
	// which costs far more.
	var sent atomic.Bool
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		WroteRequest: func(info httptrace.WroteRequestInfo) { sent.Store(info.Err == nil) },
	})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return Answer{}, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	ans, err := do(client, req, limit)
	if err == nil || ans.Status != 0 {
		return ans, err
	}
	if parent.Err() == nil && ctx.Err() != nil {
		err = &AttemptTimeoutError{Timeout: timeout}
	}
	if sent.Load() {
		err = errors.Join(ErrSent, err)
	}
	return ans, err
}

func do(client *http.Client, req *http.Request, limit int64) (Answer, error) {
	resp, err := client.Do(req)
	if err != nil {
		return Answer{}, err
	}
	return ReadAnswer(resp, limit)
}

// Sender is the HTTP side every provider has: a client, which is its own
// (and closed by Close) unless the user gave one, and a timeout for each
// attempt.
type Sender struct {
	// Client sends the requests. It never follows a redirect: it is a
	// [NoRedirects] copy of the user's client, or a [NewClient].
	Client  *http.Client
	own     bool
	timeout time.Duration
}

// NewSender returns a Sender over client, or over a [NewClient] of its own
// when client is nil, bounding each attempt by timeout, or by
// defaultTimeout when timeout is not positive. A user's client is not
// changed: the Sender sends with a [NoRedirects] copy of it.
func NewSender(client *http.Client, timeout, defaultTimeout time.Duration) Sender {
	s := Sender{timeout: timeout}
	if client == nil {
		s.Client, s.own = NewClient(), true
	} else {
		s.Client = NoRedirects(client)
	}
	if s.timeout <= 0 {
		s.timeout = defaultTimeout
	}
	return s
}

// Post is [Post] with the Sender's client and attempt timeout.
func (s Sender) Post(ctx context.Context, url string, header http.Header, body []byte, limit int64) (Answer, error) {
	return post(ctx, s.Client, url, header, body, limit, s.timeout)
}

// Close releases the idle connections of a client of the Sender's own; a
// user's client is left alone. It is safe to call more than once.
func (s Sender) Close() {
	if s.own {
		s.Client.CloseIdleConnections()
	}
}
