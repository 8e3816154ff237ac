package inngest_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/coursebuilder/realtime-go/internal/transport"
	"github.com/coursebuilder/realtime-go/realtime"
	"github.com/coursebuilder/realtime-go/realtime/inngest"
)

// hardEnv sets the environment of the providers in this file for the rest
// of t: a channel secret (channels are keyed when a signing key is set),
// and extra.
func hardEnv(t *testing.T, extra map[string]string) {
	t.Helper()
	t.Setenv("REALTIME_CHANNEL_SECRET", strings.Repeat("s", 32))
	for k, v := range extra {
		t.Setenv(k, v)
	}
}

// hardInngest is a provider with the test signing key for base.
func hardInngest(t *testing.T, base string, opts inngest.Options) *inngest.Provider {
	t.Helper()
	if opts.SigningKey == "" {
		opts.SigningKey = testKey
	}
	hardEnv(t, nil)
	return newInngest(t, base, opts)
}

// recorder is a server that must never be reached: it counts what reaches
// it and remembers any Authorization header.
type recorder struct {
	*httptest.Server
	requests atomic.Int32
	mu       sync.Mutex
	auth     []string
}

func newRecorder(t *testing.T) *recorder {
	t.Helper()
	r := &recorder{}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.requests.Add(1)
		r.mu.Lock()
		if a := req.Header.Get("Authorization"); a != "" {
			r.auth = append(r.auth, a)
		}
		r.mu.Unlock()
		_, _ = io.Copy(io.Discard, req.Body)
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(r.Close)
	return r
}

// redirector answers every request with status and a Location on target
// that carries a query a message must never show.
func redirector(t *testing.T, status int, target string) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		w.Header().Set("Location", target+r.URL.Path+"?"+r.URL.RawQuery+"&leak=query-secret")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, "moved")
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

var redirectStatuses = []int{
	http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther,
	http.StatusTemporaryRedirect, http.StatusPermanentRedirect,
}

// ops are the three requests a provider makes, each returning its error.
var ops = map[string]func(ctx context.Context, p *inngest.Provider) error{
	"Publish": func(ctx context.Context, p *inngest.Provider) error {
		return p.Publish(ctx, realtime.Message{Room: "r", Name: "video.asset.ready", Body: "x"})
	},
	"SubscriptionToken": func(ctx context.Context, p *inngest.Provider) error {
		_, err := p.SubscriptionToken(ctx, "r", []string{"video.asset.ready"})
		return err
	},
	"PublishStream": func(ctx context.Context, p *inngest.Provider) error {
		return p.PublishStream(ctx, "r", "ai.message", strings.NewReader("hello"))
	},
}

// No request follows a redirect, with the provider's own client or with a
// user's: a 3xx is a rejection naming the status and the host it pointed
// to, and nothing, the hashed key least of all, reaches that host.
func TestRedirectsAreRejectedAndNeverFollowed(t *testing.T) {
	noLeaks(t)
	for _, status := range redirectStatuses {
		for _, client := range []string{"own client", "user client"} {
			for name, op := range ops {
				t.Run(strconv.Itoa(status)+"/"+client+"/"+name, func(t *testing.T) {
					target := newRecorder(t)
					srv, hits := redirector(t, status, target.URL)
					var opts inngest.Options
					var user *http.Client
					if client == "user client" {
						user = &http.Client{Timeout: 10 * time.Second}
						opts.HTTPClient = user
					}
					p := hardInngest(t, srv.URL, opts)
					ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					defer cancel()
					err := op(ctx, p)
					require.Error(t, err)
					assert.ErrorIs(t, err, realtime.ErrRejected)
					assert.NotErrorIs(t, err, realtime.ErrUnavailable)
					var pe *realtime.PublishError
					require.ErrorAs(t, err, &pe)
					assert.Equal(t, status, pe.StatusCode)
					host := strings.TrimPrefix(target.URL, "http://")
					assert.Contains(t, err.Error(), strconv.Itoa(status))
					assert.Contains(t, err.Error(), host)
					assert.NotContains(t, err.Error(), "query-secret")
					assert.EqualValues(t, 1, hits.Load(), "a rejection is not retried")
					assert.Zero(t, target.requests.Load(), "the redirect was followed")
					assert.Empty(t, target.auth)
					if user != nil {
						assert.Nil(t, user.CheckRedirect, "the user's client was changed")
					}
				})
			}
		}
	}
}

// An https server's redirect to plain http is not followed either: the
// hashed key would cross in clear text.
func TestRedirectFromHTTPSToHTTPIsNotFollowed(t *testing.T) {
	noLeaks(t)
	for _, status := range redirectStatuses {
		t.Run(strconv.Itoa(status), func(t *testing.T) {
			target := newRecorder(t)
			srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, target.URL+r.URL.RequestURI(), status)
			}))
			defer srv.Close()
			p := hardInngest(t, srv.URL, inngest.Options{HTTPClient: srv.Client()})
			for name, op := range ops {
				err := op(context.Background(), p)
				assert.ErrorIs(t, err, realtime.ErrRejected, name)
			}
			assert.Zero(t, target.requests.Load(), "the redirect was followed")
			assert.Empty(t, target.auth)
		})
	}
}

// echoKey answers every request with status and a body that holds the
// request's bearer token at offset off.
func echoKey(t *testing.T, status, off int) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		key := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, strings.Repeat(".", off)+key+strings.Repeat(".", 300))
	}))
	t.Cleanup(srv.Close)
	return srv
}

// assertNoKeyPiece fails if s holds any 16 consecutive characters of the
// hashed or the raw test key.
func assertNoKeyPiece(t *testing.T, s string) {
	t.Helper()
	hashed, err := transport.HashSigningKey(testKey)
	require.NoError(t, err)
	for _, k := range []string{hashed, testKey} {
		for i := 0; i+16 <= len(k); i++ {
			if strings.Contains(s, k[i:i+16]) {
				t.Fatalf("error leaks %q of a key: %s", k[i:i+16], s)
			}
		}
	}
}

// An answer that echoes the hashed key is redacted as a whole before its
// excerpt is cut, so no piece of a key that straddles the cut survives, on
// every request path.
func TestErrorDetailRedactsKeysStraddlingTheCut(t *testing.T) {
	noLeaks(t)
	hashed, _ := transport.HashSigningKey(testKey)
	for name, op := range ops {
		t.Run(name, func(t *testing.T) {
			for off := 200 - len(hashed) - 2; off <= 202; off++ {
				srv := echoKey(t, http.StatusBadRequest, off)
				p := hardInngest(t, srv.URL, inngest.Options{})
				err := op(context.Background(), p)
				require.ErrorIs(t, err, realtime.ErrRejected)
				assertNoKeyPiece(t, err.Error())
				var pe *realtime.PublishError
				require.ErrorAs(t, err, &pe)
				if off < 190 {
					assert.Contains(t, pe.Detail, "[redacted]", "offset %d", off)
				}
			}
		})
	}
}

// Only 500–599 are unavailable and retried; a status past 599 is a
// rejection, sent once.
func TestStatusesPast599AreRejectedAndNotRetried(t *testing.T) {
	noLeaks(t)
	for _, status := range []int{600, 999} {
		for name, op := range ops {
			t.Run(strconv.Itoa(status)+"/"+name, func(t *testing.T) {
				var n atomic.Int32
				srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					n.Add(1)
					_, _ = io.Copy(io.Discard, r.Body)
					w.WriteHeader(status)
				}))
				defer srv.Close()
				p := hardInngest(t, srv.URL, inngest.Options{})
				err := op(context.Background(), p)
				assert.ErrorIs(t, err, realtime.ErrRejected)
				assert.NotErrorIs(t, err, realtime.ErrUnavailable)
				assert.True(t, realtime.IsPermanent(err))
				assert.EqualValues(t, 1, n.Load())
			})
		}
	}
	assert.ErrorIs(t, transport.StatusError("x", 599, "", 0), realtime.ErrUnavailable)
	assert.ErrorIs(t, transport.StatusError("x", 600, "", 0), realtime.ErrRejected)
	assert.ErrorIs(t, transport.StatusError("x", 99, "", 0), realtime.ErrRejected)
}

// dropFirst is a server that reads the first request in full and closes
// the connection without an answer, then answers the others with ok.
func dropFirst(t *testing.T, ok func(w http.ResponseWriter)) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if n.Add(1) == 1 {
			c, _, err := http.NewResponseController(w).Hijack()
			if err != nil {
				t.Errorf("hijack: %v", err)
				return
			}
			_ = c.Close()
			return
		}
		ok(w)
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

// Minting a token twice does no harm, so a token request whose answer was
// lost is retried; a publish whose answer was lost is not.
func TestTokenRequestWithALostAnswerIsRetried(t *testing.T) {
	noLeaks(t)
	jwt := fakeJWT(map[string]any{"exp": time.Now().Add(time.Minute).Unix()})
	srv, n := dropFirst(t, func(w http.ResponseWriter) {
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(map[string]string{"jwt": jwt})
	})
	p := hardInngest(t, srv.URL, inngest.Options{})
	tok, err := p.SubscriptionToken(context.Background(), "r", []string{"video.asset.ready"})
	require.NoError(t, err)
	assert.Equal(t, jwt, tok.JWT)
	assert.EqualValues(t, 2, n.Load())

	pub, pn := dropFirst(t, func(w http.ResponseWriter) { w.WriteHeader(http.StatusOK) })
	p = hardInngest(t, pub.URL, inngest.Options{})
	err = p.Publish(context.Background(), realtime.Message{Room: "r", Name: "video.asset.ready", Body: "x"})
	assert.ErrorIs(t, err, realtime.ErrMaybeDelivered)
	assert.EqualValues(t, 1, pn.Load())
}

// A PublishError's message is one line, even when its cause joins several
// errors (errors.Join separates them with newlines).
func TestPublishErrorIsOneLine(t *testing.T) {
	noLeaks(t)
	e := &realtime.PublishError{Transport: "inngest", Err: errors.Join(realtime.ErrUnavailable, realtime.ErrMaybeDelivered, errors.New("read: connection reset"))}
	assert.NotContains(t, e.Error(), "\n")
	assert.Contains(t, e.Error(), "realtime: unavailable; realtime: maybe delivered; read: connection reset")
	assert.ErrorIs(t, e, realtime.ErrMaybeDelivered)

	// And as a transport makes one: a reset after the request was sent.
	srv, _ := dropFirst(t, func(w http.ResponseWriter) {})
	p := hardInngest(t, srv.URL, inngest.Options{})
	err := p.Publish(context.Background(), realtime.Message{Room: "r", Name: "n", Body: "x"})
	require.ErrorIs(t, err, realtime.ErrMaybeDelivered)
	assert.NotContains(t, err.Error(), "\n")
}

// INNGEST_DEV is a URL with a scheme and a host, or a boolean; anything
// else is refused instead of quietly meaning Inngest Cloud.
func TestInngestDevMustBeAURLOrABoolean(t *testing.T) {
	for _, dev := range []string{"yes", "localhost:8288", "on", "dev"} {
		t.Run("refuses "+dev, func(t *testing.T) {
			hardEnv(t, map[string]string{"INNGEST_DEV": dev})
			_, err := inngest.New(&inngest.Options{SigningKey: testKey})
			require.ErrorIs(t, err, realtime.ErrNotConfigured)
			assert.Contains(t, err.Error(), "INNGEST_DEV")
			assert.Contains(t, err.Error(), strconv.Quote(dev))
		})
	}
	for dev, want := range map[string]string{
		"1":                     "http://localhost:8288",
		"true":                  "http://localhost:8288",
		"0":                     "https://api.inngest.com",
		"false":                 "https://api.inngest.com",
		"http://127.0.0.1:9999": "http://127.0.0.1:9999",
	} {
		t.Run("accepts "+dev, func(t *testing.T) {
			hardEnv(t, map[string]string{"INNGEST_DEV": dev})
			p, err := inngest.New(&inngest.Options{SigningKey: testKey})
			require.NoError(t, err)
			defer p.Close()
			assert.Equal(t, want, p.BaseURL())
		})
	}
	t.Run("not consulted when a base URL is set", func(t *testing.T) {
		hardEnv(t, map[string]string{"INNGEST_DEV": "yes", "INNGEST_BASE_URL": "http://127.0.0.1:9"})
		p, err := inngest.New(&inngest.Options{SigningKey: testKey})
		require.NoError(t, err)
		defer p.Close()
		assert.Equal(t, "http://127.0.0.1:9", p.BaseURL())
	})
	t.Run("the process environment", func(t *testing.T) {
		for _, k := range []string{"INNGEST_BASE_URL", "INNGEST_API_BASE_URL", "INNGEST_SIGNING_KEY", "INNGEST_SIGNING_KEY_FALLBACK"} {
			t.Setenv(k, "")
		}
		t.Setenv("INNGEST_DEV", "yes")
		_, err := inngest.New(nil)
		require.ErrorIs(t, err, realtime.ErrNotConfigured)
		assert.Contains(t, err.Error(), `INNGEST_DEV="yes"`)
	})
}

// INNGEST_BASE_URL must be an http(s) URL; the error names the variable.
func TestInngestBaseURLFromTheEnvironmentIsValidated(t *testing.T) {
	for _, v := range []string{"localhost:8288", "ftp://example.com", "http://"} {
		hardEnv(t, map[string]string{"INNGEST_BASE_URL": v})
		_, err := inngest.New(&inngest.Options{SigningKey: testKey})
		require.ErrorIs(t, err, realtime.ErrNotConfigured, v)
		assert.Contains(t, err.Error(), "INNGEST_BASE_URL", v)
	}
}

// A deep body is refused before anything is sent.
func TestPublishRefusesADeepBodyBeforeSending(t *testing.T) {
	target := newRecorder(t)
	p := hardInngest(t, target.URL, inngest.Options{})
	var deep any = "x"
	for range realtime.MaxBodyDepth + 1 {
		deep = []any{deep}
	}
	err := p.Publish(context.Background(), realtime.Message{Room: "r", Name: "n", Body: deep})
	require.ErrorIs(t, err, realtime.ErrEncode)
	assert.Zero(t, target.requests.Load())
}
