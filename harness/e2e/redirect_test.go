package e2e_test

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/coursebuilder/realtime-go/realtime"
	"github.com/coursebuilder/realtime-go/realtime/inngest"
)

// hardeningEnv sets the environment of the providers of the hardening
// tests for the rest of t: a channel secret, in case channels are keyed,
// and nothing else (TestMain cleared the rest).
func hardeningEnv(t testing.TB) {
	t.Helper()
	t.Setenv("REALTIME_CHANNEL_SECRET", "e2e channel secret, at least thirty-two bytes long")
}

// channelOf returns the channel p publishes room to.
func channelOf(t testing.TB, p *inngest.Provider, room, _ string) string {
	t.Helper()
	ch, err := p.Channel(room)
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

// redirectProxy stands in front of the real server and answers every
// request with a 307 to the same request on it, recording what it saw.
type redirectProxy struct {
	*httptest.Server
	mu       sync.Mutex
	requests int
}

func newRedirectProxy(t testing.TB, real string) *redirectProxy {
	t.Helper()
	p := &redirectProxy{}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		p.requests++
		p.mu.Unlock()
		_, _ = io.Copy(io.Discard, r.Body)
		http.Redirect(w, r, real+r.URL.RequestURI(), http.StatusTemporaryRedirect)
	}))
	t.Cleanup(p.Close)
	return p
}

// A publish answered with a 307 to the real server's publish URL, which
// would take the same body and the bearer key there, fails with
// ErrRejected, and the real server's subscriber gets nothing: the next
// message it receives is the one published directly afterwards.
func TestRedirectToTheRealServerIsRejectedAndNotFollowed(t *testing.T) {
	s, key := sharedInngest(t)
	proxy := newRedirectProxy(t, s.URL())
	hardeningEnv(t)
	opts := inngest.Options{SigningKey: key, Retry: fastRetry(3)}
	opts.BaseURL = proxy.URL
	viaProxy := newInngest(t, opts)
	opts.BaseURL = s.URL()
	direct := newInngest(t, opts)

	rm := room("redirect")
	ch := channelOf(t, direct, rm, topic)
	if got := channelOf(t, viaProxy, rm, topic); got != ch {
		t.Fatalf("the two providers map %q to %q and %q", rm, got, ch)
	}
	sub := mustSubscribeInngest(t, s, ch, topic)

	redirected := readyMsg(rm)
	redirected.RequestID = "redirected"
	err := viaProxy.Publish(ctxT(t), redirected)
	if !errors.Is(err, realtime.ErrRejected) {
		t.Fatalf("Publish through a 307: %v, want ErrRejected", err)
	}
	pe := publishError(t, err)
	if pe.StatusCode != http.StatusTemporaryRedirect || !strings.Contains(err.Error(), strings.TrimPrefix(s.URL(), "http://")) {
		t.Errorf("error %q does not name the status and the redirect's host", err)
	}
	if _, err := viaProxy.SubscriptionToken(ctxT(t), rm, []string{topic}); !errors.Is(err, realtime.ErrRejected) {
		t.Errorf("SubscriptionToken through a 307: %v, want ErrRejected", err)
	}
	if err := viaProxy.PublishStream(ctxT(t), rm, topic, strings.NewReader("streamed")); !errors.Is(err, realtime.ErrRejected) {
		t.Errorf("PublishStream through a 307: %v, want ErrRejected", err)
	}
	proxy.mu.Lock()
	if proxy.requests != 3 {
		t.Errorf("the proxy got %d requests, want 3 (a rejection is not retried)", proxy.requests)
	}
	proxy.mu.Unlock()

	control := readyMsg(rm)
	control.RequestID = "direct"
	if err := direct.Publish(ctxT(t), control); err != nil {
		t.Fatalf("direct Publish: %v", err)
	}
	expectDelivered(t, "inngest subscriber", sub, envelope(t, control))
}
