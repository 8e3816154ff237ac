package tokens_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/coursebuilder/realtime-go/broadcast"
	"github.com/coursebuilder/realtime-go/flags"
	"github.com/coursebuilder/realtime-go/internal/transport"
	"github.com/coursebuilder/realtime-go/realtime"
	"github.com/coursebuilder/realtime-go/realtime/inngest"
	"github.com/coursebuilder/realtime-go/replay"
	"github.com/coursebuilder/realtime-go/tokens"
)

// testJWT looks like a JWT; the tests check it never shows up where it
// must not.
const testJWT = "eyJhbGciOiJIUzI1NiJ9.eyJleHAiOjE3NjcyMjU2NjB9.SECRET-SIGNATURE"

var testExpires = time.Date(2026, 1, 1, 0, 1, 0, 0, time.UTC)

// fakeMinter records its calls and answers with tok or err.
type fakeMinter struct {
	mu    sync.Mutex
	calls []mintCall
	err   error
	panic bool
}

type mintCall struct {
	room  string
	names []string
}

func (m *fakeMinter) SubscriptionToken(ctx context.Context, room string, names []string) (inngest.Token, error) {
	m.mu.Lock()
	m.calls = append(m.calls, mintCall{room, slices.Clone(names)})
	err, p := m.err, m.panic
	m.mu.Unlock()
	if p {
		panic("minter exploded with " + testJWT)
	}
	if err != nil {
		return inngest.Token{}, err
	}
	return inngest.Token{JWT: testJWT, Channel: "app:" + room, Topics: slices.Clone(names), Expires: testExpires}, nil
}

func (m *fakeMinter) Calls() []mintCall {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.calls)
}

// minter is what the test routers mint with.
type minter interface {
	SubscriptionToken(ctx context.Context, room string, names []string) (inngest.Token, error)
}

// router routes as a *broadcast.Broadcast does (the scope of the name, the
// resolver's mode; legacy without a resolver), mints with m and reads
// history from log (none without a log).
type router struct {
	m   minter
	res flags.Resolver
	log replay.Log
}

func (r router) Route(ctx context.Context, room, name string) broadcast.Route {
	scope, mode := flags.ScopeOf(name), flags.Legacy
	if r.res != nil {
		mode = r.res.Mode(ctx, scope, room)
	}
	return broadcast.Route{Scope: scope, Mode: mode}
}

func (r router) SubscriptionToken(ctx context.Context, room string, names []string) (inngest.Token, error) {
	return r.m.SubscriptionToken(ctx, room, names)
}

func (r router) History(ctx context.Context, room string, after uint64, limit int) (replay.Page, error) {
	if r.log == nil {
		return replay.Page{}, nil
	}
	return r.log.After(ctx, room, after, limit)
}

// baseRouter is a router whose minter knows its Inngest API.
type baseRouter struct {
	router
	base interface{ BaseURL() string }
}

func (r baseRouter) BaseURL() string { return r.base.BaseURL() }

// newHandler is tokens.NewHandler over a router of m and res.
func newHandler(m minter, res flags.Resolver, opts *tokens.HandlerOptions) *tokens.Handler {
	r := router{m: m, res: res}
	if b, ok := m.(interface{ BaseURL() string }); ok {
		return tokens.NewHandler(baseRouter{router: r, base: b}, opts)
	}
	return tokens.NewHandler(r, opts)
}

// primary routes every scope in primary mode.
var primary = flags.Fixed(flags.Primary)

// resolverFunc adapts a function to flags.Resolver.
type resolverFunc func(ctx context.Context, scope flags.Scope, room string) flags.Mode

func (f resolverFunc) Mode(ctx context.Context, scope flags.Scope, room string) flags.Mode {
	return f(ctx, scope, room)
}

// fixture is a Handler whose users are named by the X-User header (alice
// owns vid_1 and vid_2), whose rooms starting with "legacy-" are in legacy
// mode, with its logs and metrics observed.
type fixture struct {
	h       *tokens.Handler
	minter  *fakeMinter
	logs    *observer.ObservedLogs
	reader  *sdkmetric.ManualReader
	authzMu sync.Mutex
	authz   []string // "user room scope" of each Authorize call
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{minter: &fakeMinter{}, reader: sdkmetric.NewManualReader()}
	core, logs := observer.New(zap.DebugLevel)
	f.logs = logs
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(f.reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	res := resolverFunc(func(_ context.Context, scope flags.Scope, room string) flags.Mode {
		if strings.HasPrefix(room, "legacy-") {
			return flags.Legacy
		}
		if room == "vid_2" {
			return flags.Shadow
		}
		return flags.Primary
	})
	f.h = newHandler(f.minter, res, &tokens.HandlerOptions{
		Authenticate: func(r *http.Request) (tokens.Subject, error) {
			switch u := r.Header.Get("X-User"); u {
			case "":
				return tokens.Subject{}, errors.New("no session cookie 'sess=" + testJWT + "'")
			case "panic":
				panic("authenticate exploded")
			default:
				return tokens.Subject{ID: u}, nil
			}
		},
		Authorize: func(ctx context.Context, s tokens.Subject, room string, scope flags.Scope) error {
			f.authzMu.Lock()
			f.authz = append(f.authz, s.ID+" "+room+" "+string(scope))
			f.authzMu.Unlock()
			if s.ID == "alice" && (room == "vid_1" || room == "vid_2" || strings.HasPrefix(room, "legacy-")) {
				return nil
			}
			return errors.New("not the owner of the video")
		},
		Logger: zap.New(core),
		Meter:  mp.Meter("test"),
	})
	return f
}

type answer struct {
	status int
	header http.Header
	body   string
}

func (f *fixture) do(method, target, user string) answer {
	r := httptest.NewRequest(method, target, nil)
	if user != "" {
		r.Header.Set("X-User", user)
	}
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, r)
	return answer{w.Code, w.Header(), w.Body.String()}
}

// counts returns the realtime.token.requests counter per
// "outcome/status/scope".
func (f *fixture) counts(t *testing.T) map[string]int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	require.NoError(t, f.reader.Collect(context.Background(), &rm))
	out := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != "realtime.token.requests" {
				continue
			}
			for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
				o, _ := dp.Attributes.Value("outcome")
				st, _ := dp.Attributes.Value("status")
				sc, _ := dp.Attributes.Value("scope")
				require.Equal(t, 3, dp.Attributes.Len())
				require.Equal(t, attribute.INT64, st.Type())
				out[fmt.Sprintf("%s/%d/%s", o.AsString(), st.AsInt64(), sc.AsString())] += dp.Value
			}
		}
	}
	return out
}

func TestHandlerServesATokenTheReactHooksAccept(t *testing.T) {
	f := newFixture(t)
	a := f.do(http.MethodGet, "/api/realtime/token?room=vid_1&scope=video-ready", "alice")
	require.Equal(t, http.StatusOK, a.status, a.body)
	assert.Equal(t, "no-store", a.header.Get("Cache-Control"))
	assert.Equal(t, "application/json", a.header.Get("Content-Type"))
	assert.Equal(t, "nosniff", a.header.Get("X-Content-Type-Options"))

	// Exactly the token object of inngest/realtime's hooks
	// ({channel, topics, key}) plus expires.
	var raw map[string]any
	require.NoError(t, json.Unmarshal([]byte(a.body), &raw))
	assert.Equal(t, map[string]any{
		"channel": "app:vid_1",
		"topics":  []any{"video.asset.ready"},
		"key":     testJWT,
		"expires": "2026-01-01T00:01:00Z",
	}, raw)

	var resp tokens.Response
	require.NoError(t, json.Unmarshal([]byte(a.body), &resp))
	assert.NotContains(t, fmt.Sprintf("%v %+v %#v", resp, resp, resp), testJWT)

	assert.Equal(t, []mintCall{{"vid_1", []string{"video.asset.ready"}}}, f.minter.Calls())
	assert.Equal(t, []string{"alice vid_1 video-ready"}, f.authz)
	assert.Equal(t, map[string]int64{"ok/200/video-ready": 1}, f.counts(t))
}

func TestHandlerNamesSelectTheScope(t *testing.T) {
	f := newFixture(t)
	a := f.do(http.MethodGet, "/t?room=vid_2&names=transcript.ready", "alice")
	require.Equal(t, http.StatusOK, a.status, a.body)
	assert.Equal(t, []mintCall{{"vid_2", []string{"transcript.ready"}}}, f.minter.Calls())
	assert.Equal(t, []string{"alice vid_2 transcript"}, f.authz, "Authorize sees the scope of the names")
}

func TestHandlerRefusals(t *testing.T) {
	inngestDown := transport.StatusError("inngest", http.StatusServiceUnavailable,
		"upstream says: key signkey-test-abc is overloaded", 0)
	cases := []struct {
		name, method, target, user string
		minterErr                  error
		status                     int
		count                      string
		body                       string
	}{
		{"no auth", "GET", "/t?room=vid_1&scope=video-ready", "", nil, 401, "unauthenticated/401/none", "not authenticated"},
		{"authenticate panics", "GET", "/t?room=vid_1&scope=video-ready", "panic", nil, 500, "panic/500/none", "internal error"},
		{"wrong room", "GET", "/t?room=vid_9&scope=video-ready", "alice", nil, 403, "forbidden/403/video-ready", "not authorized"},
		{"wrong user", "GET", "/t?room=vid_1&scope=video-ready", "mallory", nil, 403, "forbidden/403/video-ready", "not authorized"},
		{"flag off", "GET", "/t?room=legacy-1&scope=ai-stream", "alice", nil, 404, "legacy/404/ai-stream", "realtime is not enabled for this scope"},
		{"inngest down", "GET", "/t?room=vid_1&scope=video-ready", "alice", inngestDown, 502, "upstream_error/502/video-ready", "token service unavailable"},
		{"inngest refuses the key", "GET", "/t?room=vid_1&scope=video-ready", "alice",
			transport.StatusError("inngest", http.StatusUnauthorized, "", 0), 502, "upstream_error/502/video-ready", "token service unavailable"},
		{"invalid mapped channel", "GET", "/t?room=vid_1&scope=video-ready", "alice",
			&realtime.ValidationError{Field: "channel", Reason: realtime.ErrTooLong, Limit: 256}, 400, "bad_request/400/video-ready", "invalid query: the room cannot be subscribed to"},
		{"bad escape", "GET", "/t?room=%zz&scope=video-ready", "alice", nil, 400, "bad_request/400/none", "invalid query: the query is not a valid URL query"},
		{"no room", "GET", "/t?scope=video-ready", "alice", nil, 400, "bad_request/400/none", "invalid query: room is required"},
		{"unknown scope", "GET", "/t?room=vid_1&scope=everything", "alice", nil, 400, "bad_request/400/none", ""},
		{"name outside the scope", "GET", "/t?room=vid_1&scope=video-ready&names=ai.message", "alice", nil, 400, "bad_request/400/none", "invalid query: a name is not in scope video-ready"},
		{"control character", "GET", "/t?room=vid%0A1&scope=video-ready", "alice", nil, 400, "bad_request/400/none", "invalid query: room: control character"},
		{"very long query", "GET", "/t?room=vid_1&scope=video-ready&pad=" + strings.Repeat("x", 2048), "alice", nil, 400, "bad_request/400/none", "query longer than 2048 bytes"},
		{"very long query, no auth", "GET", "/t?room=" + strings.Repeat("x", 2048), "", nil, 400, "bad_request/400/none", "query longer than 2048 bytes"},
		{"POST", "POST", "/t?room=vid_1&scope=video-ready", "alice", nil, 405, "method_not_allowed/405/none", "method not allowed"},
		{"HEAD", "HEAD", "/t?room=vid_1&scope=video-ready", "alice", nil, 405, "method_not_allowed/405/none", ""},
		{"PUT", "PUT", "/t?room=vid_1&scope=video-ready", "alice", nil, 405, "method_not_allowed/405/none", "method not allowed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t)
			f.minter.err = c.minterErr
			a := f.do(c.method, c.target, c.user)
			require.Equal(t, c.status, a.status, a.body)
			assert.Equal(t, "no-store", a.header.Get("Cache-Control"))
			if c.status == http.StatusMethodNotAllowed {
				assert.Equal(t, "GET", a.header.Get("Allow"))
			}
			if c.method != http.MethodHead {
				var body map[string]string
				require.NoError(t, json.Unmarshal([]byte(a.body), &body), a.body)
				if c.body != "" {
					assert.Equal(t, map[string]string{"error": c.body}, body)
				}
			}
			if c.minterErr == nil {
				assert.Empty(t, f.minter.Calls(), "nothing was minted")
			}
			assert.Equal(t, map[string]int64{c.count: 1}, f.counts(t))

			// Nothing upstream, secret or echoed reaches the client or
			// the logs.
			for _, s := range []string{"signkey", "upstream", "overloaded", "503", "zz", testJWT, "sess="} {
				assert.NotContains(t, a.body, s)
			}
			for _, e := range f.logs.All() {
				line := fmt.Sprint(e.Message, e.ContextMap())
				assert.NotContains(t, line, testJWT)
				assert.NotContains(t, line, "sess=")
				assert.NotContains(t, line, "mallory", "the subject is never logged")
			}
		})
	}
}

func TestHandlerLogsUpstreamFailures(t *testing.T) {
	f := newFixture(t)
	f.minter.err = transport.StatusError("inngest", http.StatusServiceUnavailable, "", 0)
	a := f.do(http.MethodGet, "/t?room=vid_1&scope=video-ready", "alice")
	require.Equal(t, http.StatusBadGateway, a.status)
	errs := f.logs.FilterLevelExact(zap.ErrorLevel).All()
	require.Len(t, errs, 1)
	fields := errs[0].ContextMap()
	assert.Contains(t, fields["error"], "status 503", "the upstream error is logged")
	delete(fields, "error")
	assert.Equal(t, map[string]any{"outcome": "upstream_error", "status": int64(502), "scope": "video-ready", "room": "vid_1"}, fields)
}

func TestHandlerClientGoneIsCountedAsCanceled(t *testing.T) {
	f := newFixture(t)
	f.minter.err = context.Canceled
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := httptest.NewRequestWithContext(ctx, http.MethodGet, "/t?room=vid_1&scope=video-ready", nil)
	r.Header.Set("X-User", "alice")
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, r)
	assert.Equal(t, http.StatusBadGateway, w.Code)
	assert.Equal(t, map[string]int64{"canceled/502/video-ready": 1}, f.counts(t))
	assert.Empty(t, f.logs.FilterLevelExact(zap.ErrorLevel).All(), "a client that left is not an error")
}

func TestHandlerWithoutOptionsServesNothing(t *testing.T) {
	m := &fakeMinter{}
	core, logs := observer.New(zap.WarnLevel)
	h := newHandler(m, nil, &tokens.HandlerOptions{Logger: zap.New(core)})
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/t?room=vid_1&scope=video-ready", nil))
	assert.Equal(t, http.StatusUnauthorized, w.Code)
	assert.Equal(t, 3, logs.Len(), "missing Authenticate, Authorize and base URL are warned about")
	assert.Equal(t, 1, logs.FilterMessageSnippet("Inngest Cloud").Len(), "a Minter without BaseURL is warned about")

	// With authentication and authorization but no Resolver, every scope
	// is legacy, as in broadcast.
	h = newHandler(m, nil, &tokens.HandlerOptions{
		Authenticate: func(*http.Request) (tokens.Subject, error) { return tokens.Subject{ID: "a"}, nil },
		Authorize:    func(context.Context, tokens.Subject, string, flags.Scope) error { return nil },
	})
	w = httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/t?room=vid_1&scope=video-ready", nil))
	assert.Equal(t, http.StatusNotFound, w.Code)

	h = newHandler(m, nil, nil)
	w = httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/t?room=vid_1&scope=video-ready", nil))
	assert.Equal(t, http.StatusUnauthorized, w.Code)
	assert.Empty(t, m.Calls())
}

func TestHandlerBoundsMinting(t *testing.T) {
	blocked := newHandler(blockingMinter{}, flags.Fixed(flags.Realtime), &tokens.HandlerOptions{
		Authenticate: func(*http.Request) (tokens.Subject, error) { return tokens.Subject{}, nil },
		Authorize:    func(context.Context, tokens.Subject, string, flags.Scope) error { return nil },
		Timeout:      20 * time.Millisecond,
	})
	w := httptest.NewRecorder()
	blocked.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/t?room=vid_1&scope=video-ready", nil))
	assert.Equal(t, http.StatusBadGateway, w.Code)
}

// blockingMinter waits for its context to end.
type blockingMinter struct{}

func (blockingMinter) SubscriptionToken(ctx context.Context, _ string, _ []string) (inngest.Token, error) {
	<-ctx.Done()
	return inngest.Token{}, ctx.Err()
}

// baseMinter is a fakeMinter that knows its Inngest API, as
// *inngest.Provider does.
type baseMinter struct {
	fakeMinter
	base string
}

func (m *baseMinter) BaseURL() string { return m.base }

// answerFields returns the keys of a 200 body and its apiBaseUrl.
func answerFields(t *testing.T, body string) ([]string, any) {
	t.Helper()
	var raw map[string]any
	require.NoError(t, json.Unmarshal([]byte(body), &raw), body)
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys, raw["apiBaseUrl"]
}

func allowAll() *tokens.HandlerOptions {
	return &tokens.HandlerOptions{
		Authenticate: func(*http.Request) (tokens.Subject, error) { return tokens.Subject{ID: "alice"}, nil },
		Authorize:    func(context.Context, tokens.Subject, string, flags.Scope) error { return nil },
	}
}

func serve(h http.Handler) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/t?room=vid_1&scope=video-ready", nil))
	return w
}

// The official v4 SDK connects to the token's apiBaseUrl, and to Inngest
// Cloud without one: the answer carries the minter's base URL.
func TestHandlerAnswersTheMintersBaseURLAsAPIBaseURL(t *testing.T) {
	m := &baseMinter{base: "http://127.0.0.1:8288/"}
	h := newHandler(m, primary, allowAll())
	require.NoError(t, h.Err())
	assert.Equal(t, "http://127.0.0.1:8288", h.APIBaseURL())
	w := serve(h)
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	keys, base := answerFields(t, w.Body.String())
	assert.Equal(t, []string{"apiBaseUrl", "channel", "expires", "key", "topics"}, keys)
	assert.Equal(t, "http://127.0.0.1:8288", base)

	var resp tokens.Response
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &resp))
	assert.Equal(t, "http://127.0.0.1:8288", resp.APIBaseURL)
	assert.Contains(t, resp.String(), "http://127.0.0.1:8288")
	assert.NotContains(t, resp.String(), testJWT)
}

func TestHandlerUsesARealInngestsBaseURL(t *testing.T) {
	p, err := inngest.New(&inngest.Options{
		BaseURL: "http://inngest.internal:8288",
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close() })
	h := newHandler(p, primary, allowAll())
	require.NoError(t, h.Err())
	assert.Equal(t, p.BaseURL(), h.APIBaseURL())
}

func TestHandlerBrowserBaseURLOverridesTheMinters(t *testing.T) {
	m := &baseMinter{base: "http://inngest:8288"} // a container's name browsers cannot resolve
	opts := allowAll()
	opts.BrowserBaseURL = "https://realtime.example.com/"
	h := newHandler(m, primary, opts)
	require.NoError(t, h.Err())
	w := serve(h)
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	_, base := answerFields(t, w.Body.String())
	assert.Equal(t, "https://realtime.example.com", base)

	// A Minter without BaseURL takes it too.
	h = newHandler(&fakeMinter{}, primary, opts)
	w = serve(h)
	_, base = answerFields(t, w.Body.String())
	assert.Equal(t, "https://realtime.example.com", base)
}

func TestHandlerWithoutABaseURLOmitsAPIBaseURLAndWarns(t *testing.T) {
	core, logs := observer.New(zap.WarnLevel)
	opts := allowAll()
	opts.Logger = zap.New(core)
	h := newHandler(&fakeMinter{}, primary, opts)
	require.NoError(t, h.Err())
	assert.Equal(t, 1, logs.FilterMessageSnippet("Inngest Cloud").Len())
	w := serve(h)
	require.Equal(t, http.StatusOK, w.Code)
	keys, _ := answerFields(t, w.Body.String())
	assert.Equal(t, []string{"channel", "expires", "key", "topics"}, keys)
}

func TestHandlerRefusesAnInvalidBrowserBaseURL(t *testing.T) {
	for _, bad := range []string{
		"realtime.example.com",                // no scheme
		"ws://realtime.example.com",           // the SDK wants http(s)
		"ftp://realtime.example.com",          // not http(s)
		"https://",                            // no host
		"https://:8288",                       // no host name
		"https://user:hunter2@example.com",    // credentials to every browser
		"https://example.com/inngest",         // the SDK drops the path
		"https://example.com/?x=1",            // query
		"https://example.com/#frag",           // fragment
		"https://exa mple.com",                // not a URL
		"http://example.com:8288/v1/realtime", // a path again
	} {
		t.Run(bad, func(t *testing.T) {
			core, logs := observer.New(zap.DebugLevel)
			reader := sdkmetric.NewManualReader()
			mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
			t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
			m := &baseMinter{base: "http://127.0.0.1:8288"}
			opts := allowAll()
			opts.BrowserBaseURL, opts.Logger, opts.Meter = bad, zap.New(core), mp.Meter("test")
			h := newHandler(m, primary, opts)
			require.ErrorIs(t, h.Err(), tokens.ErrMisconfigured)
			assert.True(t, strings.HasPrefix(h.Err().Error(), "tokens: "), h.Err())
			assert.NotContains(t, h.Err().Error(), "hunter2")

			for range 2 {
				w := serve(h)
				require.Equal(t, http.StatusInternalServerError, w.Code)
				assert.JSONEq(t, `{"error":"token endpoint misconfigured"}`, w.Body.String())
			}
			assert.Empty(t, m.Calls(), "nothing is minted")
			errs := logs.FilterLevelExact(zap.ErrorLevel).All()
			require.Len(t, errs, 1, "logged once, by NewHandler")
			assert.Contains(t, errs[0].ContextMap()["error"], "BrowserBaseURL")
			for _, e := range logs.All() {
				assert.NotContains(t, fmt.Sprint(e.Message, e.ContextMap()), "hunter2")
			}
			f := &fixture{reader: reader}
			assert.Equal(t, map[string]int64{"misconfigured/500/none": 2}, f.counts(t))
		})
	}
}

func TestHandlerRefusesAMinterBaseURLBrowsersMustNotSee(t *testing.T) {
	for _, bad := range []string{"not a url", "https://user:hunter2@inngest:8288", "unix:///run/inngest.sock"} {
		h := newHandler(&baseMinter{base: bad}, primary, allowAll())
		require.ErrorIs(t, h.Err(), tokens.ErrMisconfigured, bad)
		assert.NotContains(t, h.Err().Error(), "hunter2")
		assert.Equal(t, http.StatusInternalServerError, serve(h).Code)
	}
}

// panickingBaseURL panics in BaseURL, which NewHandler calls.
type panickingBaseURL struct{ fakeMinter }

func (*panickingBaseURL) BaseURL() string { panic("base url exploded") }

func TestHandlerContainsAPanickingMinterBaseURL(t *testing.T) {
	h := newHandler(&panickingBaseURL{}, primary, allowAll())
	require.ErrorIs(t, h.Err(), tokens.ErrMisconfigured)
	assert.Contains(t, h.Err().Error(), "panicked")
	assert.Equal(t, http.StatusInternalServerError, serve(h).Code)
}

// Every hook the app passes, the Resolver and the Minter (and whatever it
// calls, such as inngest.Provider's Mapping) may panic: the handler answers
// 500 with a fixed body, counts the outcome "panic" and logs which one.
func TestHandlerContainsPanics(t *testing.T) {
	panickingMapping, err := inngest.New(&inngest.Options{
		BaseURL: "http://127.0.0.1:1", // never reached: the mapping panics first
		Mapping: inngest.Mapping{Channel: func(string) string {
			panic("mapping exploded with " + testJWT)
		}},
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = panickingMapping.Close() })

	ok := func(*http.Request) (tokens.Subject, error) { return tokens.Subject{ID: "alice"}, nil }
	allow := func(context.Context, tokens.Subject, string, flags.Scope) error { return nil }
	primary := resolverFunc(func(context.Context, flags.Scope, string) flags.Mode { return flags.Primary })
	var fm minter = &fakeMinter{}
	cases := []struct {
		name     string
		minter   minter
		authn    func(*http.Request) (tokens.Subject, error)
		authz    func(context.Context, tokens.Subject, string, flags.Scope) error
		resolver flags.Resolver
		count    string
		logged   string
	}{
		{name: "Authenticate", minter: fm, authz: allow, resolver: primary,
			authn: func(*http.Request) (tokens.Subject, error) { panic("session " + testJWT) },
			count: "panic/500/none", logged: "tokens: Authenticate panicked"},
		{name: "Authorize", minter: fm, authn: ok, resolver: primary,
			authz: func(context.Context, tokens.Subject, string, flags.Scope) error {
				panic(errors.New("authz " + testJWT))
			},
			count: "panic/500/video-ready", logged: "tokens: Authorize panicked: *errors.errorString"},
		{name: "Resolver", minter: fm, authn: ok, authz: allow,
			resolver: resolverFunc(func(context.Context, flags.Scope, string) flags.Mode { panic("flags " + testJWT) }),
			count:    "panic/500/video-ready", logged: "tokens: Router panicked: string"},
		{name: "Resolver runtime error", minter: fm, authn: ok, authz: allow,
			resolver: resolverFunc(func(context.Context, flags.Scope, string) flags.Mode {
				var m map[string]flags.Mode
				m["x"] = flags.Primary // assignment to entry in nil map
				return m["x"]
			}),
			count: "panic/500/video-ready", logged: "tokens: Router panicked: assignment to entry in nil map"},
		{name: "Minter", minter: &fakeMinter{panic: true}, authn: ok, authz: allow, resolver: primary,
			count: "panic/500/video-ready", logged: "tokens: Router panicked: string"},
		// inngest.Provider recovers its Mapping's panic as a
		// validation error matching inngest.ErrMappingPanicked.
		{name: "Mapping", minter: panickingMapping, authn: ok, authz: allow, resolver: primary,
			count: "panic/500/video-ready", logged: "mapping function panicked"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			core, logs := observer.New(zap.DebugLevel)
			reader := sdkmetric.NewManualReader()
			mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
			t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
			h := newHandler(c.minter, c.resolver, &tokens.HandlerOptions{
				Authenticate: c.authn, Authorize: c.authz,
				BrowserBaseURL: "http://127.0.0.1:8288",
				Logger:         zap.New(core), Meter: mp.Meter("test"),
			})
			require.NoError(t, h.Err())
			var w *httptest.ResponseRecorder
			require.NotPanics(t, func() { w = serve(h) })
			require.Equal(t, http.StatusInternalServerError, w.Code)
			assert.JSONEq(t, `{"error":"internal error"}`, w.Body.String())
			assert.Equal(t, "no-store", w.Header().Get("Cache-Control"))

			f := &fixture{reader: reader}
			assert.Equal(t, map[string]int64{c.count: 1}, f.counts(t))
			errs := logs.FilterLevelExact(zap.ErrorLevel).All()
			require.Len(t, errs, 1)
			fields := errs[0].ContextMap()
			assert.Contains(t, fields["error"], c.logged)
			assert.Equal(t, "panic", fields["outcome"])
			assert.Equal(t, int64(500), fields["status"])
			for _, e := range logs.All() {
				line := fmt.Sprint(e.Message, e.ContextMap())
				assert.NotContains(t, line, testJWT, "a panic value may hold anything")
				assert.NotContains(t, line, "goroutine", "no stack")
			}
			assert.NotContains(t, w.Body.String(), "goroutine")
		})
	}
}

// A Resolver may answer a value that is none of the four modes; it means
// legacy, as everywhere else, so no token is minted.
func TestHandlerTreatsAnUnknownModeAsLegacy(t *testing.T) {
	for _, mode := range []flags.Mode{flags.Mode(4), flags.Mode(7), flags.Mode(255)} {
		t.Run(mode.String(), func(t *testing.T) {
			m := &fakeMinter{}
			h := newHandler(m, flags.Fixed(mode), allowAll())
			w := serve(h)
			require.Equal(t, http.StatusNotFound, w.Code, w.Body.String())
			assert.JSONEq(t, `{"error":"realtime is not enabled for this scope"}`, w.Body.String())
			assert.Empty(t, m.Calls(), "nothing was minted")
		})
	}
}

// errors.Join and upstream bodies put newlines in error text; each log line
// stays one line.
func TestHandlerLogsErrorsOnOneLine(t *testing.T) {
	joined := errors.Join(errors.New("first\r\nline"), errors.New("second"), errors.New("third\u2028fourth"))
	t.Run("Authorize", func(t *testing.T) {
		core, logs := observer.New(zap.DebugLevel)
		opts := allowAll()
		opts.Authorize = func(context.Context, tokens.Subject, string, flags.Scope) error { return joined }
		opts.Logger = zap.New(core)
		require.Equal(t, http.StatusForbidden, serve(newHandler(&fakeMinter{}, primary, opts)).Code)
		infos := logs.FilterLevelExact(zap.InfoLevel).All()
		require.Len(t, infos, 1)
		assert.Equal(t, "first; line; second; third; fourth", infos[0].ContextMap()["error"])
	})
	t.Run("Minter", func(t *testing.T) {
		core, logs := observer.New(zap.DebugLevel)
		opts := allowAll()
		opts.Logger = zap.New(core)
		m := &fakeMinter{err: fmt.Errorf("realtime: token: %w", joined)}
		require.Equal(t, http.StatusBadGateway, serve(newHandler(m, primary, opts)).Code)
		errs := logs.FilterLevelExact(zap.ErrorLevel).All()
		require.Len(t, errs, 1)
		assert.Equal(t, "realtime: token: first; line; second; third; fourth", errs[0].ContextMap()["error"])
	})
	t.Run("every field", func(t *testing.T) {
		core, logs := observer.New(zap.DebugLevel)
		opts := allowAll()
		opts.Logger = zap.New(core)
		m := &fakeMinter{err: joined}
		serve(newHandler(m, primary, opts))
		require.NotZero(t, logs.Len())
		for _, e := range logs.All() {
			for k, v := range e.ContextMap() {
				s := fmt.Sprint(v)
				assert.False(t, strings.ContainsAny(s, "\r\n\u2028\u2029\u0085"), "field %s: %q", k, s)
			}
		}
	})
}

// mintingProvider is a realtime provider that mints tokens, as
// *inngest.Provider does.
type mintingProvider struct {
	realtime.Provider
	*fakeMinter
}

// The handler asks the Broadcast that publishes: its Resolver decides, for
// the scope of the names asked for, whether a browser gets a token, and its
// realtime provider mints it. A flip moves the next token request.
func TestHandlerOverABroadcastFollowsItsRoute(t *testing.T) {
	var mode atomic.Int32
	mode.Store(int32(flags.Legacy))
	res := resolverFunc(func(_ context.Context, scope flags.Scope, _ string) flags.Mode {
		if scope != flags.ScopeVideoReady {
			return flags.Legacy
		}
		return flags.Mode(mode.Load())
	})
	m := &fakeMinter{}
	b, err := broadcast.New(realtime.NewNoop(nil), mintingProvider{realtime.NewNoop(nil), m}, &broadcast.Options{Resolver: res})
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close(context.Background()) })
	h := tokens.NewHandler(b, allowAll())

	require.Equal(t, http.StatusNotFound, serve(h).Code, "legacy: the browser stays on PartyKit")
	for _, m := range []flags.Mode{flags.Shadow, flags.Primary, flags.Realtime} {
		mode.Store(int32(m))
		w := serve(h)
		require.Equal(t, http.StatusOK, w.Code, "%s: %s", m, w.Body.String())
		assert.Contains(t, w.Body.String(), `"channel":"app:vid_1"`)
	}
	mode.Store(int32(flags.Legacy))
	require.Equal(t, http.StatusNotFound, serve(h).Code, "flipped back: no token")
	assert.Len(t, m.Calls(), 3)

	// Another scope is routed by its own flag.
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/t?room=vid_1&scope=transcript", nil))
	assert.Equal(t, http.StatusNotFound, w.Code)
}

// A Broadcast whose realtime provider mints no tokens cannot serve one.
func TestHandlerOverABroadcastThatCannotMint(t *testing.T) {
	b, err := broadcast.New(realtime.NewNoop(nil), realtime.NewNoop(nil), &broadcast.Options{Resolver: primary})
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close(context.Background()) })
	w := serve(tokens.NewHandler(b, allowAll()))
	assert.Equal(t, http.StatusBadGateway, w.Code, w.Body.String())
}

func TestHandlerWithoutARouterIsMisconfigured(t *testing.T) {
	h := tokens.NewHandler(nil, allowAll())
	require.ErrorIs(t, h.Err(), tokens.ErrMisconfigured)
	assert.Equal(t, http.StatusInternalServerError, serve(h).Code)
}
