package realtime

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"

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
//	{"body":<Body>,"requestId":<RequestID>,"name":<Name>,"id":<ID>,"seq":<Seq>,"epoch":<Epoch>}
//
// so a UI reads the same payload from PartyKit and from Inngest Realtime. The
// first three fields are those browsers read today; a client that ignores the
// others sees no difference. id is always there; seq and epoch are there when
// a replay log numbered the message (broadcast.Broadcast does), so that a
// client can see a gap, ask for what it missed and drop what it saw already.
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
	// ID identifies the message, at most 128 bytes: a publish under an id
	// the room's replay log holds already is the same message, stored once
	// and shown once. Optional: [NewEnvelope] gives a message without one
	// an id derived from the Inngest function run and the message when ctx
	// comes from [Middleware] (so a retried step publishes under the same
	// id), and a new random one otherwise.
	ID string
	// Seq is the message's position in its room, 1 for the first message of
	// an epoch and one more for each next one, across every instance of the
	// app. The replay log sets it; a received message carries it
	// ([DecodeEnvelope]). [NewEnvelope] ignores it: a message published
	// again is numbered by the log again (or, under an id the log holds,
	// keeps its first number).
	Seq uint64
	// Epoch names the room's numbering: a seq is comparable only with
	// seqs of the same epoch. Set with Seq.
	Epoch uint64
}

// Validate reports the first invalid field as a [*ValidationError]: Room and
// Name must be non-empty, valid UTF-8 and free of control and invisible
// format characters; RequestID may be empty but obeys the same rules. Their
// limits, which the channel and topic a transport maps them to obey too:
//
//	Room       256 bytes (and a channel)
//	Name       128 bytes (and a topic)
//	RequestID  256 bytes
//	ID         128 bytes
func (m Message) Validate() error {
	if err := validateField("room", m.Room, field.RoomBytes); err != nil {
		return err
	}
	if err := validateField("name", m.Name, field.NameBytes); err != nil {
		return err
	}
	if m.RequestID != "" {
		if err := validateField("requestId", m.RequestID, field.RequestIDBytes); err != nil {
			return err
		}
	}
	if m.ID != "" {
		if err := validateField("id", m.ID, field.IDBytes); err != nil {
			return err
		}
	}
	return nil
}

// Encode validates m and returns its envelope (with a new random id when m
// has none; see [NewEnvelope]), or a typed error: a
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
	env, err := NewEnvelope(context.Background(), m)
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
//
// A message without an ID gets one: inside an Inngest function run whose
// ctx comes from [Middleware], one derived from the run and the message's
// room, name, request id and body, so that a retried step publishes its
// message under the same id and the replay log keeps it once; otherwise a
// new random one (a UUIDv7).
func NewEnvelope(ctx context.Context, msg Message) (*Envelope, error) {
	if err := msg.Validate(); err != nil {
		return nil, err
	}
	msg.Seq, msg.Epoch = 0, 0
	run, inRun := runID(ctx)
	if msg.ID == "" && !inRun {
		msg.ID = randomID()
	}
	if msg.ID != "" {
		b, err := encodeEnvelope(msg, true)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrEncode, err)
		}
		return &Envelope{msg: msg, data: b}, nil
	}
	// In a run, the id is derived from the envelope without it.
	b, err := encodeEnvelope(msg, false)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrEncode, err)
	}
	msg.ID = runMessageID(run, msg.Room, b)
	return &Envelope{msg: msg, data: withMembers(b, `"id":`+quote(msg.ID))}, nil
}

// Sequenced returns the envelope numbered by a replay log: its message
// with seq and epoch, and its bytes with "seq" and "epoch" added last, the
// bytes a log stores and a catch-up request returns.
func (e *Envelope) Sequenced(seq, epoch uint64) *Envelope {
	msg := e.msg
	msg.Seq, msg.Epoch = seq, epoch
	b := make([]byte, 0, len(e.data)+len(`,"seq":,"epoch":`)+40)
	b = append(b, e.data[:len(e.data)-1]...)
	b = append(b, `,"seq":`...)
	b = strconv.AppendUint(b, seq, 10)
	b = append(b, `,"epoch":`...)
	b = strconv.AppendUint(b, epoch, 10)
	return &Envelope{msg: msg, data: append(b, '}')}
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
		ID        string          `json:"id"`
		Seq       uint64          `json:"seq"`
		Epoch     uint64          `json:"epoch"`
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
	return Message{Name: env.Name, RequestID: env.RequestID, Body: env.Body, ID: env.ID, Seq: env.Seq, Epoch: env.Epoch}, nil
}
