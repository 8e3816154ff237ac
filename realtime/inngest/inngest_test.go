package inngest_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/coursebuilder/realtime-go/internal/fakeinngest"
	"github.com/coursebuilder/realtime-go/internal/transport"
	"github.com/coursebuilder/realtime-go/realtime"
	"github.com/coursebuilder/realtime-go/realtime/inngest"
)

// Test keys: the hex part decodes, so they hash like real keys.
const (
	testKey      = "signkey-test-0123456789abcdef0123456789abcdef"
	testFallback = "signkey-test-fedcba9876543210fedcba9876543210"
)

// fastRetry keeps retry tests quick while still exercising backoff.
var fastRetry = &realtime.RetryPolicy{Attempts: 3, BaseDelay: time.Millisecond, MaxDelay: 5 * time.Millisecond}

func newInngest(t *testing.T, base string, opts inngest.Options) *inngest.Provider {
	t.Helper()
	opts.BaseURL = base
	if opts.Retry == nil {
		opts.Retry = fastRetry
	}
	if opts.ChannelSecret == "" {
		// These tests check readable channels; mapping_test.go checks
		// keyed ones.
		opts.Mapping.Unkeyed = true
	}
	p, err := inngest.New(&opts)
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// stalledServer accepts connections and never answers.
func stalledServer(t *testing.T) string {
	t.Helper()
	done := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-done:
		}
	}))
	t.Cleanup(func() { close(done); srv.Close() })
	return srv.URL
}

func TestInngestSendsWhatTheServerExpects(t *testing.T) {
	srv := fakeinngest.New(nil)
	defer srv.Close()
	p := newInngest(t, srv.URL+"/", inngest.Options{SigningKey: testKey, Env: "branch-1"})
	msg := realtime.Message{Room: "vid 1/ä?&", Name: "video.asset.ready", RequestID: "r", Body: map[string]string{"id": "vid 1"}, ID: "m1"}
	require.NoError(t, p.Publish(context.Background(), msg))

	reqs := srv.Requests()
	require.Len(t, reqs, 1)
	hashed, err := transport.HashSigningKey(testKey)
	require.NoError(t, err)
	assert.Equal(t, "Bearer "+hashed, reqs[0].Header.Get("Authorization"))
	assert.Equal(t, "branch-1", reqs[0].Header.Get("X-Inngest-Env"))
	assert.Equal(t, "vid 1/ä?&", reqs[0].Channel, "the room reaches the server intact as the channel")
	assert.Equal(t, "video.asset.ready", reqs[0].Topic)
	want, _ := msg.Encode()
	assert.Equal(t, string(want), string(reqs[0].Body))
	assert.NotContains(t, reqs[0].Header.Get("Authorization"), "0123456789abcdef0123", "the raw key is never sent")
}

func TestHashSigningKeyMatchesTheSDKs(t *testing.T) {
	// sha256 of the bytes 0x01 0x23 … 0xef, prefix kept (computed with
	// `printf '\x01\x23\x45\x67\x89\xab\xcd\xef' | sha256sum`).
	got, err := transport.HashSigningKey("signkey-prod-0123456789abcdef")
	require.NoError(t, err)
	assert.Equal(t, "signkey-prod-55c53f5d490297900cefa825d0c8e8e9532ee8a118abe7d8570762cd38be9818", got)

	for _, bad := range []string{"", "signkey-test-", "signkey-test-xyz", "not hex at all"} {
		_, err := transport.HashSigningKey(bad)
		require.Error(t, err)
		if bad != "" {
			assert.NotContains(t, err.Error(), bad)
		}
	}
}

func TestInngestResolvesLikeTheSDKs(t *testing.T) {
	cases := []struct {
		name    string
		opts    inngest.Options
		env     map[string]string
		want    string
		wantErr error
	}{
		{"explicit wins", inngest.Options{BaseURL: "http://a:1"}, map[string]string{"INNGEST_BASE_URL": "http://b:2"}, "http://a:1", nil},
		{"INNGEST_BASE_URL", inngest.Options{}, map[string]string{"INNGEST_BASE_URL": "http://b:2/", "INNGEST_API_BASE_URL": "http://c:3"}, "http://b:2", nil},
		{"INNGEST_API_BASE_URL", inngest.Options{}, map[string]string{"INNGEST_API_BASE_URL": "http://c:3", "INNGEST_DEV": "1"}, "http://c:3", nil},
		{"INNGEST_DEV as URL", inngest.Options{}, map[string]string{"INNGEST_DEV": "http://devbox:9999"}, "http://devbox:9999", nil},
		{"INNGEST_DEV true", inngest.Options{}, map[string]string{"INNGEST_DEV": "true"}, "http://localhost:8288", nil},
		{"INNGEST_DEV 1", inngest.Options{}, map[string]string{"INNGEST_DEV": "1"}, "http://localhost:8288", nil},
		{"INNGEST_DEV 0 means cloud", inngest.Options{}, map[string]string{"INNGEST_DEV": "0", "INNGEST_SIGNING_KEY": testKey, "REALTIME_CHANNEL_SECRET": testChannelSecret}, "https://api.inngest.com", nil},
		{"cloud by default", inngest.Options{}, map[string]string{"INNGEST_SIGNING_KEY": testKey, "REALTIME_CHANNEL_SECRET": testChannelSecret}, "https://api.inngest.com", nil},
		{"cloud needs a key", inngest.Options{}, nil, "", realtime.ErrNotConfigured},
		{"bad URL", inngest.Options{BaseURL: "ftp://x"}, nil, "", realtime.ErrNotConfigured},
		{"malformed key", inngest.Options{BaseURL: "http://a", SigningKey: "signkey-test-nothex"}, nil, "", realtime.ErrNotConfigured},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			opts := c.opts
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			p, err := inngest.New(&opts)
			if c.wantErr != nil {
				require.ErrorIs(t, err, c.wantErr)
				assert.NotContains(t, err.Error(), "nothex")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, c.want, p.BaseURL())
		})
	}
}

func TestInngestReadsTheProcessEnvironment(t *testing.T) {
	srv := fakeinngest.New(nil)
	defer srv.Close()
	t.Setenv("INNGEST_BASE_URL", srv.URL)
	t.Setenv("INNGEST_SIGNING_KEY", testKey)
	t.Setenv("INNGEST_ENV", "staging")
	t.Setenv("REALTIME_CHANNEL_SECRET", testChannelSecret)
	p, err := inngest.New(nil)
	require.NoError(t, err)
	defer p.Close()
	require.NoError(t, p.Publish(context.Background(), realtime.Message{Room: "r", Name: "n"}))
	assert.Equal(t, "staging", srv.Requests()[0].Header.Get("X-Inngest-Env"))
}

func TestInngestFallsBackToTheSecondKeyAndRemembersIt(t *testing.T) {
	hashedFallback, _ := transport.HashSigningKey(testFallback)
	srv := fakeinngest.New(func(_ int, r *http.Request) int {
		if r.Header.Get("Authorization") != "Bearer "+hashedFallback {
			return http.StatusUnauthorized
		}
		return 0
	})
	defer srv.Close()
	core, logs := observer.New(zap.DebugLevel)
	p := newInngest(t, srv.URL, inngest.Options{SigningKey: testKey, SigningKeyFallback: testFallback, Logger: zap.New(core)})

	msg := realtime.Message{Room: "r", Name: "n"}
	require.NoError(t, p.Publish(context.Background(), msg))
	require.NoError(t, p.Publish(context.Background(), msg))
	reqs := srv.Requests()
	require.Len(t, reqs, 3, "the refused key is tried once, then the fallback is used first")
	assert.Equal(t, 1, logs.FilterMessageSnippet("accepted the other").Len())
	for _, e := range logs.All() {
		assert.NotContains(t, fmt.Sprint(e.ContextMap()), "signkey")
	}
}

func TestInngestWrongKeyIsUnauthorizedAndNotRetried(t *testing.T) {
	srv := fakeinngest.New(func(int, *http.Request) int { return http.StatusUnauthorized })
	defer srv.Close()
	p := newInngest(t, srv.URL, inngest.Options{SigningKey: testKey, SigningKeyFallback: testFallback})
	err := p.Publish(context.Background(), realtime.Message{Room: "r", Name: "n"})
	require.ErrorIs(t, err, realtime.ErrUnauthorized)
	assert.Len(t, srv.Requests(), 2, "primary and fallback once each, no retries")
	var pe *realtime.PublishError
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, http.StatusUnauthorized, pe.StatusCode)
	assert.Equal(t, "inngest", pe.Transport)
	assertNoSecret(t, err.Error())
	assertNoSecret(t, fmt.Sprintf("%v %+v %#v %s", p, p, p, p))
}

func assertNoSecret(t *testing.T, s string) {
	t.Helper()
	for _, k := range []string{testKey, testFallback} {
		h, _ := transport.HashSigningKey(k)
		assert.NotContains(t, s, k[len("signkey-test-"):])
		assert.NotContains(t, s, h[len("signkey-test-"):])
	}
}

func TestInngestRetriesTransientFailures(t *testing.T) {
	for _, status := range []int{http.StatusServiceUnavailable, http.StatusBadGateway, http.StatusTooManyRequests, http.StatusRequestTimeout} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			srv := fakeinngest.New(func(n int, _ *http.Request) int {
				if n < 3 {
					return status
				}
				return 0
			})
			defer srv.Close()
			p := newInngest(t, srv.URL, inngest.Options{})
			require.NoError(t, p.Publish(context.Background(), realtime.Message{Room: "r", Name: "n"}))
			assert.Len(t, srv.Requests(), 3)
		})
	}
}

func TestInngestGivesUpAfterItsAttempts(t *testing.T) {
	srv := fakeinngest.New(func(int, *http.Request) int { return http.StatusServiceUnavailable })
	defer srv.Close()
	p := newInngest(t, srv.URL, inngest.Options{})
	err := p.Publish(context.Background(), realtime.Message{Room: "r", Name: "n"})
	var pe *realtime.PublishError
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, 3, pe.Attempts)
	assert.ErrorIs(t, err, realtime.ErrUnavailable)
	assert.True(t, pe.Retryable())
	assert.Contains(t, err.Error(), "after 3 attempts: status 503 Service Unavailable")
}

func TestInngestNeverRetriesOtherClientErrors(t *testing.T) {
	for _, status := range []int{http.StatusBadRequest, http.StatusNotFound, http.StatusRequestEntityTooLarge, http.StatusUnprocessableEntity} {
		srv := fakeinngest.New(func(int, *http.Request) int { return status })
		p := newInngest(t, srv.URL, inngest.Options{})
		err := p.Publish(context.Background(), realtime.Message{Room: "r", Name: "n"})
		require.ErrorIs(t, err, realtime.ErrRejected, "status %d", status)
		assert.Len(t, srv.Requests(), 1, "status %d", status)
		srv.Close()
	}
}

func TestInngestHonoursRetryAfter(t *testing.T) {
	var first atomic.Int64
	var gap atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		now := time.Now().UnixNano()
		if first.CompareAndSwap(0, now) {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		gap.Store(now - first.Load())
	}))
	defer srv.Close()
	// BaseDelay is tiny: only Retry-After can explain a long wait.
	p := newInngest(t, srv.URL, inngest.Options{Retry: &realtime.RetryPolicy{Attempts: 2, BaseDelay: time.Microsecond, MaxDelay: 5 * time.Second}})
	require.NoError(t, p.Publish(context.Background(), realtime.Message{Room: "r", Name: "n"}))
	assert.GreaterOrEqual(t, time.Duration(gap.Load()), 900*time.Millisecond, "the retry waited for Retry-After")
}

func TestInngestRetryAfterBeyondTheDeadlineFailsFast(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "30")
		w.WriteHeader(http.StatusTooManyRequests)
	}))
	defer srv.Close()
	p := newInngest(t, srv.URL, inngest.Options{Retry: &realtime.RetryPolicy{Attempts: 5, MaxDelay: time.Minute}})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := p.Publish(ctx, realtime.Message{Room: "r", Name: "n"})
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.ErrorIs(t, err, realtime.ErrUnavailable)
	assert.NoError(t, ctx.Err(), "gave up at once instead of sleeping past the deadline")
	var pe *realtime.PublishError
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, 1, pe.Attempts)
}

func TestInngestServerDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	p := newInngest(t, "http://"+addr, inngest.Options{})
	err = p.Publish(context.Background(), realtime.Message{Room: "r", Name: "n"})
	require.ErrorIs(t, err, realtime.ErrUnavailable)
	var pe *realtime.PublishError
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, 3, pe.Attempts, "network errors are retried")
	assert.Zero(t, pe.StatusCode)
}

func TestInngestAttemptTimeoutAfterSendingIsNotRetried(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body) // so the server notices the client leaving
		if calls.Add(1) == 1 {
			<-r.Context().Done() // the first try hangs after receiving it all
		}
	}))
	defer srv.Close()
	p := newInngest(t, srv.URL, inngest.Options{AttemptTimeout: 100 * time.Millisecond})
	err := p.Publish(context.Background(), realtime.Message{Room: "r", Name: "n"})
	require.ErrorIs(t, err, realtime.ErrMaybeDelivered, "the server may have delivered it: a retry could deliver twice")
	require.ErrorIs(t, err, realtime.ErrUnavailable)
	assert.NotErrorIs(t, err, context.DeadlineExceeded, "the caller's context did not end")
	assert.Contains(t, err.Error(), "attempt timeout of 100ms")
	assert.Equal(t, int32(1), calls.Load())
}

func TestInngestErrorDetailIsSanitised(t *testing.T) {
	hashed, _ := transport.HashSigningKey(testKey)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, "bad request\n\x1b[31mechoed: %s %s", r.Header.Get("Authorization"), strings.Repeat("x", 4096))
	}))
	defer srv.Close()
	p := newInngest(t, srv.URL, inngest.Options{SigningKey: testKey})
	err := p.Publish(context.Background(), realtime.Message{Room: "r", Name: "n"})
	require.ErrorIs(t, err, realtime.ErrRejected)
	assert.NotContains(t, err.Error(), hashed)
	assert.NotContains(t, err.Error(), "\x1b")
	assert.Less(t, len(err.Error()), 400)
}
