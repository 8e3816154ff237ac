package realtime

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/coursebuilder/realtime-go/internal/field"
)

// Limits enforced by [Message.Validate] and [Message.Encode].
const (
	// MaxEnvelopeBytes is the largest encoded envelope any provider sends:
	// Inngest Realtime's publish limit (512 KiB). Inngest silently truncates
	// a larger body, so the guard refuses it before a byte is sent; PartyKit
	// gets the same limit so that both transports accept the same messages.
	MaxEnvelopeBytes = 512 << 10
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
	// Room is the PartyKit room id, usually a video resource id, at most 256
	// bytes. It selects the Inngest channel. Required.
	Room string
	// Name is the event name, such as "video.asset.ready", at most 128
	// bytes. It selects the Inngest topic. Required.
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
// Name must be non-empty, valid UTF-8 and free of control and invisible
// format characters; RequestID may be empty but obeys the same rules. Their
// limits, which the channel and topic a transport maps them to obey too:
//
//	Room       256 bytes (and a channel)
//	Name       128 bytes (and a topic)
//	RequestID  256 bytes
func (m Message) Validate() error {
	if err := validateField("room", m.Room, field.RoomBytes); err != nil {
		return err
	}
	if err := validateField("name", m.Name, field.NameBytes); err != nil {
		return err
	}
	if m.RequestID == "" {
		return nil
	}
	return validateField("requestId", m.RequestID, field.RequestIDBytes)
}

// Encode validates m and returns its envelope, or a typed error: a
// [*ValidationError], an error matching [ErrEncode] when Body cannot be
// encoded (or is a json.RawMessage that is not valid UTF-8, or is nested
// deeper than [MaxBodyDepth], whatever its form), or a
// [*TooLargeError] when the envelope exceeds [MaxEnvelopeBytes]. Every
// provider sends exactly these bytes (see [NewEnvelope]).
//
// The bytes are those json.Marshal writes, HTML-sensitive characters escaped
// (\u003c) as the Inngest server re-encodes them anyway: Inngest Realtime
// delivers exactly these bytes. Course-builder's party relays
// JSON.stringify(await req.json()), which spells <, >, & and U+2028/U+2029
// as themselves (see realtimetest.JSSpelling) and is what browsers received
// from the TypeScript apps too; either way a browser parses the same value.
func (m Message) Encode() ([]byte, error) {
	env, err := NewEnvelope(m)
	if err != nil {
		return nil, err
	}
	if len(env.data) > MaxEnvelopeBytes {
		return nil, &TooLargeError{Size: len(env.data), Limit: MaxEnvelopeBytes}
	}
	return env.data, nil
}

// Envelope is a message validated and encoded once: the bytes every
// transport sends for it. A publish makes one, and [Broadcast] hands the
// same Envelope to each of its transports that is an [EnvelopePublisher],
// so that none validates or encodes the message again. It is immutable and
// safe to share between goroutines.
//
// [Broadcast]: https://pkg.go.dev/github.com/coursebuilder/realtime-go/broadcast#Broadcast
type Envelope struct {
	msg  Message
	data []byte
}

// NewEnvelope validates msg and encodes its envelope, with the errors of
// [Message.Encode] but no size limit: each transport applies its own
// before it sends (Inngest's is [MaxEnvelopeBytes], PartyKit's larger), and
// refuses a larger envelope with a [*TooLargeError] naming it.
func NewEnvelope(msg Message) (*Envelope, error) {
	if err := msg.Validate(); err != nil {
		return nil, err
	}
	b, err := encodeEnvelope(msg)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrEncode, err)
	}
	return &Envelope{msg: msg, data: b}, nil
}

// Message returns the message the envelope was made from.
func (e *Envelope) Message() Message { return e.msg }

// Bytes returns the encoded envelope. The slice is shared: do not modify it.
func (e *Envelope) Bytes() []byte { return e.data }

// validateField checks one identifier (a room, name, channel or topic) the way
// [Message.Validate] does and returns a [*ValidationError] naming field.
func validateField(name, v string, limit int) error {
	if reason := field.Check(v, limit); reason != nil {
		e := &ValidationError{Field: name, Reason: reason}
		if reason == ErrTooLong {
			e.Limit = limit
		}
		return e
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
