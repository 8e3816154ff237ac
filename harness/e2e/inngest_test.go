package e2e_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coursebuilder/realtime-go/harness/inngestrt"
	"github.com/coursebuilder/realtime-go/internal/transport"
	"github.com/coursebuilder/realtime-go/realtime"
	"github.com/coursebuilder/realtime-go/realtime/inngest"
)

// Faults of the Inngest transport, each against a real endpoint of its own.

const topic = "video.asset.ready"

// readyMsg returns a video-ready message to room with an ID of its own:
// each call is a new message.
func readyMsg(room string) realtime.Message {
	return realtime.Message{
		Room:      room,
		Name:      topic,
		RequestID: room,
		Body:      map[string]any{"id": room, "status": "ready", "title": "Tom & Jerry <3"},
		ID:        fmt.Sprintf("ready-%d", readyIDs.Add(1)),
	}
}

// readyIDs numbers the messages of readyMsg.
var readyIDs atomic.Uint64

// publishError returns err as a *realtime.PublishError or fails t.
func publishError(t testing.TB, err error) *realtime.PublishError {
	t.Helper()
	var pe *realtime.PublishError
	if !errors.As(err, &pe) {
		t.Fatalf("error %v (%T) is not a *realtime.PublishError", err, err)
	}
	return pe
}

func TestInngestWrongSigningKeyIsUnauthorized(t *testing.T) {
	e := newEndpoint(t, nil)
	ch := room("wrong-key")
	sub := mustSubscribeInngest(t, e.Server, ch, topic)
	wrong := inngestrt.NewSigningKey()
	p := newInngest(t, inngest.Options{BaseURL: e.URL(), SigningKey: wrong, Retry: fastRetry(3)})

	err := p.Publish(ctxT(t), readyMsg(ch))
	if !errors.Is(err, realtime.ErrUnauthorized) {
		t.Fatalf("Publish with a key the server does not know: %v, want ErrUnauthorized", err)
	}
	pe := publishError(t, err)
	if pe.StatusCode != http.StatusUnauthorized || pe.Transport != "inngest" || pe.Retryable() {
		t.Errorf("PublishError = %+v, want a non-retryable 401 from inngest", pe)
	}
	hashedWrong, _ := transport.HashSigningKey(wrong)
	for _, secret := range []string{wrong, hashedWrong, e.Key, wrong[len("signkey-test-"):]} {
		if strings.Contains(err.Error(), secret) {
			t.Fatalf("error text shows a key: %v", err)
		}
	}
	if n := len(e.Publishes(ch)); n != 1 {
		t.Errorf("%d publish requests reached the server, want 1 (a refused key is not retried)", n)
	}
	expectQuiet(t, map[string]subscriber{"inngest subscriber": sub})
}

func TestInngestFallbackKeyIsUsedWhenThePrimaryIsRefused(t *testing.T) {
	e := newEndpoint(t, nil)
	ch := room("rotated-key")
	sub := mustSubscribeInngest(t, e.Server, ch, topic)
	primary := inngestrt.NewSigningKey() // rotated out on the server
	p := newInngest(t, inngest.Options{
		BaseURL:            e.URL(),
		SigningKey:         primary,
		SigningKeyFallback: e.Key,
		Retry:              fastRetry(3),
	})

	first := readyMsg(ch)
	if err := p.Publish(ctxT(t), first); err != nil {
		t.Fatalf("Publish with a wrong primary and the right fallback key: %v", err)
	}
	expectDelivered(t, "inngest subscriber", sub, envelope(t, first))
	expectQuiet(t, map[string]subscriber{"inngest subscriber": sub}) // delivered once
	if n := len(e.Publishes(ch)); n != 2 {
		t.Fatalf("%d publish requests, want 2: refused primary, accepted fallback", n)
	}

	// The accepted key is remembered: the next publish is one request.
	second := first
	second.RequestID, second.ID = "second", first.ID+"-second"
	if err := p.Publish(ctxT(t), second); err != nil {
		t.Fatal(err)
	}
	expectDelivered(t, "inngest subscriber", sub, envelope(t, second))

	// On the wire: the primary, then the fallback, then the fallback
	// alone, each hashed as the SDKs send it, never raw.
	hp, _ := transport.HashSigningKey(primary)
	hf, _ := transport.HashSigningKey(e.Key)
	var got []string
	for _, h := range e.Publishes(ch) {
		got = append(got, h.Get("Authorization"))
	}
	if want := []string{"Bearer " + hp, "Bearer " + hf, "Bearer " + hf}; !slices.Equal(got, want) {
		t.Errorf("Authorization headers of the publishes:\n got %q\nwant %q", got, want)
	}
}

func TestInngestOversizePayloadNeverReachesTheServer(t *testing.T) {
	e := newEndpoint(t, nil)
	ch := room("oversize")
	sub := mustSubscribeInngest(t, e.Server, ch, topic)
	p := newInngest(t, inngest.Options{BaseURL: e.URL(), SigningKey: e.Key})

	before := e.Requests()
	msg := readyMsg(ch)
	msg.Body = strings.Repeat("x", realtime.MaxEnvelopeBytes) // the envelope around it is over the limit
	err := p.Publish(ctxT(t), msg)
	var tl *realtime.TooLargeError
	if !errors.As(err, &tl) || !errors.Is(err, realtime.ErrPayloadTooLarge) {
		t.Fatalf("Publish of an oversize envelope: %v, want a *realtime.TooLargeError", err)
	}
	if tl.Limit != realtime.MaxEnvelopeBytes || tl.Size <= tl.Limit {
		t.Errorf("TooLargeError = %+v", tl)
	}
	if n := e.Requests() - before; n != 0 {
		t.Fatalf("%d requests reached the server, want none", n)
	}
	expectQuiet(t, map[string]subscriber{"inngest subscriber": sub})
}

func TestInngestServerDownIsUnavailableAfterTheConfiguredAttempts(t *testing.T) {
	p := newInngest(t, inngest.Options{
		BaseURL:    downURL(t),
		SigningKey: inngestrt.NewSigningKey(),
		Retry:      fastRetry(3),
	})
	err := p.Publish(ctxT(t), readyMsg(room("down")))
	if !errors.Is(err, realtime.ErrUnavailable) {
		t.Fatalf("Publish to a closed port: %v, want ErrUnavailable", err)
	}
	if pe := publishError(t, err); pe.Attempts != 3 || pe.StatusCode != 0 || !pe.Retryable() {
		t.Fatalf("PublishError = %+v, want 3 attempts and no status", pe)
	}
}

// A slow server is one that does not answer in time. A request that was
// sent in full and got no answer may have been delivered (a buffering proxy
// keeps working after the client left), so it is never retried: a retry could
// deliver the message twice.
func TestInngestSlowServer(t *testing.T) {
	t.Run("CallerDeadlineEndsThePublish", func(t *testing.T) {
		e := newEndpoint(t, hang)
		ch := room("slow")
		p := newInngest(t, inngest.Options{
			BaseURL: e.URL(), SigningKey: e.Key,
			AttemptTimeout: 5 * time.Second, Retry: fastRetry(3),
		})
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		err := p.Publish(ctx, readyMsg(ch))
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Publish past the caller's deadline: %v, want context.DeadlineExceeded", err)
		}
		if n := len(e.Publishes(ch)); n != 1 {
			t.Errorf("%d publish requests, want 1: nothing is retried once the caller's deadline passed", n)
		}
	})

	t.Run("AttemptTimeoutAfterSendingIsNotRetried", func(t *testing.T) {
		e := newEndpoint(t, hang)
		ch := room("slow-always")
		p := newInngest(t, inngest.Options{
			BaseURL: e.URL(), SigningKey: e.Key,
			AttemptTimeout: 200 * time.Millisecond, Retry: fastRetry(3),
		})
		err := p.Publish(ctxT(t), readyMsg(ch))
		// The caller's context is still live: this is the server's fault,
		// not the caller's deadline, and the message may have been delivered.
		if !errors.Is(err, realtime.ErrUnavailable) || !errors.Is(err, realtime.ErrMaybeDelivered) || errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Publish whose attempt times out: %v, want ErrUnavailable and ErrMaybeDelivered, not DeadlineExceeded", err)
		}
		if pe := publishError(t, err); pe.Attempts != 1 || pe.Retryable() {
			t.Errorf("PublishError = %+v, want 1 attempt, not retryable", pe)
		}
		if n := len(e.Publishes(ch)); n != 1 {
			t.Errorf("%d publish requests, want 1", n)
		}
	})
}

func TestInngest503IsRetriedAndDeliveredOnce(t *testing.T) {
	e := newEndpoint(t, firstN(1, answer(http.StatusServiceUnavailable, "try again later")))
	ch := room("503")
	sub := mustSubscribeInngest(t, e.Server, ch, topic)
	p := newInngest(t, inngest.Options{BaseURL: e.URL(), SigningKey: e.Key, Retry: fastRetry(3)})

	msg := readyMsg(ch)
	if err := p.Publish(ctxT(t), msg); err != nil {
		t.Fatalf("Publish after one 503: %v", err)
	}
	expectDelivered(t, "inngest subscriber", sub, envelope(t, msg))
	expectQuiet(t, map[string]subscriber{"inngest subscriber": sub})
	if n := len(e.Publishes(ch)); n != 2 {
		t.Errorf("%d publish requests, want 2", n)
	}
}

func TestInngest400IsRejectedWithoutRetry(t *testing.T) {
	e := newEndpoint(t, answer(http.StatusBadRequest, `{"error":"bad channel"}`))
	ch := room("400")
	sub := mustSubscribeInngest(t, e.Server, ch, topic)
	p := newInngest(t, inngest.Options{BaseURL: e.URL(), SigningKey: e.Key, Retry: fastRetry(3)})

	err := p.Publish(ctxT(t), readyMsg(ch))
	if !errors.Is(err, realtime.ErrRejected) {
		t.Fatalf("Publish answered 400: %v, want ErrRejected", err)
	}
	pe := publishError(t, err)
	if pe.StatusCode != http.StatusBadRequest || pe.Attempts != 1 || pe.Retryable() || !strings.Contains(pe.Detail, "bad channel") {
		t.Errorf("PublishError = %+v, want one non-retryable 400 with the server's detail", pe)
	}
	if n := len(e.Publishes(ch)); n != 1 {
		t.Errorf("%d publish requests, want exactly 1", n)
	}
	expectQuiet(t, map[string]subscriber{"inngest subscriber": sub})
}

func TestInngestBranchEnvironmentReachesTheServer(t *testing.T) {
	e := newEndpoint(t, nil)
	for _, env := range []string{"branch-feature-42", ""} {
		ch := room("env")
		sub := mustSubscribeInngest(t, e.Server, ch, topic)
		p := newInngest(t, inngest.Options{BaseURL: e.URL(), SigningKey: e.Key, Env: env})
		msg := readyMsg(ch)
		if err := p.Publish(ctxT(t), msg); err != nil {
			t.Fatal(err)
		}
		expectDelivered(t, "inngest subscriber", sub, envelope(t, msg))
		h := e.Publishes(ch)
		if len(h) != 1 {
			t.Fatalf("%d publish requests, want 1", len(h))
		}
		want := []string{env}
		if env == "" {
			want = nil // no header at all
		}
		if got := h[0].Values("X-Inngest-Env"); !slices.Equal(got, want) {
			t.Errorf("Env %q: the server saw X-Inngest-Env %q, want %q", env, got, want)
		}
	}
}

// A deployment configures the provider with the variables the Inngest SDKs
// read; with them it reaches the endpoint, uses the fallback key during a
// rotation and names the branch environment.
func TestInngestConfiguredFromTheEnvironment(t *testing.T) {
	e := newEndpoint(t, nil)
	ch := room("from-env")
	sub := mustSubscribeInngest(t, e.Server, ch, topic)
	vars := map[string]string{
		"INNGEST_BASE_URL":             e.URL(),
		"INNGEST_SIGNING_KEY":          inngestrt.NewSigningKey(),
		"INNGEST_SIGNING_KEY_FALLBACK": e.Key,
		"INNGEST_ENV":                  "branch-from-env",
	}
	for k, v := range vars {
		t.Setenv(k, v)
	}
	p := newInngest(t, inngest.Options{})
	if p.BaseURL() != e.URL() {
		t.Fatalf("BaseURL() = %s, want %s", p.BaseURL(), e.URL())
	}
	msg := readyMsg(ch)
	if err := p.Publish(ctxT(t), msg); err != nil {
		t.Fatal(err)
	}
	expectDelivered(t, "inngest subscriber", sub, envelope(t, msg))
	h := e.Publishes(ch)
	if len(h) == 0 || h[len(h)-1].Get("X-Inngest-Env") != "branch-from-env" {
		t.Errorf("publish headers %v, want X-Inngest-Env: branch-from-env", h)
	}
}
