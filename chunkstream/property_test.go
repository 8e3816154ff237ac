package chunkstream_test

import (
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/coursebuilder/realtime-go/chunkstream"
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
// limits, transient provider failures and invalid UTF-8 offered between
// deltas (refused with ErrInvalidUTF8), the bodies in seq order,
// concatenated without the end marker, are exactly the valid text, with no
// U+FFFD; seq runs 1..n without a gap; no envelope exceeds the limit.
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

			opts := &chunkstream.Options{MaxAttempts: 4}
			limit := 0
			if rng.IntN(2) == 0 {
				limit = 90 + rng.IntN(200)
				opts.MaxMessageBytes = limit
			}
			// A script of outcomes with at most two transient failures in a
			// row, ending in success.
			var script []realtimetest.Outcome
			if rng.IntN(3) == 0 {
				for range rng.IntN(12) {
					script = append(script, realtimetest.Succeed())
					for range rng.IntN(3) {
						script = append(script, realtimetest.Fail(unavailable()))
					}
				}
				script = append(script, realtimetest.Succeed())
			}
			f := realtimetest.NewFaulty(script...)
			s, tick := newStream(t, f, opts)

			for _, d := range deltas {
				if rng.IntN(8) == 0 {
					// Bytes that no text can contain, even right after a
					// character left open: refused, and nothing else lost.
					bad := garbage[rng.IntN(len(garbage))]
					require.ErrorIs(t, s.PublishChunk(bad), chunkstream.ErrInvalidUTF8, "seed %d", seed)
				}
				require.NoError(t, s.PublishChunk(d), "seed %d", seed)
				switch rng.IntN(8) {
				case 0:
					tick() // a flush, done before the next delta
				case 1:
					// A flush that runs while the next deltas arrive.
					time.Sleep(chunkstream.DefaultInterval)
				case 2:
					runtime.Gosched()
				}
			}
			require.NoError(t, s.Close(ctxT(t)), "seed %d", seed)
			got := reassemble(t, f.Records(), true, limit)
			require.Equal(t, text, got, "seed %d", seed)
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
					time.Sleep(chunkstream.DefaultInterval)
				}
			}
			require.NoError(t, s.Close(ctxT(t)))
			var got string
			if len(p.streams) > 0 {
				require.Len(t, p.streams, 1)
				var err error
				got, err = chunkstream.DecodeStreamText(p.streams[0])
				require.NoError(t, err)
			}
			require.Equal(t, text, got, "seed %d", seed)
			require.Equal(t, "", reassemble(t, p.Records(), true, 0))
		})
	}
}
