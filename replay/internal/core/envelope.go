package core

import (
	"encoding/json"
	"strconv"
)

// maxDepth is the deepest nesting of objects and arrays accepted, the same
// as encoding/json's, so that every envelope json.Valid accepts is accepted.
const maxDepth = 10000

// CheckEnvelope validates envelope in one pass: it must be a JSON object
// (leading whitespace allowed) whose last byte is its closing '}' and that
// has no top-level "seq" or "epoch" member, however its key is escaped. It
// accepts exactly the objects json.Valid accepts (invalid UTF-8 in strings
// included), and reports whether the object has no member.
func CheckEnvelope(envelope []byte) (empty bool, err error) {
	s := scanner{b: envelope}
	s.space()
	if s.i >= len(s.b) || s.b[s.i] != '{' {
		return false, Invalid("envelope", "not a JSON object")
	}
	members, reserved, ok := s.object(true)
	switch {
	case !ok:
		return false, Invalid("envelope", "not valid JSON (at byte "+strconv.Itoa(s.i)+")")
	case s.i != len(s.b):
		return false, Invalid("envelope", "bytes after its closing '}'")
	case reserved != "":
		return false, Invalid("envelope", "it already has a top-level "+strconv.Quote(reserved)+" member, which the log sets")
	}
	return members == 0, nil
}

// Sequenced returns a new envelope: envelope, which passed CheckEnvelope,
// with "seq":seq,"epoch":epoch added as its last members.
func Sequenced(envelope []byte, empty bool, seq, epoch uint64) []byte {
	n := len(envelope) - 1
	out := make([]byte, 0, n+len(`,"seq":,"epoch":}`)+40)
	out = append(out, envelope[:n]...)
	if !empty {
		out = append(out, ',')
	}
	out = append(out, `"seq":`...)
	out = strconv.AppendUint(out, seq, 10)
	out = append(out, `,"epoch":`...)
	out = strconv.AppendUint(out, epoch, 10)
	return append(out, '}')
}

// scanner is a recursive-descent JSON validator; i is the offset of the next
// byte, and of the offending byte when a method returns false.
type scanner struct {
	b     []byte
	i     int
	depth int
}

func (s *scanner) space() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// next returns the byte at i, or 0 at the end.
func (s *scanner) next() byte {
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

func (s *scanner) value() bool {
	switch c := s.next(); {
	case c == '{':
		_, _, ok := s.object(false)
		return ok
	case c == '[':
		return s.array()
	case c == '"':
		_, ok := s.str()
		return ok
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	case c == '-' || c >= '0' && c <= '9':
		return s.number()
	}
	return false
}

// object scans an object starting at its '{'. With top set it reports
// the first key that decodes to "seq" or "epoch".
func (s *scanner) object(top bool) (members int, reserved string, ok bool) {
	if s.depth++; s.depth > maxDepth {
		return 0, "", false
	}
	s.i++
	s.space()
	if s.next() == '}' {
		s.i++
		s.depth--
		return 0, "", true
	}
	for {
		if s.next() != '"' {
			return 0, "", false
		}
		start := s.i
		escaped, ok := s.str()
		if !ok {
			return 0, "", false
		}
		if top && reserved == "" {
			reserved = reservedKey(s.b[start:s.i], escaped)
		}
		s.space()
		if s.next() != ':' {
			return 0, "", false
		}
		s.i++
		s.space()
		if !s.value() {
			return 0, "", false
		}
		members++
		s.space()
		switch s.next() {
		case ',':
			s.i++
			s.space()
		case '}':
			s.i++
			s.depth--
			return members, reserved, true
		default:
			return 0, "", false
		}
	}
}

func (s *scanner) array() bool {
	if s.depth++; s.depth > maxDepth {
		return false
	}
	s.i++
	s.space()
	if s.next() == ']' {
		s.i++
		s.depth--
		return true
	}
	for {
		if !s.value() {
			return false
		}
		s.space()
		switch s.next() {
		case ',':
			s.i++
			s.space()
		case ']':
			s.i++
			s.depth--
			return true
		default:
			return false
		}
	}
}

// str scans a string starting at its '"' and reports whether it has an
// escape.
func (s *scanner) str() (escaped, ok bool) {
	s.i++
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			s.i++
			return escaped, true
		case c < 0x20:
			return false, false
		case c == '\\':
			escaped = true
			s.i++
			switch s.next() {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.i++
			case 'u':
				s.i++
				for range 4 {
					if !isHex(s.next()) {
						return false, false
					}
					s.i++
				}
			default:
				return false, false
			}
		default:
			s.i++
		}
	}
	return false, false
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func (s *scanner) literal(lit string) bool {
	if len(s.b)-s.i < len(lit) || string(s.b[s.i:s.i+len(lit)]) != lit {
		return false
	}
	s.i += len(lit)
	return true
}

func (s *scanner) number() bool {
	if s.next() == '-' {
		s.i++
	}
	switch c := s.next(); {
	case c == '0':
		s.i++
	case c >= '1' && c <= '9':
		s.digits()
	default:
		return false
	}
	if s.next() == '.' {
		s.i++
		if !s.digits() {
			return false
		}
	}
	if c := s.next(); c == 'e' || c == 'E' {
		s.i++
		if c := s.next(); c == '+' || c == '-' {
			s.i++
		}
		if !s.digits() {
			return false
		}
	}
	return true
}

// digits scans one or more decimal digits.
func (s *scanner) digits() bool {
	start := s.i
	for c := s.next(); c >= '0' && c <= '9'; c = s.next() {
		s.i++
	}
	return s.i > start
}

// reservedKey returns the quoted key decoded when it is "seq" or "epoch",
// the members the log adds, and "" otherwise. Only a key with an escape,
// rare in practice, is decoded.
func reservedKey(quoted []byte, escaped bool) string {
	raw := quoted[1 : len(quoted)-1]
	if escaped {
		var key string
		if json.Unmarshal(quoted, &key) != nil {
			return ""
		}
		raw = []byte(key)
	}
	switch string(raw) {
	case "seq":
		return "seq"
	case "epoch":
		return "epoch"
	}
	return ""
}
