package chunkstream_test

import (
	"math/rand/v2"
	"strings"
	"testing"
	"testing/synctest"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/coursebuilder/realtime-go/chunkstream"
	"github.com/coursebuilder/realtime-go/realtime"
	"github.com/coursebuilder/realtime-go/realtime/realtimetest"
)

// TestInvalidUTF8IsRefusedAndNothingElseIsLost: a lone 0xff, in any
// position but one an earlier call left open, is refused with
// realtime.ErrInvalidUTF8, none of its text is accepted, and the stream publishes
// the valid text before and after it, without a U+FFFD.
func TestInvalidUTF8IsRefusedAndNothingElseIsLost(t *testing.T) {
	for name, bad := range map[string]string{
		"lone 0xff":                   "\xff",
		"0xff inside":                 "ab\xffcd",
		"0xff at the end":             "ab\xff",
		"stray continuation":          "\x80abc",
		"overlong":                    "\xc0\xaf",
		"surrogate":                   "\xed\xa0\x80",
		"broken character then ascii": "\xe2\x82z",
	} {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				rec := realtimetest.NewRecorder()
				s, tick := newStream(t, rec, &chunkstream.Options{MaxBuffered: 64})
				require.NoError(t, s.PublishChunk("before "))
				err := s.PublishChunk(bad)
				require.ErrorIs(t, err, realtime.ErrInvalidUTF8)
				assert.Contains(t, err.Error(), "chunkstream: ")
				require.NoError(t, s.Err(), "the stream is still healthy")
				require.NoError(t, s.PublishChunk("after"))
				tick()
				require.NoError(t, s.Close(ctxT(t)))
				got := reassemble(t, rec.Records(), true, 0)
				assert.Equal(t, "before after", got)
				assert.NotContains(t, got, "\uFFFD")
			})
		})
	}
}

// TestInvalidUTF8IsNotBuffered: refused text does not count against
// MaxBuffered.
func TestInvalidUTF8IsNotBuffered(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := realtimetest.NewRecorder()
		s, _ := newStream(t, rec, &chunkstream.Options{MaxBuffered: 4})
		for range 10 {
			require.ErrorIs(t, s.PublishChunk("\xff\xff"), realtime.ErrInvalidUTF8)
		}
		require.NoError(t, s.PublishChunk("abcd"), "the refused bytes took no room")
		require.NoError(t, s.Close(ctxT(t)))
		assert.Equal(t, "abcd", reassemble(t, rec.Records(), true, 0))
	})
}

// TestRuneSplitAcrossCallsIsDeliveredWhole: the bytes of one character
// spread over two, three or four calls, with a flush between each, arrive
// as that character; a call that does not continue the character it left
// open is refused and the character can still be completed.
func TestRuneSplitAcrossCallsIsDeliveredWhole(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := realtimetest.NewRecorder()
		s, tick := newStream(t, rec, nil)
		var want strings.Builder
		for _, r := range []string{"é", "€", "😀"} {
			want.WriteString(r)
			for i := range len(r) {
				require.NoError(t, s.PublishChunk(r[i:i+1]), "byte %d of %q", i, r)
				tick()
			}
		}
		euro := "€"
		require.NoError(t, s.PublishChunk("x"+euro[:1]))
		require.ErrorIs(t, s.PublishChunk("y"), realtime.ErrInvalidUTF8, "the open character must be continued")
		require.ErrorIs(t, s.PublishChunk(euro[1:2]+"\xff"), realtime.ErrInvalidUTF8)
		require.NoError(t, s.PublishChunk(euro[1:]+"y"))
		want.WriteString("x€y")
		require.NoError(t, s.Close(ctxT(t)))
		got := reassemble(t, rec.Records(), true, 0)
		assert.Equal(t, want.String(), got)
		assert.NotContains(t, got, "\uFFFD")
	})
}

// TestIncompleteCharacterAtCloseIsNotPublished: text that ends inside a
// character publishes everything but those bytes, never U+FFFD.
func TestIncompleteCharacterAtCloseIsNotPublished(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		for _, textStream := range []bool{false, true} {
			p := &streamer{}
			s, _ := newStream(t, p, &chunkstream.Options{TextStream: textStream, MaxBuffered: 8})
			require.NoError(t, s.PublishChunk("ok"+"😀"[:3]))
			require.NoError(t, s.Close(ctxT(t)))
			got := reassemble(t, p.Records(), true, 0)
			if textStream {
				require.Len(t, p.streams, 1)
				var err error
				got, err = decodeStreamText(p.streams[0])
				require.NoError(t, err)
			}
			assert.Equal(t, "ok", got, "text stream %v", textStream)
		}
	})
}

// TestUFFFDInTheInputIsPublished: U+FFFD is valid text and goes through.
func TestUFFFDInTheInputIsPublished(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := realtimetest.NewRecorder()
		s, _ := newStream(t, rec, nil)
		require.NoError(t, s.PublishChunk("a\uFFFDb"))
		require.NoError(t, s.Close(ctxT(t)))
		assert.Equal(t, "a\uFFFDb", reassemble(t, rec.Records(), true, 0))
	})
}

// TestRefusedCallKeepsTheHalfCharacterBeforeIt: a character split across
// calls survives a refused call between its halves; the published text is
// exactly the accepted calls joined, here a U+FFFD the caller sent in two
// parts.
func TestRefusedCallKeepsTheHalfCharacterBeforeIt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := realtimetest.NewRecorder()
		s, _ := newStream(t, rec, nil)
		require.NoError(t, s.PublishChunk("000\xef"))
		require.ErrorIs(t, s.PublishChunk("\xff"), realtime.ErrInvalidUTF8)
		require.NoError(t, s.PublishChunk("\xbf\xbd"))
		require.NoError(t, s.Close(ctxT(t)))
		assert.Equal(t, "000\uFFFD", reassemble(t, rec.Records(), true, 0))
	})
}

// TestPumpRefusesInvalidUTF8: a delta that is not valid UTF-8 ends the
// pump with realtime.ErrInvalidUTF8; what came before is published,
// nothing of that delta is.
func TestPumpRefusesInvalidUTF8(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := realtimetest.NewRecorder()
		s, _ := newStream(t, rec, &chunkstream.Options{MaxBuffered: 4})
		err := chunkstream.Pump(ctxT(t), deltas(nil, "ok", "long text\xff"), s)
		require.ErrorIs(t, err, realtime.ErrInvalidUTF8)
		assert.Equal(t, "ok", reassemble(t, rec.Records(), false, 0))
	})
}

// FuzzPublishChunk: whatever the bytes and however they are cut into
// calls, the stream publishes exactly the text of the calls it accepted
// (so never a U+FFFD those calls did not hold), and accepts every call of
// a valid text. The accepted calls can join into a U+FFFD the whole input
// never held contiguously: a refused call between the two halves of
// "\xef\xbf\xbd" leaves them adjacent, which is what the caller sent.
func FuzzPublishChunk(f *testing.F) {
	for _, s := range []string{"", "plain", "é中😀👍🏽", "\xff", "ab\xffcd", "😀"[:3], "\xe2\x82z", "a\uFFFDb", "\xed\xa0\x80"} {
		f.Add(s, uint64(1))
	}
	f.Fuzz(func(t *testing.T, text string, seed uint64) {
		synctest.Test(t, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 3))
			rec := realtimetest.NewRecorder()
			s, tick := newStream(t, rec, nil)
			var accepted strings.Builder
			for rest := text; rest != ""; {
				n := min(len(rest), 1+rng.IntN(6))
				err := s.PublishChunk(rest[:n])
				switch {
				case err == nil:
					accepted.WriteString(rest[:n])
				case utf8.ValidString(text):
					t.Fatalf("valid text %q: PublishChunk(%q): %v", text, rest[:n], err)
				default:
					require.ErrorIs(t, err, realtime.ErrInvalidUTF8)
				}
				rest = rest[n:]
				if rng.IntN(3) == 0 {
					tick()
				}
			}
			require.NoError(t, s.Close(ctxT(t)))
			got := reassemble(t, rec.Records(), true, 0)
			want := accepted.String()
			// An incomplete character at the very end is not published.
			for !utf8.ValidString(want) {
				want = want[:len(want)-1]
			}
			require.Equal(t, want, got)
			if utf8.ValidString(text) {
				require.Equal(t, text, got)
			}
		})
	})
}
