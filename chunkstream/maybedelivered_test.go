package chunkstream_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/coursebuilder/realtime-go/broadcast"
	"github.com/coursebuilder/realtime-go/chunkstream"
	"github.com/coursebuilder/realtime-go/flags"
	"github.com/coursebuilder/realtime-go/realtime"
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

// TestFallbackMaybeDeliveredIsNeverSentAgain: over a broadcast in realtime
// mode with FallbackToLegacy, Inngest answering 503 (retryable) and
// PartyKit's answer lost after it delivered (ErrMaybeDelivered), the
// joined error is not retried: PartyKit receives the chunk exactly once
// and the stream fails with a *FailedError that names both transports.
func TestFallbackMaybeDeliveredIsNeverSentAgain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		inngest := realtimetest.NewFaulty(realtimetest.Fail(realtime.NewStatusError("inngest", 503, "", 0)))
		party := &lostAnswer{err: maybeDelivered("partykit")}
		b, err := broadcast.New(party, inngest, &broadcast.Options{Resolver: flags.Fixed(flags.Realtime), FallbackToLegacy: true})
		require.NoError(t, err)

		s, _ := newStream(t, b, &chunkstream.Options{MaxAttempts: 3})
		require.NoError(t, s.PublishChunk("first chunk"))
		err = s.Close(ctxT(t))

		var fe *chunkstream.FailedError
		require.ErrorAs(t, err, &fe)
		assert.ErrorIs(t, err, chunkstream.ErrFailed)
		assert.ErrorIs(t, err, realtime.ErrMaybeDelivered)
		assert.Equal(t, uint64(1), fe.Seq)
		assert.Equal(t, 1, fe.Attempts, "a message that may have been delivered is offered once")
		var te *broadcast.TransportError
		require.ErrorAs(t, err, &te)
		assert.Equal(t, broadcast.TransportInngest, te.Transport, "the first failure is Inngest's")

		assert.Equal(t, 1, inngest.Calls())
		recs := party.Records()
		require.Len(t, recs, 1, "PartyKit received the chunk %d times", len(recs))
		assert.Equal(t, "first chunk", body(t, recs[0].Message))
		assert.Equal(t, uint64(1), recs[0].Message.Seq)
		assert.Equal(t, err, s.PublishChunk("more"), "nothing more is accepted")
		assert.Len(t, party.Records(), 1, "not even the end marker")
	})
}

// TestFallbackBothUnavailableIsRetried: when every failure in the joined
// error is retryable (Inngest 503, PartyKit 503), the message is tried
// again, and PartyKit receives it once it recovers.
func TestFallbackBothUnavailableIsRetried(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		inngest := realtimetest.NewFaulty(realtimetest.Fail(realtime.NewStatusError("inngest", 503, "", 0)))
		party := realtimetest.NewFaulty(realtimetest.Fail(realtime.NewStatusError("partykit", 503, "", 0)), realtimetest.Succeed())
		b, err := broadcast.New(party, inngest, &broadcast.Options{Resolver: flags.Fixed(flags.Realtime), FallbackToLegacy: true})
		require.NoError(t, err)

		s, _ := newStream(t, b, nil)
		require.NoError(t, s.PublishChunk("a"))
		require.NoError(t, s.Close(ctxT(t)))
		assert.Equal(t, "a", reassemble(t, party.Records(), true, 0))
		assert.Equal(t, 3, party.Calls(), "seq 1 twice, then the end marker")
	})
}

// TestDefaultRetryableReadsTheWholeTree: DefaultRetryable retries only
// when every failure in the error tree is retryable and none may have been
// delivered, whatever the order of a join and however deep the wrapping.
func TestDefaultRetryableReadsTheWholeTree(t *testing.T) {
	u503 := func() error { return realtime.NewStatusError("inngest", 503, "", 0) }
	wrap := func(transport string, err error) error {
		return &broadcast.TransportError{Transport: transport, Mode: flags.Realtime, Err: err}
	}
	for name, c := range map[string]struct {
		err  error
		want bool
	}{
		"nil":                            {nil, false},
		"503":                            {u503(), true},
		"wrapped 503":                    {fmt.Errorf("outer: %w", wrap("inngest", u503())), true},
		"two 503s":                       {errors.Join(wrap("inngest", u503()), wrap("partykit", u503())), true},
		"503 then maybe delivered":       {errors.Join(wrap("inngest", u503()), wrap("partykit", maybeDelivered("partykit"))), false},
		"maybe delivered then 503":       {errors.Join(wrap("partykit", maybeDelivered("partykit")), wrap("inngest", u503())), false},
		"503 then rejected":              {errors.Join(u503(), realtime.NewStatusError("partykit", 400, "", 0)), false},
		"503 then plain error":           {errors.Join(u503(), io.ErrUnexpectedEOF), false},
		"multiple %w, maybe delivered":   {fmt.Errorf("%w; %w", u503(), maybeDelivered("partykit")), false},
		"multiple %w, both 503":          {fmt.Errorf("%w; %w", u503(), u503()), true},
		"bare ErrMaybeDelivered":         {errors.Join(realtime.ErrUnavailable, realtime.ErrMaybeDelivered), false},
		"retryable-looking but maybe":    {retryableErr{realtime.ErrMaybeDelivered}, false},
		"context canceled":               {context.Canceled, false},
		"network error, not sent":        {realtime.NewNetworkError("partykit", io.ErrUnexpectedEOF), true},
		"join of retryable and canceled": {errors.Join(u503(), context.Canceled), false},
	} {
		t.Run(name, func(t *testing.T) {
			assert.Equal(t, c.want, chunkstream.DefaultRetryable(c.err), "%v", c.err)
		})
	}
}

// retryableErr says it is retryable whatever it wraps.
type retryableErr struct{ err error }

func (e retryableErr) Error() string   { return "retryable: " + e.err.Error() }
func (e retryableErr) Unwrap() error   { return e.err }
func (e retryableErr) Retryable() bool { return true }

// TestCustomRetryableNeverResendsMaybeDelivered: even an Options.Retryable
// that retries everything does not send again a message that may have been
// delivered.
func TestCustomRetryableNeverResendsMaybeDelivered(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := &lostAnswer{err: maybeDelivered("test")}
		s, _ := newStream(t, p, &chunkstream.Options{Retryable: func(error) bool { return true }})
		require.NoError(t, s.PublishChunk("a"))
		err := s.Close(ctxT(t))
		require.ErrorIs(t, err, realtime.ErrMaybeDelivered)
		assert.Len(t, p.Records(), 1)
	})
}
