package legacyparty_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/coursebuilder/realtime-go/legacyparty"
	"github.com/coursebuilder/realtime-go/realtime"
)

// seen is one request as the server received it.
type seen struct {
	Method, RequestURI, Path, RawPath string
	Header                            http.Header
	Body                              []byte
	At                                time.Time
}

// recorder is a test server that records every request and answers with
// the next scripted handler (the last one repeats).
type recorder struct {
	srv *httptest.Server

	mu     sync.Mutex
	reqs   []seen
	script []http.HandlerFunc
}

func newRecorder(t *testing.T, script ...http.HandlerFunc) *recorder {
	t.Helper()
	rec := &recorder{script: script}
	rec.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rec.mu.Lock()
		n := len(rec.reqs)
		rec.reqs = append(rec.reqs, seen{
			Method: r.Method, RequestURI: r.RequestURI, Path: r.URL.Path, RawPath: r.URL.EscapedPath(),
			Header: r.Header.Clone(), Body: body, At: time.Now(),
		})
		h := reply(http.StatusOK, "ok")
		if len(rec.script) > 0 {
			h = rec.script[min(n, len(rec.script)-1)]
		}
		rec.mu.Unlock()
		h(w, r)
	}))
	t.Cleanup(rec.srv.Close)
	return rec
}

func (rec *recorder) requests() []seen {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([]seen(nil), rec.reqs...)
}

func reply(status int, text string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(status)
		_, _ = io.WriteString(w, text)
	}
}

func retryAfter(secs string, status int) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Retry-After", secs)
		w.WriteHeader(status)
		_, _ = io.WriteString(w, "slow down")
	}
}

// fast retries quickly, so that tests do not wait on backoff.
var fast = &realtime.RetryPolicy{Attempts: 3, BaseDelay: time.Millisecond, MaxDelay: 5 * time.Millisecond}

func msg(room string) realtime.Message {
	return realtime.Message{Room: room, Name: "video.asset.ready", RequestID: "req-1", Body: map[string]string{"id": room}}
}

func publish(t *testing.T, p *legacyparty.Provider, m realtime.Message) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return p.Publish(ctx, m)
}

func TestPublishSpellsRoomAsPartysocket(t *testing.T) {
	rec := newRecorder(t)
	p := newProvider(t, &legacyparty.Options{BaseURL: rec.srv.URL})
	var want []string
	for _, tc := range partysocketRooms {
		if tc.segment == "" || notPostable[tc.room] {
			continue
		}
		require.NoError(t, publish(t, p, msg(tc.room)), "room %q", tc.room)
		want = append(want, "/party/"+tc.segment)
	}
	var got []string
	for _, r := range rec.requests() {
		got = append(got, r.RequestURI)
	}
	assert.Equal(t, want, got)
}

func TestPublishKeepsBasePathPrefix(t *testing.T) {
	rec := newRecorder(t)
	p := newProvider(t, &legacyparty.Options{BaseURL: rec.srv.URL + "/pre%20fix/"})
	require.NoError(t, publish(t, p, msg("a b")))
	assert.Equal(t, "/pre%20fix/party/a%20b", rec.requests()[0].RequestURI)
}

func TestPublishRefusesDotSegments(t *testing.T) {
	rec := newRecorder(t)
	p := newProvider(t, &legacyparty.Options{BaseURL: rec.srv.URL})
	for _, room := range []string{".", ".."} {
		err := publish(t, p, msg(room))
		require.ErrorIs(t, err, realtime.ErrInvalidMessage, "room %q", room)
		require.ErrorIs(t, err, legacyparty.ErrRoomNotRoutable)
		var ve *realtime.ValidationError
		require.ErrorAs(t, err, &ve)
		assert.Equal(t, "room", ve.Field)
		assert.Equal(t, `realtime: invalid message: room: not routable to the partysocket room of the same id (a dot segment, or holds / \ ? # | ^ or a stray %)`, err.Error())
		_, err = p.PublishURL(room)
		assert.ErrorIs(t, err, legacyparty.ErrRoomNotRoutable)
	}
	assert.Empty(t, rec.requests())
}

func TestPublishSendsEnvelope(t *testing.T) {
	rec := newRecorder(t)
	p := newProvider(t, &legacyparty.Options{BaseURL: rec.srv.URL})
	m := realtime.Message{
		Room: "vid_123", Name: "video.asset.ready", RequestID: "vid_123",
		Body: map[string]any{"title": `<b>"Tom & Jerry"</b>`, "duration": 12.5}, ID: "video-ready-vid_123",
	}
	require.NoError(t, publish(t, p, m))
	want, err := m.Encode()
	require.NoError(t, err)
	r := rec.requests()[0]
	assert.Equal(t, http.MethodPost, r.Method)
	assert.Equal(t, string(want), string(r.Body))
	assert.Equal(t, "application/json", r.Header.Get("Content-Type"))
	assert.True(t, strings.HasPrefix(r.Header.Get("User-Agent"), "realtime-go/"), r.Header.Get("User-Agent"))
	assert.Empty(t, r.Header.Get("Authorization"))

	// A message without an id goes out with the one its envelope got.
	m.ID = ""
	require.NoError(t, publish(t, p, m))
	sent, err := realtime.DecodeEnvelope(rec.requests()[1].Body)
	require.NoError(t, err)
	require.NotEmpty(t, sent.ID)
	m.ID = sent.ID
	want, err = m.Encode()
	require.NoError(t, err)
	assert.Equal(t, string(want), string(rec.requests()[1].Body))
}

// The party's reply text is not needed: a 2xx, with or without a body,
// is success.
// envBaseURL is the variable the course apps set to their PartyKit host.
const envBaseURL = "NEXT_PUBLIC_PARTY_KIT_URL"

// encode is the envelope of m, without Inngest's size limit.
func encode(m realtime.Message) ([]byte, error) {
	env, err := realtime.NewEnvelope(context.Background(), m)
	if err != nil {
		return nil, err
	}
	return env.Bytes(), nil
}

func TestPublishAcceptsAnyTwoHundred(t *testing.T) {
	for _, r := range []http.HandlerFunc{reply(http.StatusOK, "broadcast to 3 connections\n"), reply(http.StatusNoContent, ""), reply(http.StatusOK, strings.Repeat("r", 1<<20))} {
		rec := newRecorder(t, r)
		p := newProvider(t, &legacyparty.Options{BaseURL: rec.srv.URL})
		require.NoError(t, publish(t, p, msg("vid_123")))
		assert.Len(t, rec.requests(), 1)
	}
}

func TestPublishRetriesUnavailable(t *testing.T) {
	for _, status := range []int{http.StatusServiceUnavailable, http.StatusBadGateway, http.StatusRequestTimeout} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			rec := newRecorder(t, reply(status, "try later"), reply(http.StatusOK, "second time lucky"))
			p := newProvider(t, &legacyparty.Options{BaseURL: rec.srv.URL, Retry: fast})
			require.NoError(t, p.Publish(context.Background(), msg("vid_123")))
			reqs := rec.requests()
			require.Len(t, reqs, 2)
			assert.Equal(t, reqs[0].Body, reqs[1].Body, "a retry sends the same bytes")
		})
	}
}

func TestPublishGivesUpAfterAttempts(t *testing.T) {
	rec := newRecorder(t, reply(http.StatusServiceUnavailable, "down\nfor maintenance"))
	p := newProvider(t, &legacyparty.Options{BaseURL: rec.srv.URL, Retry: fast})
	err := publish(t, p, msg("vid_123"))
	require.ErrorIs(t, err, realtime.ErrUnavailable)
	var pe *realtime.PublishError
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, "partykit", pe.Transport)
	assert.Equal(t, http.StatusServiceUnavailable, pe.StatusCode)
	assert.Equal(t, 3, pe.Attempts)
	assert.Equal(t, "down for maintenance", pe.Detail)
	assert.True(t, pe.Retryable())
	assert.Len(t, rec.requests(), 3)
}

func TestPublishDoesNotRetryRejections(t *testing.T) {
	for _, c := range []struct {
		status int
		want   error
	}{
		{http.StatusBadRequest, realtime.ErrRejected},
		{http.StatusNotFound, realtime.ErrRejected},
		{http.StatusMethodNotAllowed, realtime.ErrRejected},
		{http.StatusUnauthorized, realtime.ErrUnauthorized},
		{http.StatusForbidden, realtime.ErrUnauthorized},
	} {
		t.Run(fmt.Sprint(c.status), func(t *testing.T) {
			rec := newRecorder(t, reply(c.status, "Invalid payload, please send JSON body"))
			p := newProvider(t, &legacyparty.Options{BaseURL: rec.srv.URL, Retry: fast})
			err := publish(t, p, msg("vid_123"))
			require.ErrorIs(t, err, c.want)
			var pe *realtime.PublishError
			require.ErrorAs(t, err, &pe)
			assert.Equal(t, c.status, pe.StatusCode)
			assert.Equal(t, 1, pe.Attempts)
			assert.False(t, pe.Retryable())
			assert.Contains(t, err.Error(), "Invalid payload")
			assert.Len(t, rec.requests(), 1)
		})
	}
}

func TestPublishHonoursRetryAfter(t *testing.T) {
	rec := newRecorder(t, retryAfter("1", http.StatusTooManyRequests), reply(http.StatusOK, "ok"))
	// Backoff alone would wait at most 1ms; only Retry-After explains a
	// second's wait.
	p := newProvider(t, &legacyparty.Options{BaseURL: rec.srv.URL,
		Retry: &realtime.RetryPolicy{Attempts: 2, BaseDelay: time.Millisecond, MaxDelay: 5 * time.Second}})
	require.NoError(t, publish(t, p, msg("vid_123")))
	reqs := rec.requests()
	require.Len(t, reqs, 2)
	// A lower bound only: a timer never fires early.
	assert.GreaterOrEqual(t, reqs[1].At.Sub(reqs[0].At), time.Second)
}

func TestPublishRetryAfterBeyondDeadline(t *testing.T) {
	rec := newRecorder(t, retryAfter("30", http.StatusTooManyRequests), reply(http.StatusOK, "ok"))
	p := newProvider(t, &legacyparty.Options{BaseURL: rec.srv.URL,
		Retry: &realtime.RetryPolicy{Attempts: 3, BaseDelay: time.Millisecond, MaxDelay: time.Minute}})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := p.Publish(ctx, msg("vid_123"))
	require.ErrorIs(t, err, realtime.ErrUnavailable)
	require.ErrorIs(t, err, context.DeadlineExceeded, "gives up at once rather than outlive the caller")
	var pe *realtime.PublishError
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, http.StatusTooManyRequests, pe.StatusCode)
	assert.Equal(t, 30*time.Second, pe.RetryAfter)
	assert.NoError(t, ctx.Err(), "the caller's context is still live")
	assert.Len(t, rec.requests(), 1)
}

func TestPublishServerDown(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	base := srv.URL
	srv.Close()
	p := newProvider(t, &legacyparty.Options{BaseURL: base,
		Retry: &realtime.RetryPolicy{Attempts: 2, BaseDelay: time.Millisecond, MaxDelay: time.Millisecond}})
	err := publish(t, p, msg("vid_123"))
	require.ErrorIs(t, err, realtime.ErrUnavailable)
	var pe *realtime.PublishError
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, 0, pe.StatusCode)
	assert.Equal(t, 2, pe.Attempts)
	assert.NotErrorIs(t, err, context.DeadlineExceeded)
}

func TestPublishStalledServerDeadline(t *testing.T) {
	srv := stalledServer(t)
	p := newProvider(t, &legacyparty.Options{BaseURL: srv.URL})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err := p.Publish(ctx, msg("vid_123"))
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.ErrorIs(t, err, realtime.ErrUnavailable)
}

func TestPublishAttemptTimeoutAfterSendingIsNotRetried(t *testing.T) {
	srv := stalledServer(t)
	p := newProvider(t, &legacyparty.Options{BaseURL: srv.URL, AttemptTimeout: 20 * time.Millisecond, Retry: fast})
	err := publish(t, p, msg("vid_123"))
	require.ErrorIs(t, err, realtime.ErrUnavailable)
	require.ErrorIs(t, err, realtime.ErrMaybeDelivered, "the party may have broadcast it: a retry could broadcast twice")
	assert.NotErrorIs(t, err, context.DeadlineExceeded)
	assert.Contains(t, err.Error(), "attempt timeout of 20ms")
	var pe *realtime.PublishError
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, 1, pe.Attempts)
}

func TestPublishChecksBeforeSending(t *testing.T) {
	rec := newRecorder(t)
	p := newProvider(t, &legacyparty.Options{BaseURL: rec.srv.URL})

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	assert.ErrorIs(t, p.Publish(ctx, msg("vid_123")), context.Canceled)

	assert.ErrorIs(t, publish(t, p, realtime.Message{Room: "vid_123"}), realtime.ErrEmpty)
	assert.ErrorIs(t, publish(t, p, realtime.Message{Room: "a\nb", Name: "x"}), realtime.ErrControlCharacter)
	assert.ErrorIs(t, publish(t, p, realtime.Message{Room: "r", Name: "x", Body: make(chan int)}), realtime.ErrEncode)
	assert.ErrorIs(t, publish(t, p, realtime.Message{Room: "a/b", Name: "x"}), legacyparty.ErrRoomNotRoutable)
	assert.Empty(t, rec.requests())
}

func TestPublishLogsNoBody(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	rec := newRecorder(t, reply(http.StatusServiceUnavailable, "down"), reply(http.StatusOK, "ok"))
	p := newProvider(t, &legacyparty.Options{BaseURL: rec.srv.URL, Retry: fast, Logger: zap.New(core)})
	m := msg("vid_123")
	m.Body = "top-secret-body"
	require.NoError(t, publish(t, p, m))
	entries := logs.All()
	require.NotEmpty(t, entries)
	for _, e := range entries {
		assert.NotContains(t, fmt.Sprint(e.Message, e.ContextMap()), "top-secret-body")
	}
	assert.Equal(t, "vid_123", entries[0].ContextMap()["room"])
	assert.EqualValues(t, http.StatusServiceUnavailable, entries[0].ContextMap()["status"])
}

type countingTransport struct {
	n    atomic.Int32
	base http.RoundTripper
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.base.RoundTrip(r)
}

func TestPublishUsesGivenHTTPClient(t *testing.T) {
	rec := newRecorder(t)
	tr := &countingTransport{base: &http.Transport{}}
	t.Cleanup(tr.base.(*http.Transport).CloseIdleConnections)
	p := newProvider(t, &legacyparty.Options{BaseURL: rec.srv.URL, HTTPClient: &http.Client{Transport: tr}})
	require.NoError(t, publish(t, p, msg("vid_123")))
	assert.EqualValues(t, 1, tr.n.Load())
}

func TestCloseTwiceAndStillUsable(t *testing.T) {
	rec := newRecorder(t)
	p := newProvider(t, &legacyparty.Options{BaseURL: rec.srv.URL})
	require.NoError(t, publish(t, p, msg("vid_123")))
	require.NoError(t, p.Close())
	require.NoError(t, p.Close())
	require.NoError(t, publish(t, p, msg("vid_123")))
	assert.Len(t, rec.requests(), 2)
}

func TestString(t *testing.T) {
	p := newProvider(t, &legacyparty.Options{BaseURL: "my-party.user.partykit.dev"})
	want := "legacyparty.Provider{base: https://my-party.user.partykit.dev}"
	assert.Equal(t, want, p.String())
	assert.Equal(t, want, p.GoString())
	assert.Equal(t, want+"|"+want, fmt.Sprintf("%v|%#v", p, p))
}

func TestNewBaseURL(t *testing.T) {
	cases := []struct {
		name     string
		explicit string
		env      map[string]string
		want     string // "" means an ErrNotConfigured error
	}{
		{"https URL", "", map[string]string{envBaseURL: "https://my-party.user.partykit.dev"}, "https://my-party.user.partykit.dev"},
		{"http URL", "", map[string]string{envBaseURL: "http://localhost:1999"}, "http://localhost:1999"},
		{"host without scheme", "", map[string]string{envBaseURL: "my-party.user.partykit.dev"}, "https://my-party.user.partykit.dev"},
		{"host and port without scheme", "", map[string]string{envBaseURL: "party.example.com:8443"}, "https://party.example.com:8443"},
		{"localhost without scheme", "", map[string]string{envBaseURL: "localhost:1999"}, "http://localhost:1999"},
		{"LOCALHOST without scheme", "", map[string]string{envBaseURL: "LOCALHOST:1999"}, "http://LOCALHOST:1999"},
		{"localhost without port", "", map[string]string{envBaseURL: "localhost"}, "http://localhost"},
		{"127.0.0.1 without scheme", "", map[string]string{envBaseURL: "127.0.0.1:1999"}, "http://127.0.0.1:1999"},
		{"[::1] without scheme", "", map[string]string{envBaseURL: "[::1]:1999"}, "http://[::1]:1999"},
		{"localhost look-alike", "", map[string]string{envBaseURL: "localhost.example.com"}, "https://localhost.example.com"},
		{"scheme-relative", "", map[string]string{envBaseURL: "//my-party.user.partykit.dev"}, "https://my-party.user.partykit.dev"},
		{"wss scheme", "", map[string]string{envBaseURL: "wss://my-party.user.partykit.dev"}, "https://my-party.user.partykit.dev"},
		{"ws scheme", "", map[string]string{envBaseURL: "ws://localhost:1999"}, "http://localhost:1999"},
		{"upper-case scheme", "", map[string]string{envBaseURL: "HTTPS://x.partykit.dev"}, "https://x.partykit.dev"},
		{"trailing slash", "", map[string]string{envBaseURL: "https://x.partykit.dev/"}, "https://x.partykit.dev"},
		{"path prefix", "", map[string]string{envBaseURL: "x.partykit.dev/rt/"}, "https://x.partykit.dev/rt"},
		{"surrounding space", "", map[string]string{envBaseURL: "  https://x.partykit.dev \n"}, "https://x.partykit.dev"},
		{"explicit wins", "http://127.0.0.1:2000", map[string]string{envBaseURL: "https://x.partykit.dev"}, "http://127.0.0.1:2000"},
		{"explicit without scheme", "localhost:2000", nil, "http://localhost:2000"},
		{"missing", "", nil, ""},
		{"empty", "", map[string]string{envBaseURL: ""}, ""},
		{"blank", "", map[string]string{envBaseURL: "   "}, ""},
		{"other variable only", "", map[string]string{"PARTYKIT_HOST": "x.partykit.dev"}, ""},
		{"ftp scheme", "", map[string]string{envBaseURL: "ftp://x.partykit.dev"}, ""},
		{"no host", "", map[string]string{envBaseURL: "https://"}, ""},
		{"port only", "", map[string]string{envBaseURL: "https://:1999"}, ""},
		{"bad port", "", map[string]string{envBaseURL: "localhost:party"}, ""},
		{"query", "", map[string]string{envBaseURL: "https://x.partykit.dev/?a=b"}, ""},
		{"fragment", "", map[string]string{envBaseURL: "https://x.partykit.dev/#top"}, ""},
		{"user info", "", map[string]string{envBaseURL: "https://user:hunter2@x.partykit.dev"}, ""},
		{"user info without scheme", "", map[string]string{envBaseURL: "user:hunter2@x.partykit.dev"}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv(envBaseURL, "")
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			p, err := legacyparty.New(&legacyparty.Options{BaseURL: c.explicit})
			if c.want == "" {
				require.ErrorIs(t, err, realtime.ErrNotConfigured)
				assert.Nil(t, p)
				assert.NotContains(t, err.Error(), "hunter2")
				assert.True(t, strings.HasPrefix(err.Error(), "realtime: not configured: partykit base URL"), err.Error())
				return
			}
			require.NoError(t, err)
			defer p.Close()
			assert.Equal(t, c.want, p.BaseURL())
			u, err := p.PublishURL("vid_123")
			require.NoError(t, err)
			assert.Equal(t, c.want+"/party/vid_123", u)
		})
	}
}

func TestNewReadsProcessEnvironment(t *testing.T) {
	t.Setenv(envBaseURL, "localhost:1999")
	p, err := legacyparty.New(nil)
	require.NoError(t, err)
	defer p.Close()
	assert.Equal(t, "http://localhost:1999", p.BaseURL())

	t.Setenv(envBaseURL, "")
	_, err = legacyparty.New(nil)
	assert.ErrorIs(t, err, realtime.ErrNotConfigured)
	assert.Contains(t, err.Error(), envBaseURL)
}

func TestPublishURLValidatesRoom(t *testing.T) {
	p := newProvider(t, &legacyparty.Options{BaseURL: "http://localhost:1999"})
	for room, reason := range map[string]error{
		"":                       realtime.ErrEmpty,
		"a\tb":                   realtime.ErrControlCharacter,
		"a\u200bb":               realtime.ErrControlCharacter,
		"bad\xff":                realtime.ErrInvalidUTF8,
		strings.Repeat("r", 257): realtime.ErrTooLong,
	} {
		_, err := p.PublishURL(room)
		assert.ErrorIs(t, err, reason, "room %q", room)
		assert.ErrorIs(t, err, realtime.ErrInvalidMessage, "room %q", room)
	}
	u, err := p.PublishURL("a b")
	require.NoError(t, err)
	assert.Equal(t, "http://localhost:1999/party/a%20b", u)
}
