package realtime_test

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

	"github.com/coursebuilder/realtime-go/realtime"
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
func hardInngest(t *testing.T, base string, opts realtime.InngestOptions) *realtime.Inngest {
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
var ops = map[string]func(ctx context.Context, p *realtime.Inngest) error{
	"Publish": func(ctx context.Context, p *realtime.Inngest) error {
		return p.Publish(ctx, realtime.Message{Room: "r", Name: "video.asset.ready", Body: "x"})
	},
	"SubscriptionToken": func(ctx context.Context, p *realtime.Inngest) error {
		_, err := p.SubscriptionToken(ctx, "r", []string{"video.asset.ready"})
		return err
	},
	"PublishStream": func(ctx context.Context, p *realtime.Inngest) error {
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
					var opts realtime.InngestOptions
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
			p := hardInngest(t, srv.URL, realtime.InngestOptions{HTTPClient: srv.Client()})
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
	hashed, err := realtime.HashSigningKey(testKey)
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
	hashed, _ := realtime.HashSigningKey(testKey)
	for name, op := range ops {
		t.Run(name, func(t *testing.T) {
			for off := 200 - len(hashed) - 2; off <= 202; off++ {
				srv := echoKey(t, http.StatusBadRequest, off)
				p := hardInngest(t, srv.URL, realtime.InngestOptions{})
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
				p := hardInngest(t, srv.URL, realtime.InngestOptions{})
				err := op(context.Background(), p)
				assert.ErrorIs(t, err, realtime.ErrRejected)
				assert.NotErrorIs(t, err, realtime.ErrUnavailable)
				assert.True(t, realtime.IsPermanent(err))
				assert.EqualValues(t, 1, n.Load())
			})
		}
	}
	assert.ErrorIs(t, realtime.NewStatusError("x", 599, "", 0), realtime.ErrUnavailable)
	assert.ErrorIs(t, realtime.NewStatusError("x", 600, "", 0), realtime.ErrRejected)
	assert.ErrorIs(t, realtime.NewStatusError("x", 99, "", 0), realtime.ErrRejected)
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
	p := hardInngest(t, srv.URL, realtime.InngestOptions{})
	tok, err := p.SubscriptionToken(context.Background(), "r", []string{"video.asset.ready"})
	require.NoError(t, err)
	assert.Equal(t, jwt, tok.JWT)
	assert.EqualValues(t, 2, n.Load())

	pub, pn := dropFirst(t, func(w http.ResponseWriter) { w.WriteHeader(http.StatusOK) })
	p = hardInngest(t, pub.URL, realtime.InngestOptions{})
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
	p := hardInngest(t, srv.URL, realtime.InngestOptions{})
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
			_, err := realtime.NewInngest(&realtime.InngestOptions{SigningKey: testKey})
			require.ErrorIs(t, err, realtime.ErrNotConfigured)
			assert.Contains(t, err.Error(), "INNGEST_DEV")
			assert.Contains(t, err.Error(), strconv.Quote(dev))
		})
	}
	for dev, want := range map[string]string{
		"1":                     realtime.InngestDevServerURL,
		"true":                  realtime.InngestDevServerURL,
		"0":                     realtime.InngestCloudURL,
		"false":                 realtime.InngestCloudURL,
		"http://127.0.0.1:9999": "http://127.0.0.1:9999",
	} {
		t.Run("accepts "+dev, func(t *testing.T) {
			hardEnv(t, map[string]string{"INNGEST_DEV": dev})
			p, err := realtime.NewInngest(&realtime.InngestOptions{SigningKey: testKey})
			require.NoError(t, err)
			defer p.Close()
			assert.Equal(t, want, p.BaseURL())
		})
	}
	t.Run("not consulted when a base URL is set", func(t *testing.T) {
		hardEnv(t, map[string]string{"INNGEST_DEV": "yes", "INNGEST_BASE_URL": "http://127.0.0.1:9"})
		p, err := realtime.NewInngest(&realtime.InngestOptions{SigningKey: testKey})
		require.NoError(t, err)
		defer p.Close()
		assert.Equal(t, "http://127.0.0.1:9", p.BaseURL())
	})
	t.Run("the process environment", func(t *testing.T) {
		for _, k := range []string{"INNGEST_BASE_URL", "INNGEST_API_BASE_URL", "INNGEST_SIGNING_KEY", "INNGEST_SIGNING_KEY_FALLBACK"} {
			t.Setenv(k, "")
		}
		t.Setenv("INNGEST_DEV", "yes")
		_, err := realtime.NewInngest(nil)
		require.ErrorIs(t, err, realtime.ErrNotConfigured)
		assert.Contains(t, err.Error(), `INNGEST_DEV="yes"`)
	})
}

// INNGEST_BASE_URL must be an http(s) URL; the error names the variable.
func TestInngestBaseURLFromTheEnvironmentIsValidated(t *testing.T) {
	for _, v := range []string{"localhost:8288", "ftp://example.com", "http://"} {
		hardEnv(t, map[string]string{"INNGEST_BASE_URL": v})
		_, err := realtime.NewInngest(&realtime.InngestOptions{SigningKey: testKey})
		require.ErrorIs(t, err, realtime.ErrNotConfigured, v)
		assert.Contains(t, err.Error(), "INNGEST_BASE_URL", v)
	}
}

// nested returns a body of the given form nested depth levels deep around
// leaf, a JSON string.
func nested(form int, depth int, leaf string) any {
	switch form % 4 {
	case 0: // Go slices
		var v any = leaf
		for range depth {
			v = []any{v}
		}
		return v
	case 1: // Go maps
		var v any = leaf
		for range depth {
			v = map[string]any{"[{": v}
		}
		return v
	case 2: // raw JSON
		s, _ := json.Marshal(leaf)
		return json.RawMessage(strings.Repeat(`{"a":[`, depth/2) + strings.Repeat("[", depth%2) + string(s) + strings.Repeat("]", depth%2) + strings.Repeat(`]}`, depth/2))
	default: // a MarshalJSON of its own
		return deepJSON(depth)
	}
}

// deepJSON marshals as n nested arrays.
type deepJSON int

func (d deepJSON) MarshalJSON() ([]byte, error) {
	return []byte(strings.Repeat("[", int(d)) + strings.Repeat("]", int(d))), nil
}

// A body as deep as the server's JSON parser (and its Redis broadcaster)
// reads is sent; a deeper one, whatever its form, is refused before it is
// sent, instead of reaching subscribers as one JSON string or not at all.
func TestEncodeRefusesBodiesDeeperThanTheServerParses(t *testing.T) {
	for form, name := range []string{"slices", "maps", "raw JSON", "MarshalJSON"} {
		t.Run(name, func(t *testing.T) {
			msg := realtime.Message{Room: "r", Name: "n", Body: nested(form, realtime.MaxBodyDepth, `"[{\`)}
			b, err := msg.Encode()
			require.NoError(t, err)
			assert.True(t, json.Valid(b), "the envelope at the limit is not valid for encoding/json")
			assert.True(t, json.Valid([]byte(`{"data":`+string(b)+`}`)), "the server's Redis message at the limit is not valid")

			msg.Body = nested(form, realtime.MaxBodyDepth+1, "x")
			_, err = msg.Encode()
			require.ErrorIs(t, err, realtime.ErrEncode)
			assert.Contains(t, err.Error(), "depth limit")
			assert.Contains(t, err.Error(), strconv.Itoa(realtime.MaxBodyDepth))
			assert.True(t, realtime.IsPermanent(err))

			// Deeper than encoding/json itself reads.
			msg.Body = nested(form, 10001, "x")
			_, err = msg.Encode()
			require.ErrorIs(t, err, realtime.ErrEncode)
			assert.Contains(t, err.Error(), "depth limit")
		})
	}
}

// A deep body is refused before anything is sent.
func TestPublishRefusesADeepBodyBeforeSending(t *testing.T) {
	target := newRecorder(t)
	p := hardInngest(t, target.URL, realtime.InngestOptions{})
	err := p.Publish(context.Background(), realtime.Message{Room: "r", Name: "n", Body: nested(0, realtime.MaxBodyDepth+1, "x")})
	require.ErrorIs(t, err, realtime.ErrEncode)
	assert.Zero(t, target.requests.Load())
}

// FuzzEncodeDepth checks, around the depth limit and with brackets and
// quotes in strings, that whatever Encode accepts encoding/json parses,
// also wrapped in the server's message object, and that it refuses only
// bodies deeper than MaxBodyDepth.
func FuzzEncodeDepth(f *testing.F) {
	f.Add(uint8(0), uint8(8), "x")
	f.Add(uint8(1), uint8(9), `"]}\`)
	f.Add(uint8(2), uint8(7), `[[[{`)
	f.Add(uint8(3), uint8(15), "")
	f.Add(uint8(2), uint8(0), `\"[`)
	f.Fuzz(func(t *testing.T, form, d uint8, leaf string) {
		depth := realtime.MaxBodyDepth - 8 + int(d%16)
		b, err := realtime.Message{Room: "r", Name: "n", Body: nested(int(form), depth, leaf)}.Encode()
		if err != nil {
			if !errors.Is(err, realtime.ErrEncode) || depth <= realtime.MaxBodyDepth {
				t.Fatalf("depth %d refused: %v", depth, err)
			}
			return
		}
		if depth > realtime.MaxBodyDepth {
			t.Fatalf("depth %d accepted", depth)
		}
		if !json.Valid(b) || !json.Valid([]byte(`{"data":`+string(b)+`}`)) {
			t.Fatalf("Encode accepted what encoding/json refuses, at depth %d", depth)
		}
	})
}
