package chunkstream

import (
	"unicode/utf8"

	"github.com/coursebuilder/realtime-go/internal/textutil"
)

// encodedLen returns an upper bound of the size of s once encoding/json has
// encoded it as a string, quotes excluded: what it adds to an envelope.
func encodedLen(s string) int {
	n := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			n += asciiLen(c)
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		n += runeLen(r, size)
		i += size
	}
	return n
}

// asciiLen is the encoded size of an ASCII byte: encoding/json escapes
// quotes, backslashes, control characters and, by default, <, > and &.
func asciiLen(c byte) int {
	switch {
	case c == '"' || c == '\\' || c == '\n' || c == '\r' || c == '\t':
		return 2
	case c < 0x20 || c == '<' || c == '>' || c == '&':
		return 6 // \u00XX
	}
	return 1
}

// runeLen is the encoded size of a decoded non-ASCII character: an invalid
// byte becomes \ufffd, and U+2028 and U+2029 are escaped.
func runeLen(r rune, size int) int {
	if (r == utf8.RuneError && size == 1) || r == '\u2028' || r == '\u2029' {
		return 6
	}
	return size
}

// cutLen returns how many bytes of b, at most, fit in limit once encoded,
// cut at a character boundary, and at least one character.
func cutLen(b []byte, limit int) int {
	n := 0
	for i := 0; i < len(b); {
		size, enc := 1, 0
		if c := b[i]; c < utf8.RuneSelf {
			enc = asciiLen(c)
		} else {
			var r rune
			r, size = utf8.DecodeRune(b[i:])
			enc = runeLen(r, size)
		}
		if n+enc > limit && i > 0 {
			return i
		}
		n += enc
		i += size
	}
	return len(b)
}

const hexDigits = "0123456789abcdef"

// appendStreamText appends b to dst as the contents of a JSON string
// literal that is pure ASCII: quotes, backslashes and control characters
// escaped, every other non-ASCII character as \uXXXX (a surrogate pair above
// U+FFFF), an invalid byte as \ufffd: what JSON.parse('"' + chunks + '"')
// decodes (see the package documentation, Text-stream mode).
func appendStreamText(dst, b []byte) []byte {
	for i := 0; i < len(b); {
		c := b[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				dst = append(dst, '\\', c)
			case c == '\n':
				dst = append(dst, '\\', 'n')
			case c == '\r':
				dst = append(dst, '\\', 'r')
			case c == '\t':
				dst = append(dst, '\\', 't')
			case c < 0x20 || c == 0x7f:
				dst = appendU(dst, rune(c))
			default:
				dst = append(dst, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRune(b[i:])
		if r > 0xffff {
			r -= 0x10000
			dst = appendU(dst, 0xd800+(r>>10))
			dst = appendU(dst, 0xdc00+(r&0x3ff))
		} else {
			dst = appendU(dst, r) // an invalid byte is RuneError, U+FFFD
		}
		i += size
	}
	return dst
}

func appendU(dst []byte, r rune) []byte {
	return append(dst, '\\', 'u', hexDigits[r>>12&0xf], hexDigits[r>>8&0xf], hexDigits[r>>4&0xf], hexDigits[r&0xf])
}

// invalidAt returns -1 when text may follow pending (the incomplete
// character at the end of the buffer, 0 to 3 bytes that begin a valid one)
// in valid UTF-8, and otherwise the offset in text where the first invalid
// sequence begins (0 when text does not continue pending). text may itself
// end with an incomplete character: the next call may complete it.
func invalidAt(pending []byte, text string) int {
	if len(pending) == 0 && utf8.ValidString(text) {
		return -1 // the common case
	}
	rest := text
	if len(pending) > 0 {
		// The character pending begins takes its next bytes from text.
		var j [utf8.UTFMax]byte
		n := copy(j[:], pending)
		n += copy(j[n:], text)
		if !utf8.FullRune(j[:n]) {
			return -1 // text is all continuation bytes, still incomplete
		}
		r, size := utf8.DecodeRune(j[:n])
		if r == utf8.RuneError && size == 1 {
			return 0
		}
		rest = text[size-len(pending):]
	}
	c := completeRunes(rest)
	if utf8.ValidString(rest[:c]) {
		return -1
	}
	off := len(text) - len(rest)
	for i := 0; i < c; {
		r, size := utf8.DecodeRuneInString(rest[i:c])
		if r == utf8.RuneError && size == 1 {
			return off + i
		}
		i += size
	}
	return off + c // unreachable: rest[:c] is invalid
}

// completeRunes is [textutil.CompleteRunes] for a string, without a copy of
// it: only its last bytes matter.
func completeRunes(s string) int {
	var tail [utf8.UTFMax - 1]byte
	k := copy(tail[:], s[max(0, len(s)-len(tail)):])
	return len(s) - k + textutil.CompleteRunes(tail[:k])
}
