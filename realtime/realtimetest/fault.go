package realtimetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/coursebuilder/realtime-go/internal/httpx"
	"github.com/coursebuilder/realtime-go/internal/transport"
	"github.com/coursebuilder/realtime-go/realtime"
)

// faultKind is what a faulty server does with every request.
type faultKind int

const (
	// faultStatus answers with Fault.status and, when Fault.retryAfter is
	// set, a Retry-After header. The answer's body echoes the request's
	// Authorization and X-Inngest-Env headers, as a careless proxy might,
	// so that the suite sees whether a transport keeps them out of its
	// errors.
	faultStatus faultKind = iota + 1
	// faultRedirect answers with the redirect Fault.status (307 when zero)
	// to the same request at another origin, which counts what reaches it.
	faultRedirect
	// faultNoAnswer reads the whole request and never answers, so the
	// provider's attempt timeout (Fault.AttemptTimeout) runs out.
	faultNoAnswer
	// faultLostAnswer reads the whole request and resets the connection.
	faultLostAnswer
	// faultRefused is a server that is not there: every connection is
	// refused and no request is received.
	faultRefused
)

// String names the kind.
func (k faultKind) String() string {
	switch k {
	case faultStatus:
		return "status"
	case faultRedirect:
		return "redirect"
	case faultNoAnswer:
		return "no answer"
	case faultLostAnswer:
		return "lost answer"
	case faultRefused:
		return "refused"
	}
	return "faultKind(" + strconv.Itoa(int(k)) + ")"
}

// Fault is a failure the conformance suite asks a [Target] to put its
// provider in front of (see Target.Faulty): a status, a redirect, an answer
// that never comes or is lost, a refused connection (see [Run], "Faults").
// The target configures the provider with Retry and AttemptTimeout and
// points it at a server that plays the fault: a [FaultServer], or an
// emulation with [EmulateFault]. Only the suite makes Faults.
type Fault struct {
	kind   faultKind
	status int // of a faultStatus or faultRedirect answer
	// retryAfter, in whole seconds, is sent as Retry-After with a
	// faultStatus answer; zero sends none.
	retryAfter time.Duration

	// Retry is the policy the provider must use.
	Retry realtime.RetryPolicy
	// AttemptTimeout is the attempt timeout the provider must use: short
	// for faultNoAnswer, generous otherwise.
	AttemptTimeout time.Duration
}

// String describes the fault.
func (f Fault) String() string {
	switch f.kind {
	case faultStatus, faultRedirect:
		s := f.kind.String() + " " + strconv.Itoa(f.status)
		if f.retryAfter > 0 {
			s += fmt.Sprintf(" (Retry-After %s)", f.retryAfter)
		}
		return s
	}
	return f.kind.String()
}

// FaultyTarget is what Target.Faulty returns: a provider in front of a
// faulty server and what that server saw.
type FaultyTarget struct {
	// Provider publishes to the faulty server.
	Provider realtime.Provider
	// Requests returns how many requests the faulty server received.
	Requests func() int
	// Redirected returns how many requests reached the other origin a
	// faultRedirect points to. Nil means nothing can reach one (an
	// emulation).
	Redirected func() int
}

// maxFaultBody bounds what a FaultServer keeps of a request body; the rest
// is read and dropped.
const maxFaultBody = 1 << 20

// maxHang bounds how long a faultNoAnswer request is held when the client
// never gives up.
const maxHang = 30 * time.Second

// FaultServer is an HTTP server on a loopback port that plays one [Fault]
// on every request and counts the requests it received. Point an HTTP
// transport's base URL at URL. It is closed when the test ends.
type FaultServer struct {
	// URL is the server's base URL, such as "http://127.0.0.1:1234".
	URL string

	fault        Fault
	upstream     string
	elsewhereURL string
	client       *http.Client
	done         chan struct{}
	requests     atomic.Int64
	redirected   atomic.Int64
}

var _ http.Handler = (*FaultServer)(nil)

// NewFaultServer starts a FaultServer playing f, closed when t ends.
func NewFaultServer(t testing.TB, f Fault) *FaultServer {
	t.Helper()
	return NewFaultProxy(t, f, "")
}

// NewFaultProxy is [NewFaultServer] in front of a real server at upstream
// (a base URL): a faultNoAnswer or faultLostAnswer request is first
// forwarded to upstream, which may act on it, and its answer is then lost.
// Every other fault is played without reaching upstream. An empty upstream
// is NewFaultServer.
func NewFaultProxy(t testing.TB, f Fault, upstream string) *FaultServer {
	t.Helper()
	s := &FaultServer{fault: f, upstream: upstream, done: make(chan struct{})}
	if upstream != "" {
		tr := &http.Transport{DisableKeepAlives: true}
		s.client = &http.Client{
			Transport:     tr,
			Timeout:       10 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
		t.Cleanup(tr.CloseIdleConnections)
	}
	if f.kind == faultRefused {
		s.URL = refusedURL(t)
		return s
	}
	srv := httptest.NewServer(s)
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.redirected.Add(1)
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = io.WriteString(w, "the redirect was followed")
	}))
	s.URL = srv.URL
	s.elsewhereURL = elsewhere.URL
	t.Cleanup(func() {
		close(s.done)
		srv.Close()
		elsewhere.Close()
	})
	return s
}

// refusedURL returns the URL of a loopback port nothing listens on.
func refusedURL(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("realtimetest: %v", err)
	}
	u := "http://" + ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatalf("realtimetest: %v", err)
	}
	return u
}

// Requests returns how many requests the server received.
func (s *FaultServer) Requests() int { return int(s.requests.Load()) }

// Redirected returns how many requests reached the origin a faultRedirect
// points to: a transport that never follows a redirect leaves it at zero.
func (s *FaultServer) Redirected() int { return int(s.redirected.Load()) }

// Target returns p with the server's counters, for Target.Faulty.
func (s *FaultServer) Target(p realtime.Provider) FaultyTarget {
	return FaultyTarget{Provider: p, Requests: s.Requests, Redirected: s.Redirected}
}

// ServeHTTP plays the fault on one request and counts it. It is the
// server's handler; it can also be put in front of another handler, such as
// a real server's, to inject the fault there. Used so, a faultRefused
// closes the connection without reading the request.
func (s *FaultServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.requests.Add(1)
	if s.fault.kind == faultRefused {
		drop(w, false)
		return
	}
	body, _ := io.ReadAll(io.LimitReader(r.Body, maxFaultBody))
	_, _ = io.Copy(io.Discard, r.Body)
	switch f := s.fault; f.kind {
	case faultStatus:
		if f.retryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(int(f.retryAfter/time.Second)))
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(f.status)
		_, _ = fmt.Fprintf(w, "fault: status %d; you sent Authorization %q, X-Inngest-Env %q",
			f.status, r.Header.Get("Authorization"), r.Header.Get("X-Inngest-Env"))
	case faultRedirect:
		status := f.status
		if status == 0 {
			status = http.StatusTemporaryRedirect
		}
		http.Redirect(w, r, s.elsewhereURL+r.URL.RequestURI(), status)
	case faultNoAnswer:
		s.forward(r, body)
		t := time.NewTimer(maxHang)
		defer t.Stop()
		select {
		case <-r.Context().Done():
		case <-s.done:
		case <-t.C:
		}
	case faultLostAnswer:
		s.forward(r, body)
		drop(w, true)
	default:
		http.Error(w, "realtimetest: unknown fault "+f.String(), http.StatusInternalServerError)
	}
}

// forward sends the request to the upstream, if any, and drops its answer.
func (s *FaultServer) forward(r *http.Request, body []byte) {
	if s.upstream == "" {
		return
	}
	req, err := http.NewRequestWithContext(context.WithoutCancel(r.Context()), r.Method, s.upstream+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		return
	}
	req.Header = r.Header.Clone()
	resp, err := s.client.Do(req)
	if err != nil {
		return
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxFaultBody))
	_ = resp.Body.Close()
}

// drop closes the connection under w, with a TCP reset when reset is set.
func drop(w http.ResponseWriter, reset bool) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic("realtimetest: the ResponseWriter cannot be hijacked to drop the connection")
	}
	c, _, err := hj.Hijack()
	if err != nil {
		return
	}
	if tc, ok := c.(*net.TCPConn); ok && reset {
		_ = tc.SetLinger(0) // RST, not FIN
	}
	_ = c.Close()
}

// EmulateFault returns an [Outcome] for a [Faulty] that fails as an HTTP
// transport named name fails in front of a server playing f, and a
// counter of the requests that server would have received. Each call
// validates and encodes the message, then runs f.Retry over emulated
// attempts classified as the transports of this module
// classify failed requests, so the error, its [*realtime.PublishError]
// fields and the request count are those of a real transport. A 401 or 403
// costs one request (no fallback key).
func EmulateFault(name string, f Fault) (out Outcome, requests func() int) {
	var n atomic.Int64
	attempt := func(context.Context) error {
		switch f.kind {
		case faultStatus:
			n.Add(1)
			detail := "emulated fault"
			if f.status == http.StatusUnauthorized || f.status == http.StatusForbidden {
				detail = ""
			}
			return transport.StatusError(name, f.status, detail, f.retryAfter)
		case faultRedirect:
			n.Add(1)
			status := f.status
			if status == 0 {
				status = http.StatusTemporaryRedirect
			}
			return transport.StatusError(name, status, `redirect to host "elsewhere.invalid" not followed`, 0)
		case faultNoAnswer:
			n.Add(1)
			return transport.NetworkError(name, errors.Join(httpx.ErrSent, &httpx.AttemptTimeoutError{Timeout: f.AttemptTimeout}))
		case faultLostAnswer:
			n.Add(1)
			return transport.NetworkError(name, errors.Join(httpx.ErrSent, syscall.ECONNRESET))
		case faultRefused:
			return transport.NetworkError(name, syscall.ECONNREFUSED)
		}
		return fmt.Errorf("realtimetest: unknown fault %s", f)
	}
	out = func(ctx context.Context, msg realtime.Message) error {
		if _, err := msg.Encode(); err != nil {
			return err
		}
		return transport.Do(ctx, transport.Retry(&f.Retry), false, attempt)
	}
	return out, func() int { return int(n.Load()) }
}
