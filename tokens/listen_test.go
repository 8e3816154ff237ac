package tokens_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/coursebuilder/realtime-go/broadcast"
	"github.com/coursebuilder/realtime-go/flags"
	"github.com/coursebuilder/realtime-go/realtime"
	"github.com/coursebuilder/realtime-go/realtime/inngest"
	"github.com/coursebuilder/realtime-go/tokens"
)

// partyAt is a PartyKit provider that knows its base URL.
type partyAt struct {
	realtime.Provider
	url string
}

func (p partyAt) BaseURL() string { return p.url }

// v=2 tells the browser where to listen, following the mode that routes
// publishes: PartyKit while PartyKit counts (legacy, shadow), Inngest with
// its token once Inngest counts (primary, realtime). A flip moves the next
// answer; the answer without v=2 is unchanged for older clients.
func TestV2AnswerFollowsTheMode(t *testing.T) {
	party := partyAt{realtime.NewNoop(nil), "http://localhost:1999"} // as a *legacyparty.Provider names its base URL
	var mode atomic.Int32
	res := resolverFunc(func(context.Context, flags.Scope, string) flags.Mode { return flags.Mode(mode.Load()) })
	m := &fakeMinter{}
	b, err := broadcast.New(party, mintingProvider{realtime.NewNoop(nil), m}, &broadcast.Options{Resolver: res})
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close(context.Background()) })
	h := tokens.NewHandler(b, &tokens.HandlerOptions{
		Authenticate: allowAll().Authenticate, Authorize: allowAll().Authorize,
		BrowserBaseURL: "http://127.0.0.1:8288", Recheck: 30 * time.Second,
	})
	require.NoError(t, h.Err())
	get := func(query string) (int, tokens.Response, map[string]any) {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/t?"+query, nil))
		var resp tokens.Response
		var raw map[string]any
		if w.Code == http.StatusOK {
			require.NoError(t, json.Unmarshal(w.Body.Bytes(), &resp))
			require.NoError(t, json.Unmarshal(w.Body.Bytes(), &raw))
		}
		return w.Code, resp, raw
	}
	for _, c := range []struct {
		mode      flags.Mode
		transport string
	}{{flags.Legacy, "partykit"}, {flags.Shadow, "partykit"}, {flags.Primary, "inngest"}, {flags.Realtime, "inngest"}, {flags.Legacy, "partykit"}} {
		mode.Store(int32(c.mode))
		before := time.Now()
		code, resp, raw := get("room=vid_1&scope=video-ready&v=2")
		require.Equal(t, http.StatusOK, code, c.mode)
		assert.Equal(t, c.transport, resp.Transport, c.mode)
		assert.Equal(t, c.mode.String(), resp.Mode)
		assert.Equal(t, []string{"video.asset.ready"}, resp.Names)
		if c.transport == "partykit" {
			assert.Equal(t, &tokens.PartyKitRoom{Host: "localhost:1999", Room: "vid_1", Party: "main", Protocol: "ws"}, resp.PartyKit)
			assert.Empty(t, resp.Key, "no token for a PartyKit reader")
			assert.NotContains(t, raw, "key")
			assert.WithinDuration(t, before.Add(30*time.Second), resp.Expires, 2*time.Second)
		} else {
			assert.Nil(t, resp.PartyKit)
			assert.Equal(t, testJWT, resp.Key)
			assert.Equal(t, "app:vid_1", resp.Channel)
			assert.Equal(t, []string{"video.asset.ready"}, resp.Topics)
			assert.Equal(t, "http://127.0.0.1:8288", resp.APIBaseURL)
			// Asked again by the sooner of the token's expiry and Recheck,
			// so that a rollback reaches the page.
			want := before.Add(30 * time.Second)
			if testExpires.Before(want) {
				want = testExpires
			}
			assert.WithinDuration(t, want, resp.Expires, 2*time.Second)
		}

		// The answer of older clients is as before: 404 while PartyKit is
		// all they read, a token from shadow on.
		code, resp, _ = get("room=vid_1&scope=video-ready")
		if c.mode == flags.Legacy {
			assert.Equal(t, http.StatusNotFound, code)
		} else {
			require.Equal(t, http.StatusOK, code)
			assert.Empty(t, resp.Transport)
			assert.Equal(t, testJWT, resp.Key)
		}
	}

	code, _, _ := get("room=vid_1&scope=video-ready&v=3")
	assert.Equal(t, http.StatusBadRequest, code)
}

// Without a PartyKit URL a v=2 answer that needs one is a 500, said at
// start-up by nothing (Err is nil: v=1 clients are served) but logged.
func TestV2PartyKitAnswerNeedsAURL(t *testing.T) {
	b, err := broadcast.New(realtime.NewNoop(nil), mintingProvider{realtime.NewNoop(nil), &fakeMinter{}}, &broadcast.Options{Resolver: flags.Fixed(flags.Shadow)})
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close(context.Background()) })
	h := tokens.NewHandler(b, allowAll())
	require.NoError(t, h.Err())
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/t?room=vid_1&scope=video-ready&v=2", nil))
	assert.Equal(t, http.StatusInternalServerError, w.Code)

	for _, c := range []struct{ url, host, protocol string }{
		{"my-party.user.partykit.dev", "my-party.user.partykit.dev", "wss"},
		{"localhost:1999", "localhost:1999", "ws"},
		{"https://p.example.com", "p.example.com", "wss"},
		{"ws://10.0.0.2:1999", "10.0.0.2:1999", "ws"},
	} {
		opts := allowAll()
		opts.PartyKitURL = c.url
		h := tokens.NewHandler(b, opts)
		require.NoError(t, h.Err())
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/t?room=vid_1&scope=video-ready&v=2", nil))
		require.Equal(t, http.StatusOK, w.Code, c.url)
		var resp tokens.Response
		require.NoError(t, json.Unmarshal(w.Body.Bytes(), &resp))
		assert.Equal(t, c.host, resp.PartyKit.Host, c.url)
		assert.Equal(t, c.protocol, resp.PartyKit.Protocol, c.url)
	}
	opts := allowAll()
	opts.PartyKitURL = "https://user:hunter2@p.example.com"
	h = tokens.NewHandler(b, opts)
	require.ErrorIs(t, h.Err(), tokens.ErrMisconfigured)
	assert.NotContains(t, h.Err().Error(), "hunter2")
}

// futureMinter mints tokens that live an hour.
type futureMinter struct{ realtime.Provider }

func (futureMinter) SubscriptionToken(_ context.Context, room string, names []string) (inngest.Token, error) {
	return inngest.Token{JWT: testJWT, Channel: room, Topics: names, Expires: time.Now().Add(time.Hour)}, nil
}

// A v=2 Inngest answer is asked again within Recheck, not at the token's
// expiry, so that a rollback to PartyKit reaches open pages as fast as a
// flip to Inngest does; an answer without v=2 keeps the token's expiry.
func TestV2InngestAnswerIsRecheckedBeforeItsTokenExpires(t *testing.T) {
	b, err := broadcast.New(realtime.NewNoop(nil), futureMinter{realtime.NewNoop(nil)}, &broadcast.Options{Resolver: flags.Fixed(flags.Realtime)})
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close(context.Background()) })
	opts := allowAll()
	opts.Recheck = 5 * time.Second
	h := tokens.NewHandler(b, opts)
	for _, c := range []struct {
		query string
		in    time.Duration
	}{{"room=vid_1&scope=video-ready&v=2", 5 * time.Second}, {"room=vid_1&scope=video-ready", time.Hour}} {
		w := httptest.NewRecorder()
		before := time.Now()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/t?"+c.query, nil))
		require.Equal(t, http.StatusOK, w.Code)
		var resp tokens.Response
		require.NoError(t, json.Unmarshal(w.Body.Bytes(), &resp))
		assert.WithinDuration(t, before.Add(c.in), resp.Expires, 2*time.Second, c.query)
	}
}
