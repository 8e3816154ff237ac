package realtime

import (
	"bytes"
	"encoding/json"
	"fmt"
	"unicode"
	"unicode/utf8"
)

// Limits enforced by [Message.Validate] and [Message.Encode].
const (
	// MaxEnvelopeBytes is the largest encoded envelope any provider sends:
	// Inngest Realtime's publish limit (512 KiB). Inngest silently truncates
	// a larger body, so the guard refuses it before a byte is sent; PartyKit
	// gets the same limit so that both transports accept the same messages.
	MaxEnvelopeBytes = 512 << 10
	// MaxRoomBytes bounds [Message.Room] and a mapped channel.
	MaxRoomBytes = 256
	// MaxNameBytes bounds [Message.Name] and a mapped topic.
	MaxNameBytes = 128
	// MaxRequestIDBytes bounds [Message.RequestID].
	MaxRequestIDBytes = 256
	// MaxBodyDepth is the deepest nesting of arrays and objects a
	// [Message.Body] may have (a scalar is 0 deep, [] is 1). Go's
	// encoding/json, which the Inngest server uses, refuses JSON nested
	// deeper than 10000 levels. The server forwards the envelope (one level
	// more than the body) as JSON only when json.Valid accepts it, and
	// otherwise quietly delivers it as one JSON string; its Redis
	// broadcaster then wraps the envelope in a message object (one level
	// more again) that it must decode, and quietly drops one it cannot.
	// So the body gets 10000 - 2 levels; Encode refuses a deeper body with
	// [ErrEncode] before anything is sent.
	MaxBodyDepth = 10000 - 2
)

// Message is one notification for the browsers watching a room: what the
// TypeScript apps pass to partyProvider.broadcastMessage today.
//
// On the wire both transports carry the same JSON envelope,
//
//	{"body":<Body>,"requestId":<RequestID>,"name":<Name>}
//
// so a UI reads the same payload from PartyKit and from Inngest Realtime.
type Message struct {
	// Room is the PartyKit room id, usually a video resource id. It selects
	// the Inngest channel through a [Mapping]. Required.
	Room string
	// Name is the event name, such as "video.asset.ready". It selects the
	// Inngest topic through a [Mapping]. Required.
	Name string
	// RequestID ties the message to the request that caused it. Optional.
	RequestID string
	// Body is the payload: any value encoding/json can encode, or a
	// json.RawMessage to send bytes as they are. Nil encodes as null.
	Body any
	// Seq numbers the message within a stream of messages (package
	// chunkstream counts from 1), so that new clients can detect gaps and
	// duplicates; clients that do not know it ignore it. Zero leaves it out:
	// the envelope then has exactly the three fields above.
	Seq uint64
}

// Validate reports the first invalid field as a [*ValidationError]: Room and
// Name must be non-empty, valid UTF-8, free of control characters and within
// [MaxRoomBytes] and [MaxNameBytes]; RequestID may be empty but obeys the same
// rules within [MaxRequestIDBytes].
func (m Message) Validate() error {
	if err := validateField("room", m.Room, MaxRoomBytes); err != nil {
		return err
	}
	if err := validateField("name", m.Name, MaxNameBytes); err != nil {
		return err
	}
	if m.RequestID == "" {
		return nil
	}
	return validateField("requestId", m.RequestID, MaxRequestIDBytes)
}

// Encode validates m and returns its envelope, or a typed error: a
// [*ValidationError], an error matching [ErrEncode] when Body cannot be
// encoded (or is a json.RawMessage that is not valid UTF-8, or is nested
// deeper than [MaxBodyDepth], whatever its form), or a
// [*TooLargeError] when the envelope exceeds [MaxEnvelopeBytes]. Every
// provider sends exactly these bytes.
//
// The bytes are those json.Marshal writes, HTML-sensitive characters escaped
// (\u003c) as the Inngest server re-encodes them anyway: Inngest Realtime
// delivers exactly these bytes. Course-builder's party relays
// JSON.stringify(await req.json()), which spells <, >, & and U+2028/U+2029
// as themselves (see realtimetest.JSSpelling) and is what browsers received
// from the TypeScript apps too; either way a browser parses the same value.
func (m Message) Encode() ([]byte, error) { return m.EncodeLimit(MaxEnvelopeBytes) }

// EncodeLimit is [Message.Encode] with another size limit, for a transport
// whose own limit differs from Inngest's [MaxEnvelopeBytes] (PartyKit's is
// larger). The [*TooLargeError] it returns names limit.
func (m Message) EncodeLimit(limit int) ([]byte, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	b, err := encodeEnvelope(m)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrEncode, err)
	}
	if len(b) > limit {
		return nil, &TooLargeError{Size: len(b), Limit: limit}
	}
	return b, nil
}

// validateField checks one identifier (a room, name, channel or topic) the way
// [Message.Validate] does and returns a [*ValidationError] naming field.
func validateField(field, v string, limit int) error {
	switch {
	case v == "":
		return &ValidationError{Field: field, Reason: ErrEmpty}
	case len(v) > limit:
		return &ValidationError{Field: field, Reason: ErrTooLong, Limit: limit}
	case !utf8.ValidString(v):
		return &ValidationError{Field: field, Reason: ErrInvalidUTF8}
	}
	for _, r := range v {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			return &ValidationError{Field: field, Reason: ErrControlCharacter}
		}
	}
	return nil
}

// DecodeEnvelope parses an envelope received from either transport. It is the
// inverse of [Message.Encode] except that Room is unknown on the wire, and
// Body comes back as the raw JSON that was sent.
func DecodeEnvelope(b []byte) (Message, error) {
	var env struct {
		Body      json.RawMessage `json:"body"`
		RequestID string          `json:"requestId"`
		Name      string          `json:"name"`
		Seq       uint64          `json:"seq"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&env); err != nil {
		return Message{}, fmt.Errorf("realtime: decode envelope: %w", err)
	}
	if dec.More() {
		return Message{}, fmt.Errorf("realtime: decode envelope: trailing data")
	}
	if env.Name == "" {
		return Message{}, fmt.Errorf("realtime: decode envelope: %w", &ValidationError{Field: "name", Reason: ErrEmpty})
	}
	return Message{Name: env.Name, RequestID: env.RequestID, Body: env.Body, Seq: env.Seq}, nil
}
