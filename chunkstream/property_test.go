package chunkstream_test

import (
	"errors"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/coursebuilder/realtime-go/chunkstream"
	"github.com/coursebuilder/realtime-go/realtime"
	"github.com/coursebuilder/realtime-go/realtime/realtimetest"
)

// palette mixes what a completion may contain: plain ASCII, characters that
// JSON escapes or grows (quotes, backslashes, <, &, control characters,
// U+2028), multi-byte characters, and the end marker itself.
var palette = []string{
	"a", "b", "The ", "answer ", " ", "\n", "\t", `"`, `\`, "<", ">", "&", "\x01", "\u2028",
	"é", "ß", "中", "文", "😀", "👍🏽", `\ok`, "**", "```go\n", "0", "1",
}

func randomText(rng *rand.Rand) string {
	n := rng.IntN(400)
	if rng.IntN(10) == 0 {
		n = 0
	}
	var sb strings.Builder
	for range n {
		sb.WriteString(palette[rng.IntN(len(palette))])
	}
	return sb.String()
}

// randomDeltas cuts text at random byte offsets, so that some deltas end in
// the middle of a character.
func randomDeltas(rng *rand.Rand, text string) []string {
	var out []string
	for len(text) > 0 {
		n := min(len(text), 1+rng.IntN(24))
		out = append(out, text[:n])
		text = text[n:]
	}
	return out
}

// TestPropertyTextArrivesExactlyOnceInOrder: for random texts cut into
// random deltas, with flushes at random moments, small random message
// limits, invalid UTF-8 offered between deltas (refused with
// realtime.ErrInvalidUTF8) and, in some runs, one transient provider
// failure, the bodies in seq order, concatenated without the end marker,
// are exactly the valid text, with no U+FFFD; seq runs 1..n without a gap;
// no envelope exceeds the limit. A run whose provider fails at its k-th publish ends
// with a *FailedError at seq k after exactly k publishes: the text of
// seq 1..k-1 is a prefix of the valid text, and the failed message is
// never offered again, though the provider would take it.
func TestPropertyTextArrivesExactlyOnceInOrder(t *testing.T) {
	iterations := 400
	if testing.Short() {
		iterations = 50
	}
	for seed := range iterations {
		synctest.Test(t, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(seed), 0x5eed))
			text := randomText(rng)
			deltas := randomDeltas(rng, text)

			opts := &chunkstream.Options{}
			limit := 0
			if rng.IntN(2) == 0 {
				// From 11 bytes of text (a character of 6 and more) up.
				limit = overhead(t) + 11 + rng.IntN(200)
				opts.MaxMessageBytes = limit
			}
			// In a third of the runs, the failAt-th publish fails with a
			// retryable error, and every publish after it would succeed.
			failAt := 0
			var script []realtimetest.Outcome
			if rng.IntN(3) == 0 {
				failAt = 1 + rng.IntN(12)
				for range failAt - 1 {
					script = append(script, realtimetest.Succeed())
				}
				script = append(script, realtimetest.Fail(unavailable()), realtimetest.Succeed())
			}
			f := realtimetest.NewFaulty(script...)
			s, tick := newStream(t, f, opts)

			failed := func(err error) {
				t.Helper()
				require.ErrorAs(t, err, new(*chunkstream.FailedError), "seed %d", seed)
				require.NotZero(t, failAt, "seed %d: the stream failed with no failure: %v", seed, err)
			}
			for _, d := range deltas {
				if rng.IntN(8) == 0 {
					// Bytes that no text can contain, even right after a
					// character left open: refused, and nothing else lost.
					bad := garbage[rng.IntN(len(garbage))]
					if err := s.PublishChunk(bad); !errors.Is(err, realtime.ErrInvalidUTF8) {
						failed(err)
					}
				}
				if err := s.PublishChunk(d); err != nil {
					failed(err)
				}
				switch rng.IntN(8) {
				case 0:
					tick() // a flush, done before the next delta
				case 1:
					// A flush that runs while the next deltas arrive.
					time.Sleep(defaultInterval)
				case 2:
					runtime.Gosched()
				}
			}
			err := s.Close(ctxT(t))
			if err == nil {
				if failAt > 0 {
					require.Less(t, f.Calls(), failAt, "seed %d: a failed publish went unnoticed", seed)
				}
				got := reassemble(t, f.Records(), true, limit)
				require.Equal(t, text, got, "seed %d", seed)
				require.NotContains(t, got, "\uFFFD", "seed %d", seed)
				return
			}
			failed(err)
			var fe *chunkstream.FailedError
			require.ErrorAs(t, err, &fe, "seed %d", seed)
			require.ErrorIs(t, err, realtime.ErrUnavailable, "seed %d", seed)
			require.Equal(t, uint64(failAt), fe.Seq, "seed %d", seed)
			tick()
			require.Equal(t, failAt, f.Calls(), "seed %d: publishes after the failure", seed)
			got := reassemble(t, f.Records(), false, limit)
			require.True(t, strings.HasPrefix(text, got), "seed %d: %q is not a prefix of the text", seed, got)
			require.NotContains(t, got, "\uFFFD", "seed %d", seed)
		})
	}
}

// garbage is byte sequences that are invalid UTF-8 wherever they appear.
var garbage = []string{"\xff", "\xfe", "\xc0\x80", "\xf8", "a\xffb"}

// TestPropertyTextStream is the same property for text-stream mode.
func TestPropertyTextStream(t *testing.T) {
	iterations := 200
	if testing.Short() {
		iterations = 30
	}
	for seed := range iterations {
		synctest.Test(t, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(seed), 0x7e47))
			text := randomText(rng)
			p := &streamer{}
			s, tick := newStream(t, p, &chunkstream.Options{TextStream: true})
			for _, d := range randomDeltas(rng, text) {
				require.NoError(t, s.PublishChunk(d))
				switch rng.IntN(8) {
				case 0, 1:
					tick()
				case 2:
					time.Sleep(defaultInterval)
				}
			}
			require.NoError(t, s.Close(ctxT(t)))
			var got string
			if len(p.streams) > 0 {
				require.Len(t, p.streams, 1)
				var err error
				got, err = decodeStreamText(p.streams[0])
				require.NoError(t, err)
			}
			require.Equal(t, text, got, "seed %d", seed)
			require.Equal(t, "", reassemble(t, p.Records(), true, 0))
		})
	}
}
