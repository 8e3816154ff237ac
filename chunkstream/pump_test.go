package chunkstream_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/coursebuilder/realtime-go/chunkstream"
	"github.com/coursebuilder/realtime-go/realtime/realtimetest"
)

// deltas returns a receive function for Pump over ds, then err (io.EOF
// when nil).
func deltas(err error, ds ...string) func() (string, error) {
	if err == nil {
		err = io.EOF
	}
	return func() (string, error) {
		if len(ds) == 0 {
			return "", err
		}
		d := ds[0]
		ds = ds[1:]
		return d, nil
	}
}

func TestPump(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := realtimetest.NewRecorder()
		s, _ := newStream(t, rec, nil)
		require.NoError(t, chunkstream.Pump(ctxT(t), deltas(nil, "The ", "", "answer", " is 42."), s))
		assert.Equal(t, "The answer is 42.", reassemble(t, rec.Records(), true, 0))
		assert.ErrorIs(t, s.PublishChunk("x"), chunkstream.ErrClosed)
	})
}

func TestPumpSourceFailure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := realtimetest.NewRecorder()
		s, _ := newStream(t, rec, nil)
		boom := errors.New("connection reset")
		err := chunkstream.Pump(ctxT(t), deltas(boom, "half ", "an answ"), s)
		require.ErrorIs(t, err, boom)
		assert.Equal(t, "half an answ", reassemble(t, rec.Records(), false, 0), "received text published, no end marker")
		assert.Len(t, rec.Records(), 1)
	})
}

// TestPumpWaitsForRoom: with a tiny buffer, Pump waits instead of dropping
// text, even for a delta larger than the whole buffer. Time passes (and
// the stream flushes) whenever Pump waits.
func TestPumpWaitsForRoom(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := realtimetest.NewRecorder()
		s, _ := newStream(t, rec, &chunkstream.Options{MaxBuffered: 8, Interval: 10 * time.Millisecond})
		var ds []string
		for range 50 {
			ds = append(ds, "12345")
		}
		ds = append(ds, strings.Repeat("long delta ", 10))
		require.NoError(t, chunkstream.Pump(ctxT(t), deltas(nil, ds...), s))
		assert.Equal(t, strings.Join(ds, ""), reassemble(t, rec.Records(), true, 0))
	})
}

// TestPumpSplitsALongDeltaInsideACharacter: a delta longer than
// MaxBuffered, cut where a character is split, leaves that character's first
// bytes held until the next part completes it; the next part must then fit
// beside them instead of waiting for room that never comes.
func TestPumpSplitsALongDeltaInsideACharacter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := realtimetest.NewRecorder()
		s, _ := newStream(t, rec, &chunkstream.Options{MaxBuffered: 8, Interval: 10 * time.Millisecond})
		delta := "1234567é" + strings.Repeat("abcdefgé", 3) // every 8-byte cut falls inside "é"
		require.NoError(t, chunkstream.Pump(ctxT(t), deltas(nil, delta), s))
		assert.Equal(t, delta, reassemble(t, rec.Records(), true, 0))
	})
}

func TestPumpContextEnds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := newGate()
		s, tick := newStream(t, g, &chunkstream.Options{MaxBuffered: 4})
		ctx, cancel := context.WithCancel(context.Background())
		src := deltas(nil, "1234", "5678")
		errc := make(chan error, 1)
		go func() { errc <- chunkstream.Pump(ctx, src, s) }()
		// "1234" fills the buffer and is stuck in the gate; Pump waits for room.
		tick()
		g.requireBlocked(t)
		cancel()
		err := <-errc
		assert.ErrorIs(t, err, context.Canceled)
		assert.ErrorAs(t, err, new(*chunkstream.FailedError))
		assert.Zero(t, g.Len())
	})
}
