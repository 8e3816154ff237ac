package chunkstream

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/coursebuilder/realtime-go/internal/textutil"
)

var textSeeds = []string{
	"", "plain", `"quoted" \back\`, "<a href='x'>&amp;</a>", "\x00\x01\x1f\x7f\n\r\t\b\f",
	"é中😀👍🏽", "\u2028\u2029", "\xff\xfe invalid \xc3", "😀"[:3], `\ok`,
}

// FuzzEncodedLen checks the size bound that keeps envelopes under the limit
// against encoding/json, and that cutLen's pieces respect it and rejoin.
func FuzzEncodedLen(f *testing.F) {
	for _, s := range textSeeds {
		f.Add(s, 8)
	}
	f.Fuzz(func(t *testing.T, s string, limit int) {
		b, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if got, enc := encodedLen(s), len(b)-2; got < enc {
			t.Fatalf("encodedLen(%q) = %d, json encodes it in %d", s, got, enc)
		}
		limit = minBody + abs(limit)%200
		var joined strings.Builder
		for rest := []byte(s); len(rest) > 0; {
			n := cutLen(rest, limit)
			if n == 0 {
				t.Fatalf("cutLen made no progress on %q", rest)
			}
			piece := string(rest[:n])
			if e := encodedLen(piece); e > limit {
				t.Fatalf("piece %q encodes to %d > %d", piece, e, limit)
			}
			if utf8.ValidString(s) && !utf8.ValidString(piece) {
				t.Fatalf("piece %q cuts a character", piece)
			}
			joined.WriteString(piece)
			rest = rest[n:]
		}
		if joined.String() != s {
			t.Fatalf("pieces rejoin to %q, want %q", joined.String(), s)
		}
	})
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

// FuzzStreamText checks that the text-stream encoding is ASCII, survives a
// cut at any byte, and decodes to the text (invalid bytes as U+FFFD).
func FuzzStreamText(f *testing.F) {
	for _, s := range textSeeds {
		f.Add(s, 3)
	}
	f.Fuzz(func(t *testing.T, s string, cut int) {
		enc := appendStreamText(nil, []byte(s))
		for _, c := range enc {
			if c >= utf8.RuneSelf || c < 0x20 {
				t.Fatalf("encoding of %q has byte %#x", s, c)
			}
		}
		cut = abs(cut) % (len(enc) + 1)
		// What the server's chunks would carry, each valid UTF-8 on its own.
		if !utf8.Valid(enc[:cut]) || !utf8.Valid(enc[cut:]) {
			t.Fatal("a cut made invalid UTF-8")
		}
		got, err := decodeStreamText(string(enc[:cut]) + string(enc[cut:]))
		if err != nil {
			t.Fatalf("decode %q: %v", enc, err)
		}
		if want := string([]rune(s)); got != want {
			t.Fatalf("decoded %q, want %q", got, want)
		}
	})
}

// decodeStreamText is the Go decoding the package documentation gives for
// text-stream mode, as JSON.parse does it in a browser.
func decodeStreamText(data string) (string, error) {
	var s string
	err := json.Unmarshal([]byte(`"`+data+`"`), &s)
	return s, err
}

func TestCompleteRunes(t *testing.T) {
	e := "😀"
	for _, c := range []struct {
		in   string
		want int
	}{
		{"", 0}, {"abc", 3}, {"a" + e, 5}, {"a" + e[:1], 1}, {"a" + e[:2], 1}, {"a" + e[:3], 1},
		{"é"[:1], 0}, {"\xff", 1}, {"a\x80\x80\x80", 4},
	} {
		if got := textutil.CompleteRunes([]byte(c.in)); got != c.want {
			t.Errorf("textutil.CompleteRunes(%q) = %d, want %d", c.in, got, c.want)
		}
	}
}

// canContinue reports, by brute force, whether s is valid UTF-8 or the
// beginning of valid UTF-8 that some bytes would complete.
func canContinue(s string) bool {
	for k := 0; k < utf8.UTFMax && k <= len(s); k++ {
		head, tail := s[:len(s)-k], s[len(s)-k:]
		if utf8.ValidString(head) && (tail == "" || !utf8.FullRuneInString(tail)) {
			return true
		}
	}
	return false
}

// FuzzInvalidAt checks PublishChunk's UTF-8 rule against brute force:
// text is accepted after pending exactly when pending+text can still be
// valid, and otherwise the offset returned is where the first invalid
// sequence begins (0 when text does not continue pending).
func FuzzInvalidAt(f *testing.F) {
	for _, s := range textSeeds {
		f.Add("", s)
		f.Add("€"[:2], s)
	}
	f.Add("😀"[:1], "\x9f\x98")
	f.Add("€"[:1], "z")
	f.Fuzz(func(t *testing.T, pending, text string) {
		// pending is what the buffer can hold open: a proper prefix of a
		// character, or nothing.
		if pending != "" && (len(pending) >= utf8.UTFMax || utf8.FullRuneInString(pending)) {
			pending = ""
		}
		at := invalidAt([]byte(pending), text)
		if want := canContinue(pending + text); (at < 0) != want {
			t.Fatalf("invalidAt(%q, %q) = %d, want valid %v", pending, text, at, want)
		}
		if at >= 0 && (at >= len(text) || !canContinue(pending+text[:at])) {
			t.Fatalf("invalidAt(%q, %q) = %d is not where the invalid sequence begins", pending, text, at)
		}
		if c := completeRunes(text); c != textutil.CompleteRunes([]byte(text)) {
			t.Fatalf("completeRunes(%q) = %d, textutil says %d", text, c, textutil.CompleteRunes([]byte(text)))
		}
	})
}
