package inngest_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
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
	"go.uber.org/zap/zaptest/observer"

	"github.com/coursebuilder/realtime-go/internal/field"
	"github.com/coursebuilder/realtime-go/internal/transport"
	"github.com/coursebuilder/realtime-go/realtime"
	"github.com/coursebuilder/realtime-go/realtime/inngest"
)

// fakeJWT builds a compact JWS with the given claims and a dummy signature:
// the client never verifies it.
func fakeJWT(claims map[string]any) string {
	enc := func(v any) string {
		b, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	return enc(map[string]string{"alg": "HS256", "typ": "JWT"}) + "." + enc(claims) + "." +
		base64.RawURLEncoding.EncodeToString([]byte("not-a-real-signature"))
}

// tokenRequest is what the fake token route received.
type tokenRequest struct {
	Header http.Header
	Topics []map[string]string
}

// tokenServer is a stand-in for POST /v1/realtime/token: answer decides the
// status and body of the nth request (1-based).
type tokenServer struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []tokenRequest
}

func newTokenServer(t *testing.T, answer func(n int) (int, string)) *tokenServer {
	t.Helper()
	s := &tokenServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v1/realtime/token" {
			http.NotFound(w, r)
			return
		}
		var topics []map[string]string
		body, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(body, &topics)
		s.mu.Lock()
		s.reqs = append(s.reqs, tokenRequest{Header: r.Header.Clone(), Topics: topics})
		n := len(s.reqs)
		s.mu.Unlock()
		status, out := answer(n)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, out)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *tokenServer) requests() []tokenRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]tokenRequest(nil), s.reqs...)
}

// minted answers like Inngest: 201 {"jwt": …} expiring at exp.
func minted(exp time.Time) func(int) (int, string) {
	jwt := fakeJWT(map[string]any{"iss": "rt.inngest.com", "exp": exp.Unix(), "topics": []any{}})
	return func(int) (int, string) { return http.StatusCreated, `{"jwt":"` + jwt + `"}` + "\n" }
}

func TestSubscriptionTokenSendsWhatInngestExpects(t *testing.T) {
	exp := time.Now().Add(time.Minute).Truncate(time.Second)
	srv := newTokenServer(t, minted(exp))
	p := newInngest(t, srv.URL, inngest.Options{
		SigningKey: testKey,
		Env:        "branch-1",
		Mapping: inngest.Mapping{
			Channel: func(room string) string { return "app:" + room },
			Topic:   func(name string) string { return "t." + name },
		},
	})

	tok, err := p.SubscriptionToken(context.Background(), "vid_1", []string{"video.asset.ready", "video.asset.errored", "video.asset.ready"})
	require.NoError(t, err)
	assert.Equal(t, "app:vid_1", tok.Channel)
	assert.Equal(t, []string{"t.video.asset.ready", "t.video.asset.errored"}, tok.Topics, "mapped, in order, without duplicates")
	assert.True(t, tok.Expires.Equal(exp), "Expires %v, want the exp claim %v", tok.Expires, exp)
	assert.Equal(t, 3, strings.Count(tok.JWT, ".")+1)

	reqs := srv.requests()
	require.Len(t, reqs, 1)
	hashed, err := transport.HashSigningKey(testKey)
	require.NoError(t, err)
	h := reqs[0].Header
	assert.Equal(t, "Bearer "+hashed, h.Get("Authorization"), "the key is sent hashed")
	assert.Equal(t, "application/json", h.Get("Content-Type"))
	assert.Equal(t, "branch-1", h.Get("X-Inngest-Env"))
	assert.Equal(t, []map[string]string{
		{"kind": "run", "channel": "app:vid_1", "name": "t.video.asset.ready"},
		{"kind": "run", "channel": "app:vid_1", "name": "t.video.asset.errored"},
	}, reqs[0].Topics)
}

func TestSubscriptionTokenAcceptsOK(t *testing.T) {
	exp := time.Now().Add(time.Minute).Truncate(time.Second)
	jwt := fakeJWT(map[string]any{"exp": exp.Unix()})
	srv := newTokenServer(t, func(int) (int, string) { return http.StatusOK, `{"jwt":"` + jwt + `"}` })
	p := newInngest(t, srv.URL, inngest.Options{SigningKey: testKey})
	tok, err := p.SubscriptionToken(context.Background(), "vid_1", []string{"ai.message"})
	require.NoError(t, err)
	assert.Equal(t, jwt, tok.JWT)
	assert.Equal(t, "vid_1", tok.Channel)
	assert.Equal(t, []string{"ai.message"}, tok.Topics)
}

func TestSubscriptionTokenFallsBackToTheSecondKey(t *testing.T) {
	exp := time.Now().Add(time.Minute)
	ok := minted(exp)
	srv := newTokenServer(t, func(n int) (int, string) {
		if n == 1 {
			return http.StatusUnauthorized, `{"error":"Authentication failed"}`
		}
		return ok(n)
	})
	p := newInngest(t, srv.URL, inngest.Options{SigningKey: testKey, SigningKeyFallback: testFallback})
	_, err := p.SubscriptionToken(context.Background(), "vid_1", []string{"video.asset.ready"})
	require.NoError(t, err)

	hp, _ := transport.HashSigningKey(testKey)
	hf, _ := transport.HashSigningKey(testFallback)
	reqs := srv.requests()
	require.Len(t, reqs, 2)
	assert.Equal(t, "Bearer "+hp, reqs[0].Header.Get("Authorization"))
	assert.Equal(t, "Bearer "+hf, reqs[1].Header.Get("Authorization"))
}

func TestSubscriptionTokenFailuresAreClassifiedAndSecretFree(t *testing.T) {
	hashed, _ := transport.HashSigningKey(testKey)
	cases := map[string]struct {
		status   int
		body     string
		want     error
		attempts int
	}{
		"refused key":  {http.StatusUnauthorized, `{"error":"Authentication failed"}`, realtime.ErrUnauthorized, 1},
		"bad request":  {http.StatusBadRequest, `{"error":"Invalid request ` + hashed + `"}`, realtime.ErrRejected, 1},
		"server error": {http.StatusInternalServerError, `oops`, realtime.ErrUnavailable, 3},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			srv := newTokenServer(t, func(int) (int, string) { return c.status, c.body })
			p := newInngest(t, srv.URL, inngest.Options{SigningKey: testKey})
			_, err := p.SubscriptionToken(context.Background(), "vid_1", []string{"video.asset.ready"})
			require.ErrorIs(t, err, c.want)
			var pe *realtime.PublishError
			require.ErrorAs(t, err, &pe)
			assert.Equal(t, c.status, pe.StatusCode)
			assert.Len(t, srv.requests(), c.attempts)
			assert.NotContains(t, err.Error(), hashed)
			assert.NotContains(t, err.Error(), testKey[len("signkey-test-"):])
			assert.True(t, strings.HasPrefix(err.Error(), "realtime: token request to inngest failed"), err.Error())
		})
	}
}

func TestSubscriptionTokenRefusesAnswersThatAreNotTokens(t *testing.T) {
	noExp := fakeJWT(map[string]any{"iss": "rt.inngest.com"})
	badExp := fakeJWT(map[string]any{"exp": "tomorrow"})
	hugeExp := fakeJWT(map[string]any{"exp": 1e300})
	good := fakeJWT(map[string]any{"exp": time.Now().Add(time.Minute).Unix()})
	for name, body := range map[string]string{
		"empty":              ``,
		"not json":           `<html>captive portal</html>`,
		"no jwt":             `{"token":"x"}`,
		"jwt not a string":   `{"jwt":42}`,
		"two segments":       `{"jwt":"abc.def"}`,
		"no exp":             `{"jwt":"` + noExp + `"}`,
		"exp not a number":   `{"jwt":"` + badExp + `"}`,
		"exp out of range":   `{"jwt":"` + hugeExp + `"}`,
		"payload not base64": `{"jwt":"abc.!!!.def"}`,
		"header injection":   `{"jwt":"` + good + `\r\nX-Evil: 1"}`,
		"payload not json":   `{"jwt":"YWJj.YWJj.YWJj"}`,
	} {
		t.Run(name, func(t *testing.T) {
			srv := newTokenServer(t, func(int) (int, string) { return http.StatusCreated, body })
			core, logs := observer.New(zap.DebugLevel)
			p := newInngest(t, srv.URL, inngest.Options{SigningKey: testKey, Logger: zap.New(core)})
			tok, err := p.SubscriptionToken(context.Background(), "vid_1", []string{"video.asset.ready"})
			require.ErrorIs(t, err, inngest.ErrInvalidToken)
			assert.Zero(t, tok)
			assert.Len(t, srv.requests(), 1, "a 2xx is not retried")
			for _, secret := range []string{noExp, badExp, hugeExp, good, "captive"} {
				assert.NotContains(t, err.Error(), secret)
				for _, e := range logs.All() {
					assert.NotContains(t, fmt.Sprint(e.Message, e.ContextMap()), secret)
				}
			}
		})
	}
}

func TestSubscriptionTokenValidatesBeforeSending(t *testing.T) {
	srv := newTokenServer(t, minted(time.Now().Add(time.Minute)))
	p := newInngest(t, srv.URL, inngest.Options{SigningKey: testKey})
	tooMany := make([]string, 65) // one more than a token covers
	for i := range tooMany {
		tooMany[i] = fmt.Sprintf("n%d", i)
	}
	cases := map[string]struct {
		room   string
		names  []string
		field  string
		reason error
	}{
		"empty room":     {"", []string{"a"}, "room", realtime.ErrEmpty},
		"long room":      {strings.Repeat("r", field.RoomBytes+1), []string{"a"}, "room", realtime.ErrTooLong},
		"control room":   {"a\nb", []string{"a"}, "room", realtime.ErrControlCharacter},
		"no names":       {"vid_1", nil, "names", realtime.ErrEmpty},
		"too many names": {"vid_1", tooMany, "names", realtime.ErrTooLong},
		"empty name":     {"vid_1", []string{"a", ""}, "name", realtime.ErrEmpty},
		"invalid name":   {"vid_1", []string{"\xff"}, "name", realtime.ErrInvalidUTF8},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := p.SubscriptionToken(context.Background(), c.room, c.names)
			var ve *realtime.ValidationError
			require.ErrorAs(t, err, &ve)
			assert.Equal(t, c.field, ve.Field)
			assert.ErrorIs(t, err, c.reason)
			assert.ErrorIs(t, err, realtime.ErrInvalidMessage)
		})
	}
	// A mapping that makes the channel invalid is caught too.
	pm := newInngest(t, srv.URL, inngest.Options{SigningKey: testKey, Mapping: inngest.Mapping{
		Channel: func(room string) string { return strings.Repeat(room, 100) },
	}})
	_, err := pm.SubscriptionToken(context.Background(), "abcdef", []string{"a"})
	var ve *realtime.ValidationError
	require.ErrorAs(t, err, &ve)
	assert.Equal(t, "channel", ve.Field)

	assert.Empty(t, srv.requests(), "nothing invalid was sent")

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = p.SubscriptionToken(ctx, "vid_1", []string{"a"})
	assert.ErrorIs(t, err, context.Canceled)

	tok, err := p.SubscriptionToken(context.Background(), "vid_1", tooMany[:64])
	require.NoError(t, err, "64 names, the most one token covers")
	assert.Len(t, tok.Topics, 64)
}

// TestProviderTokenFunc: the function mints a new token for the room and
// names it was made with at every call, with the errors of
// SubscriptionToken; changing the caller's slice afterwards changes
// nothing.
func TestProviderTokenFunc(t *testing.T) {
	var fail atomic.Bool
	ok := minted(time.Now().Add(time.Minute))
	srv := newTokenServer(t, func(n int) (int, string) {
		if fail.Load() {
			return http.StatusUnauthorized, `{"error":"bad key"}`
		}
		return ok(n)
	})
	p := newInngest(t, srv.URL, inngest.Options{SigningKey: testKey})
	names := []string{"video.asset.ready", "video.asset.errored"}
	token := p.TokenFunc("vid_1", names...)
	names[0] = "changed"

	for range 2 {
		tok, err := token(context.Background())
		require.NoError(t, err)
		assert.Equal(t, "vid_1", tok.Channel)
		assert.Equal(t, []string{"video.asset.ready", "video.asset.errored"}, tok.Topics)
	}
	reqs := srv.requests()
	require.Len(t, reqs, 2, "one token minted per call")
	assert.Equal(t, "video.asset.ready", reqs[1].Topics[0]["name"])

	fail.Store(true)
	_, err := token(context.Background())
	assert.ErrorIs(t, err, realtime.ErrUnauthorized)

	_, err = p.TokenFunc("vid_1")(context.Background())
	assert.ErrorIs(t, err, realtime.ErrInvalidMessage, "no names")
}

func TestTokenNeverPrintsItsJWT(t *testing.T) {
	tok := inngest.Token{
		JWT:     fakeJWT(map[string]any{"exp": 1}),
		Channel: "vid_1",
		Topics:  []string{"video.asset.ready"},
		Expires: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
	}
	assert.Equal(t, `inngest.Token{channel: "vid_1", topics: ["video.asset.ready"], expires: 2026-01-02T03:04:05Z}`, tok.String())

	core, logs := observer.New(zap.DebugLevel)
	zap.New(core).Info("token", zap.Any("token", tok), zap.Object("obj", tok))
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("token", "token", tok)

	printed := []string{
		fmt.Sprint(tok), fmt.Sprintf("%v %+v %#v %s", tok, tok, tok, tok),
		fmt.Sprint(&tok), fmt.Sprint(logs.All()[0].ContextMap()), buf.String(),
	}
	for _, s := range printed {
		assert.NotContains(t, s, tok.JWT)
		assert.Contains(t, s, "vid_1")
	}
}

// FuzzSubscriptionTokenAnswer feeds arbitrary answers to SubscriptionToken:
// it never panics, and whatever it accepts is a usable token.
func FuzzSubscriptionTokenAnswer(f *testing.F) {
	f.Add(`{"jwt":"` + fakeJWT(map[string]any{"exp": 1767225600}) + `"}`)
	f.Add(`{"jwt":"` + fakeJWT(map[string]any{"exp": 1.5}) + `"}`)
	f.Add(`{"jwt":"a.b.c"}`)
	f.Add(`{"jwt":"` + fakeJWT(map[string]any{"exp": -1}) + `"}`)
	f.Add(`null`)
	var body string
	p, err := inngest.New(&inngest.Options{
		BaseURL:       "http://inngest.invalid",
		SigningKey:    testKey,
		ChannelSecret: testChannelSecret,
		HTTPClient: &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
			return &http.Response{StatusCode: http.StatusCreated, Body: io.NopCloser(strings.NewReader(body)), Header: http.Header{}, Request: r}, nil
		})},
	})
	require.NoError(f, err)
	f.Fuzz(func(t *testing.T, answer string) {
		body = answer
		tok, err := p.SubscriptionToken(context.Background(), "vid_1", []string{"video.asset.ready"})
		if err != nil {
			if !errors.Is(err, inngest.ErrInvalidToken) {
				t.Fatalf("error %v does not match ErrInvalidToken", err)
			}
			return
		}
		if tok.JWT == "" || tok.Expires.IsZero() || strings.ContainsAny(tok.JWT, " \r\n\t\"") {
			t.Fatalf("accepted an unusable token %q, %v", tok.JWT, tok.Expires)
		}
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func ExampleProvider_SubscriptionToken() {
	// A stand-in for Inngest's token route: it answers with a JWT that
	// expires at 2026-01-01T00:01:00Z.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		fmt.Println(r.Method, r.URL.Path, string(body))
		payload := base64.RawURLEncoding.EncodeToString([]byte(`{"iss":"rt.inngest.com","exp":1767225660}`))
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, `{"jwt":"eyJhbGciOiJIUzI1NiJ9.%s.c2ln"}`, payload)
	}))
	defer srv.Close()

	p, err := inngest.New(&inngest.Options{
		BaseURL:       srv.URL,
		SigningKey:    "signkey-test-0123456789abcdef",
		ChannelSecret: "the app's own secret, 32 bytes or more",
		Mapping:       inngest.Mapping{Channel: func(room string) string { return "video:" + room }},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer p.Close()
	tok, err := p.SubscriptionToken(context.Background(), "vid_1", []string{"video.asset.ready", "video.asset.errored"})
	fmt.Println(tok, err)
	// Output:
	// POST /v1/realtime/token [{"kind":"run","channel":"rtk1_pbRXQpjViB6I2XMdZlgH3kctXLNodnNqKupL_-uj9O8","name":"video.asset.ready"},{"kind":"run","channel":"rtk1_pbRXQpjViB6I2XMdZlgH3kctXLNodnNqKupL_-uj9O8","name":"video.asset.errored"}]
	// inngest.Token{channel: "rtk1_pbRXQpjViB6I2XMdZlgH3kctXLNodnNqKupL_-uj9O8", topics: ["video.asset.ready" "video.asset.errored"], expires: 2026-01-01T00:01:00Z} <nil>
}
