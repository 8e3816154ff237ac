package textutil

import (
	"testing"
	"unicode/utf8"
)

func TestCompleteRunes(t *testing.T) {
	euro := []byte("€") // 3 bytes
	for _, c := range []struct {
		in   []byte
		want int
	}{
		{nil, 0},
		{[]byte("abc"), 3},
		{append([]byte("a"), euro...), 4},
		{append([]byte("a"), euro[:2]...), 1},
		{append([]byte("a"), euro[:1]...), 1},
		{[]byte{'a', 0xff}, 2}, // not a character start: left in place
	} {
		if got := CompleteRunes(c.in); got != c.want {
			t.Errorf("CompleteRunes(%q) = %d, want %d", c.in, got, c.want)
		}
	}
}

func FuzzCompleteRunes(f *testing.F) {
	f.Add([]byte("h€llo"))
	f.Fuzz(func(t *testing.T, b []byte) {
		n := CompleteRunes(b)
		if n < 0 || n > len(b) || len(b)-n >= utf8.UTFMax {
			t.Fatalf("CompleteRunes(%q) = %d", b, n)
		}
		if utf8.Valid(b) && n != len(b) {
			t.Fatalf("valid UTF-8 %q cut at %d", b, n)
		}
	})
}
