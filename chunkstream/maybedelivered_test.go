package chunkstream_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/coursebuilder/realtime-go/broadcast"
	"github.com/coursebuilder/realtime-go/chunkstream"
	"github.com/coursebuilder/realtime-go/flags"
	"github.com/coursebuilder/realtime-go/internal/transport"
	"github.com/coursebuilder/realtime-go/realtime"
	"github.com/coursebuilder/realtime-go/realtime/inngest"
	"github.com/coursebuilder/realtime-go/realtime/realtimetest"
)

// maybeDelivered is what a transport returns when the whole request was
// sent and no answer came: it matches ErrUnavailable and ErrMaybeDelivered.
func maybeDelivered(transport string) error {
	return &realtime.PublishError{Transport: transport, Err: errors.Join(realtime.ErrUnavailable, realtime.ErrMaybeDelivered, io.ErrUnexpectedEOF)}
}

// lostAnswer is a provider that delivers every message (to its Recorder)
// and then fails with err, as PartyKit does when the connection is reset
// after it read the request.
type lostAnswer struct {
	realtimetest.Recorder
	err error
}

func (p *lostAnswer) Publish(ctx context.Context, msg realtime.Message) error {
	if err := p.Recorder.Publish(ctx, msg); err != nil {
		return err
	}
	return p.err
}

// PublishEnvelope is the path a broadcast takes (realtime.EnvelopePublisher);
// without it the Recorder's own would be promoted and never fail.
func (p *lostAnswer) PublishEnvelope(ctx context.Context, env *realtime.Envelope) error {
	if err := p.Recorder.PublishEnvelope(ctx, env); err != nil {
		return err
	}
	return p.err
}

// TestFallbackMaybeDeliveredIsNeverSentAgain: over a broadcast in realtime
// mode with FallbackToLegacy, Inngest answering 503 and PartyKit's answer
// lost after it delivered (ErrMaybeDelivered), PartyKit receives the chunk
// exactly once and the stream fails with a *FailedError that names both
// transports.
func TestFallbackMaybeDeliveredIsNeverSentAgain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		inngest := realtimetest.NewFaulty(realtimetest.Fail(transport.StatusError("inngest", 503, "", 0)))
		party := &lostAnswer{err: maybeDelivered("partykit")}
		b, err := broadcast.New(party, inngest, &broadcast.Options{Resolver: flags.Fixed(flags.Realtime), FallbackToLegacy: true})
		require.NoError(t, err)

		s, tick := newStream(t, b, nil)
		require.NoError(t, s.PublishChunk("first chunk"))
		err = s.Close(ctxT(t))

		var fe *chunkstream.FailedError
		require.ErrorAs(t, err, &fe)
		assert.ErrorIs(t, err, realtime.ErrMaybeDelivered)
		assert.Equal(t, uint64(1), fe.Seq)
		var te *broadcast.TransportError
		require.ErrorAs(t, err, &te)
		assert.Equal(t, broadcast.TransportInngest, te.Transport, "the first failure is Inngest's")

		tick()
		assert.Equal(t, 1, inngest.Calls())
		recs := party.Records()
		require.Len(t, recs, 1, "PartyKit received the chunk %d times", len(recs))
		assert.Equal(t, "first chunk", body(t, recs[0].Message))
		assert.Equal(t, uint64(1), recs[0].Message.Seq, "the first message of the room's log")
		_, n := chunkID(t, recs[0].Message.ID)
		assert.Equal(t, uint64(1), n, "the stream's first message")
		assert.Equal(t, err, s.PublishChunk("more"), "nothing more is accepted")
		assert.Len(t, party.Records(), 1, "not even the end marker")
	})
}

// TestFallbackBothUnavailableFailsTheStream: when both transports of a
// broadcast fail with a retryable 503 (each provider already retried), the
// stream does not offer the message again, though PartyKit would take it
// now: each transport is called once and the stream fails.
func TestFallbackBothUnavailableFailsTheStream(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		inngest := realtimetest.NewFaulty(realtimetest.Fail(transport.StatusError("inngest", 503, "", 0)))
		party := realtimetest.NewFaulty(realtimetest.Fail(transport.StatusError("partykit", 503, "", 0)), realtimetest.Succeed())
		b, err := broadcast.New(party, inngest, &broadcast.Options{Resolver: flags.Fixed(flags.Realtime), FallbackToLegacy: true})
		require.NoError(t, err)

		s, tick := newStream(t, b, nil)
		require.NoError(t, s.PublishChunk("a"))
		tick()
		tick()
		err = s.Close(ctxT(t))
		var fe *chunkstream.FailedError
		require.ErrorAs(t, err, &fe)
		assert.Equal(t, uint64(1), fe.Seq)
		assert.ErrorIs(t, err, realtime.ErrUnavailable)
		assert.Len(t, failedTransports(err), 2, "%v", err)
		tick()
		assert.Equal(t, 1, inngest.Calls())
		assert.Equal(t, 1, party.Calls())
		assert.Zero(t, party.Len())
	})
}

// failedTransports returns the transports named by the
// *broadcast.TransportError values in err's tree.
func failedTransports(err error) []string {
	var out []string
	var walk func(error)
	walk = func(err error) {
		if te, ok := err.(*broadcast.TransportError); ok {
			out = append(out, te.Transport)
		}
		switch u := err.(type) {
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				walk(e)
			}
		case interface{ Unwrap() error }:
			if e := u.Unwrap(); e != nil {
				walk(e)
			}
		}
	}
	walk(err)
	return out
}

// inngestOver returns a inngest.Provider that publishes to a server for
// handler on the bubble's in-memory network, retrying under retry.
func inngestOver(t testing.TB, handler http.HandlerFunc, retry *realtime.RetryPolicy) *inngest.Provider {
	t.Helper()
	srv, client := pipeServer(t, handler)
	p, err := inngest.New(&inngest.Options{
		BaseURL:    srv.URL,
		SigningKey: "signkey-test-0123456789abcdef0123456789abcdef",
		Mapping:    inngest.Mapping{Unkeyed: true},
		HTTPClient: client,
		Retry:      retry,
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// settle lets a minute of the bubble's fake clock pass, far more than the
// backoffs of a retry policy's few attempts, and waits until the bubble is
// idle again.
func settle() {
	time.Sleep(time.Minute)
	synctest.Wait()
}

// statuses answers the n-th request (from 1) with codes[n-1], and every
// request after the last code with the last one. It counts the requests.
type statuses struct {
	codes []int
	n     atomic.Int32
}

func (s *statuses) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	n := int(s.n.Add(1))
	code := s.codes[min(n, len(s.codes))-1]
	if code != http.StatusOK {
		http.Error(w, "unavailable", code)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// TestProviderRetryIsTheOnlyRetry: a inngest.Provider, over a server that
// answers 503 then 200, delivers the chunk with exactly 2 requests, its
// own retry, and the stream adds none; over a server that always answers
// 503, the chunk costs exactly the provider's 3 attempts (not 3 per
// attempt of the stream), the stream fails, and nothing more is sent, not
// at the next flushes and not at Close.
func TestProviderRetryIsTheOnlyRetry(t *testing.T) {
	t.Run("recovers", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			h := &statuses{codes: []int{503, 200}}
			s, tick := newStream(t, inngestOver(t, h.ServeHTTP, nil), nil)
			require.NoError(t, s.PublishChunk("a"))
			tick()
			settle() // the provider's backoff
			assert.Equal(t, int32(2), h.n.Load(), "the provider's retry, and no other")
			require.NoError(t, s.Err())
			require.NoError(t, s.Close(ctxT(t)))
			assert.Equal(t, int32(3), h.n.Load(), "then one request for the end marker")
		})
	})
	t.Run("stays unavailable", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			h := &statuses{codes: []int{503}}
			retry := &realtime.RetryPolicy{Attempts: 3}
			s, tick := newStream(t, inngestOver(t, h.ServeHTTP, retry), nil)
			require.NoError(t, s.PublishChunk("a"))
			tick()
			settle() // the provider's backoffs
			err := requireErr(t, s)
			assert.Equal(t, int32(3), h.n.Load(), "the provider's 3 attempts, once")
			var fe *chunkstream.FailedError
			require.ErrorAs(t, err, &fe)
			assert.Equal(t, uint64(1), fe.Seq)
			assert.ErrorIs(t, err, realtime.ErrUnavailable)
			var pe *realtime.PublishError
			require.ErrorAs(t, err, &pe)
			assert.Equal(t, 503, pe.StatusCode)
			assert.Equal(t, 3, pe.Attempts, "the provider's error counts its attempts")

			assert.Equal(t, err, s.PublishChunk("b"))
			settle() // the flushes of a minute
			start := time.Now()
			assert.Equal(t, err, s.Close(ctxT(t)))
			assert.Zero(t, time.Since(start), "Close does not wait to try again")
			assert.Equal(t, int32(3), h.n.Load(), "nothing after the failure, not even the end marker")
		})
	})
}
