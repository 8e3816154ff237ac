package realtimetest

import "bytes"

// JSSpelling returns how JavaScript's JSON.stringify spells JSON that Go's
// encoding/json wrote: Go escapes <, >, &, U+2028 and U+2029 as \u003c,
// \u003e, \u0026, \u2028 and \u2029, where JSON.stringify writes the
// characters themselves. Everything else (number formats, other escapes) is
// spelled alike by both. A PartyKit party that relays
// JSON.stringify(await req.json()) delivers JSSpelling(envelope).
func JSSpelling(b []byte) []byte {
	if bytes.IndexByte(b, '\\') < 0 {
		return b
	}
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		if b[i] != '\\' || i+1 >= len(b) {
			out = append(out, b[i])
			continue
		}
		if b[i+1] == 'u' && i+6 <= len(b) {
			if r, ok := jsRaw[string(b[i+2:i+6])]; ok {
				out = append(out, r...)
				i += 5
				continue
			}
		}
		out = append(out, b[i], b[i+1]) // any other escape, kept whole
		i++
	}
	return out
}

var jsRaw = map[string]string{"003c": "<", "003e": ">", "0026": "&", "2028": "\u2028", "2029": "\u2029"}
