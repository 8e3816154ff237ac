package e2e_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"testing"

	"go.uber.org/zap/zaptest"

	"github.com/coursebuilder/realtime-go/flags"
	"github.com/coursebuilder/realtime-go/realtime"
	"github.com/coursebuilder/realtime-go/realtime/inngest"
	"github.com/coursebuilder/realtime-go/tokens"
)

// jssdkDir holds the npm package that pins the official inngest SDK
// (harness/jssdk; install with `npm ci --prefix harness/jssdk`).
const jssdkDir = "../jssdk"

// jssdkNode returns the path of node, skipping t when node or the SDK is not
// installed here, unless CI is set: then it fails.
func jssdkNode(t *testing.T) string {
	t.Helper()
	missing := func(err error) {
		t.Helper()
		if os.Getenv("CI") != "" {
			t.Fatalf("the inngest npm SDK cannot run: %v", err)
		}
		t.Skipf("the inngest npm SDK cannot run (run `npm ci --prefix harness/jssdk`): %v", err)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		missing(err)
	}
	if _, err := os.Stat(filepath.Join(jssdkDir, "node_modules", "inngest", "package.json")); err != nil {
		missing(err)
	}
	return node
}

// nodeProc is a node script whose stdout lines arrive on lines, closed when
// the script has exited; err is its exit status, set before done closes.
type nodeProc struct {
	lines  chan string
	done   chan struct{}
	err    error
	stderr bytes.Buffer
}

// runNode runs a script of harness/jssdk. It is killed, and waited for, when
// t ends, and its stderr is logged then.
func runNode(t *testing.T, node string, args ...string) *nodeProc {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, node, args...)
	cmd.Dir = jssdkDir
	cmd.Env = append(os.Environ(), "NO_COLOR=1")
	p := &nodeProc{lines: make(chan string, 64), done: make(chan struct{})}
	cmd.Stderr = &p.stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	go func() {
		defer close(p.done)
		defer close(p.lines)
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
		p.err = cmd.Wait()
	}()
	t.Cleanup(func() {
		cancel()
		for range p.lines { // unblock the scanner
		}
		<-p.done
		if s := p.stderr.String(); s != "" {
			t.Logf("node %s stderr:\n%s", args[len(args)-1], s)
		}
	})
	return p
}

// next returns the next stdout line, failing t when the script exits or the
// test's time runs out first.
func (p *nodeProc) next(t *testing.T, ctx context.Context) string {
	t.Helper()
	select {
	case line, ok := <-p.lines:
		if !ok {
			<-p.done
			t.Fatalf("node exited (%v) before printing what was expected; stderr:\n%s", p.err, p.stderr.String())
		}
		return line
	case <-ctx.Done():
		t.Fatalf("waiting for node: %v", ctx.Err())
	}
	return ""
}

// tokenBodies wraps a token handler and hands over each 200 body it
// writes, as sent.
type tokenBodies struct {
	h      http.Handler
	bodies chan []byte
}

func (b *tokenBodies) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec := httptest.NewRecorder()
	b.h.ServeHTTP(rec, r)
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	_, _ = w.Write(rec.Body.Bytes())
	if rec.Code == http.StatusOK {
		b.bodies <- rec.Body.Bytes()
	}
}

// jssdkLine is what subscribe.mjs prints per message.
type jssdkLine struct {
	Channel string          `json:"channel"`
	Topic   string          `json:"topic"`
	Kind    string          `json:"kind"`
	Data    json.RawMessage `json:"data"`
}

// TestJSSDKSubscribesWithTheTokenEndpointsBody runs subscribe() of the
// official inngest npm package (inngest/realtime, v4) in node with the body
// of GET /api/realtime/token passed unchanged, against the harness's real
// Inngest realtime server, and checks that it receives each envelope that
// inngest.Provider publishes unchanged. Without apiBaseUrl in the body the
// SDK would have dialed Inngest Cloud and never subscribed here.
func TestJSSDKSubscribesWithTheTokenEndpointsBody(t *testing.T) {
	node := jssdkNode(t)
	srv, key := sharedInngest(t)
	p := newInngest(t, inngest.Options{BaseURL: srv.URL(), SigningKey: key, Mapping: appChannel})
	h := tokens.NewHandler(routed(t, p, flags.Fixed(flags.Primary)), &tokens.HandlerOptions{
		Authenticate: func(*http.Request) (tokens.Subject, error) { return tokens.Subject{ID: "alice"}, nil },
		Authorize:    func(context.Context, tokens.Subject, string, flags.Scope) error { return nil },
		Logger:       zaptest.NewLogger(t),
	})
	if err := h.Err(); err != nil {
		t.Fatal(err)
	}
	served := &tokenBodies{h: h, bodies: make(chan []byte, 4)}
	app := httptest.NewServer(served)
	t.Cleanup(app.Close)

	r := room("jssdk")
	msgs := []realtime.Message{
		readyMsg(r),
		{Room: r, Name: topic, RequestID: "req-2", ID: "req-2", Body: map[string]any{
			"id": r, "status": "ready", "nested": map[string]any{"n": 42.5, "list": []any{"a", true, nil}}, "text": "é – ✓",
		}},
	}
	tokenURL := app.URL + "/api/realtime/token?" + url.Values{"room": {r}, "scope": {"video-ready"}}.Encode()
	proc := runNode(t, node, "--experimental-websocket", "subscribe.mjs", tokenURL, strconv.Itoa(len(msgs)), strconv.Itoa(int(wait.Milliseconds())))

	ctx := ctxT(t)
	var body []byte
	select {
	case body = <-served.bodies:
	case <-proc.done:
		t.Fatalf("node exited (%v) before fetching a token; stderr:\n%s", proc.err, proc.stderr.String())
	case <-ctx.Done():
		t.Fatal("node never fetched a token")
	}
	var tok tokens.Response
	if err := json.Unmarshal(body, &tok); err != nil {
		t.Fatal(err)
	}
	if tok.APIBaseURL != srv.URL() {
		t.Fatalf("apiBaseUrl %q, want the minter's base URL %q (%v)", tok.APIBaseURL, srv.URL(), tok)
	}

	// subscribe() resolves when the websocket opens, slightly before the
	// server has registered the subscription: wait for the server, and for
	// node to exit early with an error.
	waitCtx, stop := context.WithCancel(ctx)
	defer stop()
	go func() {
		select {
		case <-proc.done:
			stop()
		case <-waitCtx.Done():
		}
	}()
	if err := srv.WaitSubscribed(waitCtx, tok.Channel, tok.Topics[0], 1); err != nil {
		<-proc.done // waitCtx ends only with the test's time or node's exit
		t.Fatalf("%v; node: %v; stderr:\n%s", err, proc.err, proc.stderr.String())
	}

	for _, msg := range msgs {
		if err := p.Publish(ctx, msg); err != nil {
			t.Fatal(err)
		}
	}
	for i, msg := range msgs {
		line := proc.next(t, ctx)
		var got jssdkLine
		if err := json.Unmarshal([]byte(line), &got); err != nil {
			t.Fatalf("node printed %q: %v", line, err)
		}
		if got.Channel != tok.Channel || got.Topic != topic || got.Kind != "data" {
			t.Errorf("message %d: channel %q, topic %q, kind %q; want %q, %q, data", i, got.Channel, got.Topic, got.Kind, tok.Channel, topic)
		}
		assertSameEnvelope(t, fmt.Sprintf("message %d", i), got.Data, envelope(t, msg))
	}
	<-proc.done
	if proc.err != nil {
		t.Fatalf("node: %v", proc.err)
	}
}

// assertSameEnvelope fails t unless got is the JSON value of want and holds
// exactly the envelope's fields.
func assertSameEnvelope(t *testing.T, what string, got, want []byte) {
	t.Helper()
	var g, w map[string]any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("%s: data %s is not an object: %v", what, got, err)
	}
	if err := json.Unmarshal(want, &w); err != nil {
		t.Fatal(err)
	}
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range g {
			if !yield(k) {
				return
			}
		}
	})
	if !slices.Equal(keys, []string{"body", "id", "name", "requestId"}) {
		t.Errorf("%s: data has the fields %v, want body, id, name and requestId", what, keys)
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("%s: the SDK received\n  %s\nwant\n  %s", what, got, want)
	}
}

// TestJSSDKConnectsToTheTokensAPIBaseURL checks, without dialing, where
// subscribe() of the inngest npm package opens its websocket for a token
// endpoint's body: the apiBaseUrl of the body (the minter's base URL, or
// BrowserBaseURL when set), and Inngest Cloud when the body has none, which
// is why the body must carry it.
func TestJSSDKConnectsToTheTokensAPIBaseURL(t *testing.T) {
	node := jssdkNode(t)
	srv, key := sharedInngest(t)
	p := newInngest(t, inngest.Options{BaseURL: srv.URL(), SigningKey: key, Mapping: appChannel})
	allow := &tokens.HandlerOptions{
		Authenticate: func(*http.Request) (tokens.Subject, error) { return tokens.Subject{ID: "alice"}, nil },
		Authorize:    func(context.Context, tokens.Subject, string, flags.Scope) error { return nil },
		Logger:       zaptest.NewLogger(t),
	}
	behindProxy := *allow
	behindProxy.BrowserBaseURL = "https://inngest.example.test/"

	body := func(h *tokens.Handler) map[string]any {
		t.Helper()
		if err := h.Err(); err != nil {
			t.Fatal(err)
		}
		req := httptest.NewRequestWithContext(ctxT(t), http.MethodGet, "/api/realtime/token?room="+url.QueryEscape(room("wsurl"))+"&scope=video-ready", nil)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			t.Fatalf("token request: %d %s", w.Code, w.Body)
		}
		var m map[string]any
		if err := json.Unmarshal(w.Body.Bytes(), &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	wsURL := func(tok map[string]any) *url.URL {
		t.Helper()
		arg, err := json.Marshal(tok)
		if err != nil {
			t.Fatal(err)
		}
		proc := runNode(t, node, "wsurl.mjs", string(arg))
		var got struct{ URL string }
		if err := json.Unmarshal([]byte(proc.next(t, ctxT(t))), &got); err != nil {
			t.Fatal(err)
		}
		u, err := url.Parse(got.URL)
		if err != nil {
			t.Fatal(err)
		}
		if u.Path != "/v1/realtime/connect" || u.Query().Get("token") != tok["key"] {
			t.Fatalf("the SDK opened %s", redactToken(u))
		}
		return u
	}
	host := func(u *url.URL) string { return u.Scheme + "://" + u.Host }

	realtimeOnly := routed(t, p, flags.Fixed(flags.Realtime))
	withBase := body(tokens.NewHandler(realtimeOnly, allow))
	srvURL, _ := url.Parse(srv.URL())
	if got, want := host(wsURL(withBase)), "ws://"+srvURL.Host; got != want {
		t.Errorf("with the default apiBaseUrl %v the SDK dialed %s, want %s", withBase["apiBaseUrl"], got, want)
	}

	proxied := body(tokens.NewHandler(realtimeOnly, &behindProxy))
	if got, want := host(wsURL(proxied)), "wss://inngest.example.test"; got != want {
		t.Errorf("with BrowserBaseURL the SDK dialed %s, want %s", got, want)
	}

	delete(withBase, "apiBaseUrl")
	if got, want := host(wsURL(withBase)), "wss://api.inngest.com"; got != want {
		t.Errorf("without apiBaseUrl the SDK dialed %s, want Inngest Cloud %s", got, want)
	}
}

func redactToken(u *url.URL) string {
	c := *u
	c.RawQuery = ""
	return c.String() + "?token=…"
}
