package realtime

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// appendEnvelope appends the envelope of m to dst, byte for byte what
// json.Marshal(envelope{...}) writes, without reflection on the envelope and,
// for the bodies notifications carry (strings, numbers, booleans, nil and
// maps and slices of them), without encoding/json at all. Any other body is
// encoded by encoding/json. A fuzz test holds the two encodings equal.
func appendEnvelope(dst []byte, m Message) ([]byte, error) {
	dst = append(dst, `{"body":`...)
	dst, err := appendBody(dst, m.Body)
	if err != nil {
		return nil, err
	}
	dst = append(dst, `,"requestId":`...)
	dst = appendString(dst, m.RequestID)
	dst = append(dst, `,"name":`...)
	dst = appendString(dst, m.Name)
	if m.Seq != 0 {
		dst = append(dst, `,"seq":`...)
		dst = strconv.AppendUint(dst, m.Seq, 10)
	}
	return append(dst, '}'), nil
}

// errBodyNotUTF8 is the reason a body whose own JSON (a json.RawMessage or a
// MarshalJSON) is not valid UTF-8 is refused.
type errBodyNotUTF8 struct{}

func (errBodyNotUTF8) Error() string { return "the body's JSON is not valid UTF-8" }

// errBodyTooDeep is the reason a body nested deeper than MaxBodyDepth is
// refused.
type errBodyTooDeep struct{}

func (errBodyTooDeep) Error() string {
	return "the body is nested deeper than " + strconv.Itoa(MaxBodyDepth) +
		" levels of arrays and objects (the depth limit: the Inngest server's JSON parser refuses more than 10000 levels, and envelope and server add 2)"
}

// appendBody appends the JSON of v, through the fast path when it can and
// through encoding/json otherwise.
func appendBody(dst []byte, v any) ([]byte, error) {
	// The fast path nests at most maxFastDepth+1 levels, far below
	// MaxBodyDepth: only what encoding/json writes needs the depth scan.
	if out, ok := appendValue(dst, v, 0); ok {
		return out, nil
	}
	if raw, ok := v.(json.RawMessage); ok && tooDeep(raw, MaxBodyDepth) {
		// Before encoding/json, which refuses it too past 10000 levels,
		// but with a message that does not say why.
		return nil, errBodyTooDeep{}
	}
	b, err := marshal(v)
	if err != nil {
		if tooDeepError(err) {
			// A MarshalJSON of the body's wrote JSON deeper than
			// encoding/json reads.
			return nil, errBodyTooDeep{}
		}
		return nil, err
	}
	if tooDeep(b, MaxBodyDepth) {
		return nil, errBodyTooDeep{}
	}
	if !utf8.Valid(b) {
		// Only a body with its own JSON can get here (encoding/json turns
		// invalid UTF-8 in Go strings into U+FFFD): the transports would
		// deliver it differently, or replace it.
		return nil, errBodyNotUTF8{}
	}
	return append(dst, b...), nil
}

// tooDeep reports whether the JSON in b nests arrays and objects more than
// limit levels deep. It counts brackets outside strings and checks nothing
// else, so it is a cheap pass over bytes encoding/json wrote.
func tooDeep(b []byte, limit int) bool {
	depth := 0
	for i := 0; i < len(b); i++ {
		switch b[i] {
		case '"':
			// Skip the string: to the first quote after it that an even
			// run of backslashes precedes.
			for {
				j := bytes.IndexByte(b[i+1:], '"')
				if j < 0 {
					return false
				}
				i += 1 + j
				k := i
				for k > 0 && b[k-1] == '\\' {
					k--
				}
				if (i-k)%2 == 0 {
					break
				}
			}
		case '[', '{':
			if depth++; depth > limit {
				return true
			}
		case ']', '}':
			depth--
		}
	}
	return false
}

// tooDeepError reports whether err is encoding/json's refusal of JSON
// nested deeper than it reads.
func tooDeepError(err error) bool {
	var syntax *json.SyntaxError
	return errors.As(err, &syntax) && strings.HasSuffix(syntax.Error(), "exceeded max depth")
}

// maxFastDepth bounds the nesting the fast path follows; deeper values, and
// cyclic ones, go to encoding/json, which reports cycles.
const maxFastDepth = 32

// appendValue appends v as encoding/json would and reports true, or reports
// false, leaving dst's content past its length undefined, when v is of a
// type it does not handle or a value encoding/json refuses (NaN, ±Inf).
func appendValue(dst []byte, v any, depth int) ([]byte, bool) {
	switch x := v.(type) {
	case nil:
		return append(dst, "null"...), true
	case string:
		return appendString(dst, x), true
	case bool:
		return strconv.AppendBool(dst, x), true
	case float64:
		return appendFloat(dst, x, 64)
	case float32:
		return appendFloat(dst, float64(x), 32)
	case int:
		return strconv.AppendInt(dst, int64(x), 10), true
	case int8:
		return strconv.AppendInt(dst, int64(x), 10), true
	case int16:
		return strconv.AppendInt(dst, int64(x), 10), true
	case int32:
		return strconv.AppendInt(dst, int64(x), 10), true
	case int64:
		return strconv.AppendInt(dst, x, 10), true
	case uint:
		return strconv.AppendUint(dst, uint64(x), 10), true
	case uint8:
		return strconv.AppendUint(dst, uint64(x), 10), true
	case uint16:
		return strconv.AppendUint(dst, uint64(x), 10), true
	case uint32:
		return strconv.AppendUint(dst, uint64(x), 10), true
	case uint64:
		return strconv.AppendUint(dst, x, 10), true
	case []string:
		return appendArray(dst, x, depth, appendStringValue)
	case map[string]string:
		return appendObject(dst, x, depth, appendStringValue)
	}
	if depth >= maxFastDepth {
		return dst, false
	}
	switch x := v.(type) {
	case []any:
		return appendArray(dst, x, depth+1, appendValue)
	case map[string]any:
		return appendObject(dst, x, depth+1, appendValue)
	}
	return dst, false
}

// appendStringValue is appendString in appendValue's shape.
func appendStringValue(dst []byte, s string, _ int) ([]byte, bool) {
	return appendString(dst, s), true
}

// appendArray appends xs as a JSON array of its elements' encodings, or
// null when xs is nil, as encoding/json does.
func appendArray[V any](dst []byte, xs []V, depth int, elem func([]byte, V, int) ([]byte, bool)) ([]byte, bool) {
	if xs == nil {
		return append(dst, "null"...), true
	}
	dst = append(dst, '[')
	for i, x := range xs {
		if i > 0 {
			dst = append(dst, ',')
		}
		var ok bool
		if dst, ok = elem(dst, x, depth); !ok {
			return dst, false
		}
	}
	return append(dst, ']'), true
}

// appendObject appends m as a JSON object with its keys sorted, or null
// when m is nil, as encoding/json does.
func appendObject[V any](dst []byte, m map[string]V, depth int, elem func([]byte, V, int) ([]byte, bool)) ([]byte, bool) {
	if m == nil {
		return append(dst, "null"...), true
	}
	var buf [16]string
	dst = append(dst, '{')
	for i, k := range sortedKeys(buf[:0], m) {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendString(dst, k)
		dst = append(dst, ':')
		var ok bool
		if dst, ok = elem(dst, m[k], depth); !ok {
			return dst, false
		}
	}
	return append(dst, '}'), true
}

// sortedKeys appends the keys of m to keys in encoding/json's order.
func sortedKeys[V any](keys []string, m map[string]V) []string {
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// appendFloat formats f as encoding/json's float encoder does for the given
// bit size, and reports false for NaN and infinities, which it refuses.
func appendFloat(dst []byte, f float64, bits int) ([]byte, bool) {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return dst, false
	}
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 {
		if bits == 64 && (abs < 1e-6 || abs >= 1e21) || bits == 32 && (float32(abs) < 1e-6 || float32(abs) >= 1e21) {
			format = 'e'
		}
	}
	dst = strconv.AppendFloat(dst, f, format, -1, bits)
	if format == 'e' {
		// Clean up e-09 to e-9, as encoding/json does.
		n := len(dst)
		if n >= 4 && dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
			dst[n-2] = dst[n-1]
			dst = dst[:n-1]
		}
	}
	return dst, true
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string the way encoding/json does with
// HTML escaping on: <, > and & as \u003c, \u003e and \u0026, U+2028 and
// U+2029 escaped, control characters escaped, invalid UTF-8 as \ufffd.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' && b != '<' && b != '>' && b != '&' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '\\', '"':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
			}
			i++
			start = i
			continue
		}
		c, size := utf8.DecodeRuneInString(s[i:])
		if c == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if c == '\u2028' || c == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[c&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
