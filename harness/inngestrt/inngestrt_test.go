package inngestrt_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/inngest/inngest/pkg/authn"
	"go.uber.org/goleak"

	"github.com/coursebuilder/realtime-go/harness/inngestrt"
)

func TestMain(m *testing.M) {
	opts := inngestrt.LeakOptions()
	goleak.VerifyTestMain(m, opts...)
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// post sends a bare HTTP POST and returns the status and body.
func post(t *testing.T, rawURL, auth, contentType string, body []byte) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctxT(t), http.MethodPost, rawURL, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", "Bearer "+auth)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func publishURL(s *inngestrt.Server, channel, topic string) string {
	return s.URL() + "/v1/realtime/publish?" + url.Values{"channel": {channel}, "topic": {topic}}.Encode()
}

func hashed(t *testing.T, key string) string {
	t.Helper()
	h, err := inngestrt.HashSigningKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func subscribe(t *testing.T, s *inngestrt.Server, channel string, topics ...string) *inngestrt.Subscription {
	t.Helper()
	tok, err := s.Token(ctxT(t), channel, topics...)
	if err != nil {
		t.Fatal(err)
	}
	sub, err := s.Subscribe(ctxT(t), tok)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Close() })
	return sub
}

func TestHashSigningKey(t *testing.T) {
	key := "signkey-test-" + strings.Repeat("ab", 32)
	got := hashed(t, key)
	// sha256 of the 32 bytes 0xab, computed independently.
	if want := "signkey-test-9a2db2e23f1504cd056606553ac049c5e718e8f9ce9233876df1a7a1821af885"; got != want {
		t.Fatalf("HashSigningKey = %s, want %s", got, want)
	}
	// Cross-check with the Inngest server's own signing-key code: it must
	// accept the hashed key for the raw trusted key and agree on the digest.
	if _, err := authn.HandleSigningKey(context.Background(), got, key); err != nil {
		t.Fatalf("inngest authn refuses our hashed key: %v", err)
	}
	ref, err := authn.HashedSigningKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if got != "signkey-test-"+ref {
		t.Fatalf("hash = %s, inngest computes %s", got, ref)
	}
	if k := inngestrt.NewSigningKey(); !strings.HasPrefix(k, "signkey-test-") || len(k) != len("signkey-test-")+64 {
		t.Fatalf("NewSigningKey() = %q", k)
	}
	if _, err := inngestrt.HashSigningKey("signkey-test-nothex"); err == nil || strings.Contains(err.Error(), "nothex") {
		t.Fatalf("bad key: err = %v", err)
	}
}

func TestPublishDeliversDataUnchanged(t *testing.T) {
	key := inngestrt.NewSigningKey()
	s := inngestrt.NewTest(t, inngestrt.Options{SigningKeys: []string{key}})

	// Mint the token with a bare POST too.
	status, body := post(t, s.URL()+"/v1/realtime/token", hashed(t, key), "application/json",
		[]byte(`[{"kind":"run","channel":"video-1","name":"video.asset.ready"}]`))
	if status != http.StatusCreated {
		t.Fatalf("token: %d %s", status, body)
	}
	var tok struct{ JWT string }
	if err := json.Unmarshal([]byte(body), &tok); err != nil || tok.JWT == "" {
		t.Fatalf("token answer %q: %v", body, err)
	}
	sub, err := s.Subscribe(ctxT(t), tok.JWT)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()

	payload := []byte(`{"body":{"id":"video-1","status":"ready","n":[1,2.5,null,true]},"requestId":"video-1","name":"video.asset.ready"}`)
	status, body = post(t, publishURL(s, "video-1", "video.asset.ready"), hashed(t, key), "", payload)
	if status != http.StatusOK {
		t.Fatalf("publish: %d %s", status, body)
	}
	m, err := sub.NextData(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if m.Kind != "data" || m.Channel != "video-1" || m.Topic != "video.asset.ready" {
		t.Fatalf("message = %s", m.Raw)
	}
	if !bytes.Equal(m.Data, payload) {
		t.Fatalf("data = %s\nwant   %s", m.Data, payload)
	}
	if m.EnvID != inngestrt.EnvID.String() || m.CreatedAt.IsZero() {
		t.Fatalf("env_id/created_at: %s", m.Raw)
	}
	t.Logf("delivered frame: %s", m.Raw)
}

// The server re-encodes JSON with encoding/json: insignificant whitespace is
// dropped and <, >, & are escaped. Non-JSON bodies arrive as a JSON string.
func TestPublishReencodesJSON(t *testing.T) {
	s := inngestrt.NewTest(t, inngestrt.Options{})
	sub := subscribe(t, s, "c", "t")
	for _, tc := range []struct{ in, want string }{
		{`{ "a" : [1, 2],  "b":"<x>&" }`, `{"a":[1,2],"b":"\u003cx\u003e\u0026"}`},
		{`not json`, `"not json"`},
		{`\ok`, `"\\ok"`},
	} {
		if status, body := post(t, publishURL(s, "c", "t"), "", "", []byte(tc.in)); status != http.StatusOK {
			t.Fatalf("publish: %d %s", status, body)
		}
		m, err := sub.NextData(ctxT(t))
		if err != nil {
			t.Fatal(err)
		}
		if string(m.Data) != tc.want {
			t.Errorf("%s arrived as %s, want %s", tc.in, m.Data, tc.want)
		}
	}
}

func TestAuth(t *testing.T) {
	key := inngestrt.NewSigningKey()
	fallback := inngestrt.NewSigningKey()
	s := inngestrt.NewTest(t, inngestrt.Options{SigningKeys: []string{key, fallback}})
	tokenBody := []byte(`[{"kind":"run","channel":"c","name":"t"}]`)
	for _, tc := range []struct {
		name, auth string
		want       int
	}{
		{"missing", "", http.StatusUnauthorized},
		{"wrong", hashed(t, inngestrt.NewSigningKey()), http.StatusUnauthorized},
		{"unhashed", key, http.StatusUnauthorized},
		{"garbage", "x", http.StatusUnauthorized},
		{"fallback", hashed(t, fallback), 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := post(t, publishURL(s, "c", "t"), tc.auth, "", []byte(`{}`))
			if want := tc.want | http.StatusOK*boolInt(tc.want == 0); status != want {
				t.Errorf("publish: %d %s, want %d", status, body, want)
			}
			if strings.Contains(body, key) || strings.Contains(body, fallback) {
				t.Errorf("answer leaks a key: %s", body)
			}
			status, body = post(t, s.URL()+"/v1/realtime/token", tc.auth, "application/json", tokenBody)
			if want := tc.want | http.StatusCreated*boolInt(tc.want == 0); status != want {
				t.Errorf("token: %d %s, want %d", status, body, want)
			}
		})
	}

	// A subscription token grants neither publishing nor minting tokens.
	tok, err := s.Token(ctxT(t), "c", "t")
	if err != nil {
		t.Fatal(err)
	}
	if status, body := post(t, publishURL(s, "c", "t"), tok, "", []byte(`{}`)); status != http.StatusUnauthorized {
		t.Errorf("publish with subscription JWT: %d %s", status, body)
	}
	if status, body := post(t, s.URL()+"/v1/realtime/token", tok, "application/json", tokenBody); status != http.StatusUnauthorized {
		t.Errorf("token with subscription JWT: %d %s", status, body)
	}
	// And the websocket needs a valid JWT.
	if _, err := s.Subscribe(ctxT(t), "not-a-jwt"); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("subscribe with bad token: %v", err)
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func TestChannelIsolation(t *testing.T) {
	key := inngestrt.NewSigningKey()
	s := inngestrt.NewTest(t, inngestrt.Options{SigningKeys: []string{key}})
	subA := subscribe(t, s, "A", "t")
	subAOther := subscribe(t, s, "A", "other")

	if status, body := post(t, publishURL(s, "B", "t"), hashed(t, key), "", []byte(`{"to":"B"}`)); status != http.StatusOK {
		t.Fatalf("publish: %d %s", status, body)
	}
	if err := subA.ExpectNoData(300 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if status, body := post(t, publishURL(s, "A", "t"), hashed(t, key), "", []byte(`{"to":"A"}`)); status != http.StatusOK {
		t.Fatalf("publish: %d %s", status, body)
	}
	m, err := subA.NextData(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if string(m.Data) != `{"to":"A"}` {
		t.Fatalf("got %s", m.Raw)
	}
	// A token for topic "other" of channel A does not see topic "t".
	if err := subAOther.ExpectNoData(200 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
}

func TestPublishStream(t *testing.T) {
	key := inngestrt.NewSigningKey()
	s := inngestrt.NewTest(t, inngestrt.Options{SigningKeys: []string{key}})
	sub := subscribe(t, s, "chat-1", "ai.message")

	text := strings.Repeat("0123456789abcdef", 160) // 2560 bytes: 3 chunks of ≤1 KiB
	status, body := post(t, publishURL(s, "chat-1", "ai.message"), hashed(t, key), "text/stream", []byte(text))
	if status != http.StatusOK {
		t.Fatalf("publish: %d %s", status, body)
	}
	start, err := sub.NextKind(ctxT(t), inngestrt.KindDataStreamStart)
	if err != nil {
		t.Fatal(err)
	}
	var streamID string
	if err := json.Unmarshal(start.Data, &streamID); err != nil || streamID == "" {
		t.Fatalf("datastream-start: %s", start.Raw)
	}
	var got strings.Builder
	chunks := 0
	for {
		m, err := sub.NextKind(ctxT(t), inngestrt.KindChunk, inngestrt.KindDataStreamEnd)
		if err != nil {
			t.Fatal(err)
		}
		if m.Kind == inngestrt.KindDataStreamEnd {
			if m.Channel != "chat-1" || m.Topic != "ai.message" {
				t.Fatalf("datastream-end: %s", m.Raw)
			}
			break
		}
		if m.StreamID != streamID {
			t.Fatalf("chunk stream id %q, want %q", m.StreamID, streamID)
		}
		var part string
		if err := json.Unmarshal(m.Data, &part); err != nil || len(part) > 1024 {
			t.Fatalf("chunk: %s", m.Raw)
		}
		got.WriteString(part)
		chunks++
	}
	if got.String() != text || chunks < 3 {
		t.Fatalf("stream reassembled to %d bytes in %d chunks, want %d bytes", got.Len(), chunks, len(text))
	}
}

func TestDevModeAcceptsAnything(t *testing.T) {
	s := inngestrt.NewTest(t, inngestrt.Options{})
	sub := subscribe(t, s, "c", "t")
	if status, body := post(t, publishURL(s, "c", "t"), "", "", []byte(`1`)); status != http.StatusOK {
		t.Fatalf("publish without key: %d %s", status, body)
	}
	if status, body := post(t, publishURL(s, "c", "t"), "anything", "", []byte(`2`)); status != http.StatusOK {
		t.Fatalf("publish with any key: %d %s", status, body)
	}
	for _, want := range []string{"1", "2"} {
		m, err := sub.NextData(ctxT(t))
		if err != nil {
			t.Fatal(err)
		}
		if string(m.Data) != want {
			t.Fatalf("got %s, want %s", m.Data, want)
		}
	}
}

func TestWrapAndHelpers(t *testing.T) {
	key := inngestrt.NewSigningKey()
	var calls, failFirst atomic.Int32
	failFirst.Store(1)
	var env atomic.Value
	s := inngestrt.NewTest(t, inngestrt.Options{
		SigningKeys: []string{key},
		Wrap: func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				calls.Add(1)
				if r.URL.Path == "/v1/realtime/publish" {
					env.Store(r.Header.Get("X-Inngest-Env"))
					if failFirst.Add(-1) == 0 {
						http.Error(w, "try later", http.StatusServiceUnavailable)
						return
					}
				}
				next.ServeHTTP(w, r)
			})
		},
	})
	sub := subscribe(t, s, "c", "t")
	req, _ := http.NewRequestWithContext(ctxT(t), http.MethodPost, publishURL(s, "c", "t"), strings.NewReader(`{"n":1}`))
	req.Header.Set("Authorization", "Bearer "+hashed(t, key))
	req.Header.Set("X-Inngest-Env", "branch-1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || env.Load() != "branch-1" {
		t.Fatalf("injected fault: status %d, env %v", resp.StatusCode, env.Load())
	}
	if err := s.Publish(ctxT(t), "c", "t", []byte(`{"n":2}`)); err != nil {
		t.Fatal(err)
	}
	m, err := sub.NextData(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if string(m.Data) != `{"n":2}` {
		t.Fatalf("got %s", m.Raw)
	}
	if calls.Load() < 4 { // token, connect, 2 publishes
		t.Fatalf("wrap saw %d requests", calls.Load())
	}
}

func TestCloseEndsSubscriptions(t *testing.T) {
	s, err := inngestrt.Start(ctxT(t), inngestrt.Options{Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	sub := subscribeNoCleanup(t, s)
	if err := s.Publish(ctxT(t), "c", "t", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := sub.NextData(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-sub.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("subscription still open after Close")
	}
	// The real broadcaster announces its shutdown before it goes.
	var kinds []string
	for {
		m, err := sub.NextMessage(ctxT(t))
		if err != nil {
			break
		}
		kinds = append(kinds, m.Kind)
	}
	t.Logf("frames after close: %v", kinds)
	_ = sub.Close()
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := http.Get(s.URL() + "/v1/realtime/token"); err == nil {
		t.Fatal("server still answers after Close")
	}
}

func subscribeNoCleanup(t *testing.T, s *inngestrt.Server) *inngestrt.Subscription {
	tok, err := s.Token(ctxT(t), "c", "t")
	if err != nil {
		t.Fatal(err)
	}
	sub, err := s.Subscribe(ctxT(t), tok)
	if err != nil {
		t.Fatal(err)
	}
	return sub
}

// A rotated key is refused by the real auth path, and accepted again once
// it is set back; a bad key list changes nothing.
func TestSetSigningKeys(t *testing.T) {
	key, rotated := inngestrt.NewSigningKey(), inngestrt.NewSigningKey()
	s := inngestrt.NewTest(t, inngestrt.Options{SigningKeys: []string{key}})
	publish := func(k string) int {
		status, _ := post(t, publishURL(s, "c", "t"), hashed(t, k), "", []byte(`{}`))
		return status
	}
	if got := publish(key); got != http.StatusOK {
		t.Fatalf("before rotation: %d", got)
	}
	if err := s.SetSigningKeys(rotated); err != nil {
		t.Fatal(err)
	}
	if got := publish(key); got != http.StatusUnauthorized {
		t.Errorf("old key after rotation: %d, want 401", got)
	}
	if got := publish(rotated); got != http.StatusOK {
		t.Errorf("new key after rotation: %d, want 200", got)
	}
	for _, bad := range [][]string{nil, {"signkey-test-nothex"}} {
		if err := s.SetSigningKeys(bad...); err == nil || strings.Contains(err.Error(), "nothex") {
			t.Errorf("SetSigningKeys(%q) = %v, want an error without the key", bad, err)
		}
	}
	if got := publish(rotated); got != http.StatusOK {
		t.Errorf("after a refused SetSigningKeys: %d, want the rotated key still accepted", got)
	}
	if err := s.SetSigningKeys(key); err != nil {
		t.Fatal(err)
	}
	if got := publish(key); got != http.StatusOK {
		t.Errorf("key set back: %d, want 200", got)
	}
}
