// Package textutil holds small text helpers the streaming code shares.
package textutil

import "unicode/utf8"

// CompleteRunes returns the length of the longest prefix of b that does not
// end inside a UTF-8 character, so that a character split between two reads
// or deltas is kept whole for the next one. A tail that cannot start a valid
// character is left where it is.
func CompleteRunes(b []byte) int {
	n := len(b)
	for i := n - 1; i >= 0 && i > n-utf8.UTFMax; i-- {
		c := b[i]
		if c < utf8.RuneSelf {
			return n
		}
		if utf8.RuneStart(c) {
			if utf8.FullRune(b[i:]) {
				return n
			}
			return i
		}
	}
	return n
}
