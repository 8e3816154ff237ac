package realtime

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// envelope is the wire form of a [Message]: the three fields browsers read
// today, then the id; a replay log adds seq and epoch after it (see
// withMembers).
type envelope struct {
	Body      any    `json:"body"`
	RequestID string `json:"requestId"`
	Name      string `json:"name"`
}

// envelopeWithID is envelope with its id.
type envelopeWithID struct {
	Body      any    `json:"body"`
	RequestID string `json:"requestId"`
	Name      string `json:"name"`
	ID        string `json:"id"`
}

// encodeEnvelope returns the envelope of m, with its id when withID is set,
// as json.Marshal writes it, or the reason it refuses to send it:
// encoding/json's error, a body nested deeper than MaxBodyDepth, or a body
// whose own JSON is not valid UTF-8.
func encodeEnvelope(m Message, withID bool) ([]byte, error) {
	var v any = envelope{Body: m.Body, RequestID: m.RequestID, Name: m.Name}
	if withID {
		v = envelopeWithID{Body: m.Body, RequestID: m.RequestID, Name: m.Name, ID: m.ID}
	}
	b, err := marshal(v)
	if err != nil {
		if tooDeepError(err) {
			// A json.RawMessage or MarshalJSON of the body's is deeper
			// than encoding/json reads; its own message does not say why.
			return nil, errBodyTooDeep{}
		}
		return nil, err
	}
	// The envelope is one level more than the body.
	if tooDeep(b, MaxBodyDepth+1) {
		return nil, errBodyTooDeep{}
	}
	if !utf8.Valid(b) {
		// Only a body with its own JSON can get here (encoding/json turns
		// invalid UTF-8 in Go strings into U+FFFD, and Validate checked
		// the other fields): the transports would deliver it differently,
		// or replace it.
		return nil, errBodyNotUTF8{}
	}
	return b, nil
}

// marshal encodes v, turning a panicking MarshalJSON into an error so that no
// panic reaches a caller.
func marshal(v any) (b []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			b, err = nil, fmt.Errorf("panic while encoding: %v", r)
		}
	}()
	return json.Marshal(v)
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

// withMembers returns the JSON object b with members, one or more
// "name":value pairs written as JSON, added last. b is not changed.
func withMembers(b []byte, members string) []byte {
	out := make([]byte, 0, len(b)+len(members)+1)
	out = append(out, b[:len(b)-1]...)
	out = append(out, ',')
	out = append(out, members...)
	return append(out, '}')
}

// quote returns s as a JSON string, as encoding/json writes it.
func quote(s string) string {
	b, _ := json.Marshal(s) // a string always encodes
	return string(b)
}
