package realtime_test

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/coursebuilder/realtime-go/realtime"
)

// NewEnvelope is Encode without the size limit: the same bytes, the same
// validation and encoding errors, and the message it was made from.
func TestNewEnvelopeIsEncodeWithoutTheLimit(t *testing.T) {
	msg := realtime.Message{Room: "vid_1", Name: "video.asset.ready", RequestID: "r", Body: map[string]any{"a": "<b>"}, ID: "m1"}
	env, err := realtime.NewEnvelope(context.Background(), msg)
	require.NoError(t, err)
	want, err := msg.Encode()
	require.NoError(t, err)
	assert.Equal(t, want, env.Bytes())
	assert.Equal(t, msg, env.Message())

	big := realtime.Message{Room: "vid_1", Name: "n", Body: strings.Repeat("x", realtime.MaxEnvelopeBytes)}
	_, err = big.Encode()
	require.ErrorIs(t, err, realtime.ErrPayloadTooLarge)
	env, err = realtime.NewEnvelope(context.Background(), big)
	require.NoError(t, err, "each transport applies its own limit")
	assert.Greater(t, len(env.Bytes()), realtime.MaxEnvelopeBytes)

	_, err = realtime.NewEnvelope(context.Background(), realtime.Message{Room: "vid_1"})
	assert.ErrorIs(t, err, realtime.ErrEmpty)
	_, err = realtime.NewEnvelope(context.Background(), realtime.Message{Room: "vid_1", Name: "n", Body: make(chan int)})
	assert.ErrorIs(t, err, realtime.ErrEncode)
}

func TestNoopTakesEnvelopes(t *testing.T) {
	var p realtime.EnvelopePublisher = realtime.NewNoop(nil)
	env, err := realtime.NewEnvelope(context.Background(), realtime.Message{Room: "vid_1", Name: "n"})
	require.NoError(t, err)
	require.NoError(t, p.PublishEnvelope(context.Background(), env))
	assert.ErrorIs(t, p.PublishEnvelope(context.Background(), nil), realtime.ErrInvalidMessage)
	assert.ErrorIs(t, p.PublishEnvelope(context.Background(), &realtime.Envelope{}), realtime.ErrInvalidMessage)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	assert.ErrorIs(t, p.PublishEnvelope(ctx, env), context.Canceled)
}
