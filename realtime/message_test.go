package realtime_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/coursebuilder/realtime-go/internal/field"
	"github.com/coursebuilder/realtime-go/internal/transport"
	"github.com/coursebuilder/realtime-go/realtime"
)

func TestEncodeIsTheEnvelopeBrowsersReceive(t *testing.T) {
	cases := []struct {
		name string
		msg  realtime.Message
		want string
	}{
		{"video ready", realtime.Message{Room: "vid_1", Name: "video.asset.ready", RequestID: "req_9", Body: map[string]any{"id": "vid_1", "status": "ready"}, ID: "m1"},
			`{"body":{"id":"vid_1","status":"ready"},"requestId":"req_9","name":"video.asset.ready","id":"m1"}`},
		{"nil body", realtime.Message{Room: "r", Name: "n", ID: "m1"}, `{"body":null,"requestId":"","name":"n","id":"m1"}`},
		{"raw body kept as is", realtime.Message{Room: "r", Name: "n", Body: json.RawMessage(`{"b":1,"a":2}`), ID: "m1"}, `{"body":{"b":1,"a":2},"requestId":"","name":"n","id":"m1"}`},
		{"text chunk", realtime.Message{Room: "chat", Name: "ai.message", RequestID: "chat", Body: `\ok`, ID: "s.3"}, `{"body":"\\ok","requestId":"chat","name":"ai.message","id":"s.3"}`},
		{"html escaped like the Inngest server re-encodes", realtime.Message{Room: "r", Name: "n", Body: "<a&b>", ID: "<id>"}, `{"body":"\u003ca\u0026b\u003e","requestId":"","name":"n","id":"\u003cid\u003e"}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := c.msg.Encode()
			require.NoError(t, err)
			assert.Equal(t, c.want, string(got))
		})
	}
}

// Every envelope has an id: a new random one outside a function run, one
// derived from the run and the message inside one (a retried step
// publishes under the same id), and the one the message gives.
func TestEveryEnvelopeHasAnID(t *testing.T) {
	msg := realtime.Message{Room: "vid_1", Name: "video.asset.ready", Body: "x"}
	a, err := realtime.NewEnvelope(context.Background(), msg)
	require.NoError(t, err)
	b, err := realtime.NewEnvelope(context.Background(), msg)
	require.NoError(t, err)
	assert.NotEmpty(t, a.Message().ID)
	assert.NotEqual(t, a.Message().ID, b.Message().ID, "outside a run, each envelope is a new message")
	got, err := realtime.DecodeEnvelope(a.Bytes())
	require.NoError(t, err)
	assert.Equal(t, a.Message().ID, got.ID, "the id is on the wire")

	given := msg
	given.ID = "video-ready-vid_1"
	c, err := realtime.NewEnvelope(context.Background(), given)
	require.NoError(t, err)
	assert.Equal(t, "video-ready-vid_1", c.Message().ID)
}

// A message to publish is numbered by the log, not by its publisher:
// NewEnvelope drops a Seq and an Epoch it was given (a received message
// published again).
func TestNewEnvelopeDropsSeqAndEpoch(t *testing.T) {
	env, err := realtime.NewEnvelope(context.Background(), realtime.Message{Room: "r", Name: "n", ID: "m1", Seq: 3, Epoch: 9})
	require.NoError(t, err)
	assert.Zero(t, env.Message().Seq)
	assert.Zero(t, env.Message().Epoch)
	assert.Equal(t, `{"body":null,"requestId":"","name":"n","id":"m1"}`, string(env.Bytes()))
}

// Sequenced adds seq and epoch last, and DecodeEnvelope reads them back.
func TestSequencedEnvelopeRoundTrip(t *testing.T) {
	env, err := realtime.NewEnvelope(context.Background(), realtime.Message{Room: "r", Name: "n", Body: 1, ID: "m1"})
	require.NoError(t, err)
	seq := env.Sequenced(42, 7)
	assert.Equal(t, `{"body":1,"requestId":"","name":"n","id":"m1","seq":42,"epoch":7}`, string(seq.Bytes()))
	assert.Equal(t, `{"body":1,"requestId":"","name":"n","id":"m1"}`, string(env.Bytes()), "the original is unchanged")
	got, err := realtime.DecodeEnvelope(seq.Bytes())
	require.NoError(t, err)
	assert.Equal(t, uint64(42), got.Seq)
	assert.Equal(t, uint64(7), got.Epoch)
	assert.Equal(t, "m1", got.ID)
	assert.Equal(t, uint64(42), seq.Message().Seq)
}

func TestValidationErrorsAreTyped(t *testing.T) {
	err := realtime.Message{Room: strings.Repeat("x", field.RoomBytes+1), Name: "n"}.Validate()
	var ve *realtime.ValidationError
	require.ErrorAs(t, err, &ve)
	assert.Equal(t, "room", ve.Field)
	assert.ErrorIs(t, err, realtime.ErrTooLong)
	assert.ErrorIs(t, err, realtime.ErrInvalidMessage)
	assert.Equal(t, "realtime: invalid message: room is too long (limit 256 bytes)", err.Error())

	err = realtime.Message{Room: "r", Name: "a\x1bb"}.Validate()
	assert.EqualError(t, err, "realtime: invalid message: name: control character")
	assert.NoError(t, realtime.Message{Room: "vidéo 1/é", Name: "video.asset.ready"}.Validate(), "rooms may hold any printable text")
}

func TestEncodeRefusesOversizeBeforeSending(t *testing.T) {
	_, err := realtime.Message{Room: "r", Name: "n", Body: strings.Repeat("a", realtime.MaxEnvelopeBytes)}.Encode()
	var tl *realtime.TooLargeError
	require.ErrorAs(t, err, &tl)
	assert.Greater(t, tl.Size, realtime.MaxEnvelopeBytes)
	assert.ErrorIs(t, err, realtime.ErrPayloadTooLarge)
}

func TestEncodeTurnsPanicsIntoErrors(t *testing.T) {
	_, err := realtime.Message{Room: "r", Name: "n", Body: []any{boom{}}}.Encode()
	assert.ErrorIs(t, err, realtime.ErrEncode)
	assert.Contains(t, err.Error(), "panic while encoding")
}

type boom struct{}

func (boom) MarshalJSON() ([]byte, error) { panic(errors.New("kaboom")) }

func TestEncodeRefusesRawJSONThatIsNotUTF8(t *testing.T) {
	_, err := realtime.Message{Room: "r", Name: "n", Body: json.RawMessage("\"\x80\"")}.Encode()
	assert.ErrorIs(t, err, realtime.ErrEncode)
	b, err := realtime.Message{Room: "r", Name: "n", Body: "\x80", ID: "m1"}.Encode()
	require.NoError(t, err, "a Go string with invalid UTF-8 is encoded with U+FFFD")
	assert.Equal(t, `{"body":"\ufffd","requestId":"","name":"n","id":"m1"}`, string(b))
}

func TestDecodeEnvelopeRoundTrip(t *testing.T) {
	in := realtime.Message{Room: "r", Name: "video.asset.errored", RequestID: "q", Body: map[string]int{"code": 3}, ID: "m1"}
	b, err := in.Encode()
	require.NoError(t, err)
	out, err := realtime.DecodeEnvelope(b)
	require.NoError(t, err)
	assert.Equal(t, in.Name, out.Name)
	assert.Equal(t, in.RequestID, out.RequestID)
	assert.Equal(t, in.ID, out.ID)
	assert.Zero(t, out.Seq, "an envelope no log numbered has no seq")
	assert.JSONEq(t, `{"code":3}`, string(out.Body.(json.RawMessage)))

	for _, bad := range []string{``, `{`, `[]`, `{"body":1}`, `{"name":"a"} {}`} {
		_, err := realtime.DecodeEnvelope([]byte(bad))
		assert.Error(t, err, "%q", bad)
	}
}

// FuzzEncode checks that Encode never panics, that what it accepts is valid
// JSON (also one level deeper, as the server decodes it) within the limit that decodes back to the same message, and that what
// it refuses is refused with a typed error.
func FuzzEncode(f *testing.F) {
	f.Add("vid_1", "video.asset.ready", "req", `{"status":"ready"}`)
	f.Add("", "n", "", `null`)
	f.Add("r\x00", "n", "", `1`)
	f.Add("r", "n\u200b", "", `"x"`)
	f.Add("r", "n", "\xff", `{`)
	// At the depth limit and one past it.
	f.Add("r", "n", "", strings.Repeat("[", realtime.MaxBodyDepth)+strings.Repeat("]", realtime.MaxBodyDepth))
	f.Add("r", "n", "", strings.Repeat(`{"[":`, realtime.MaxBodyDepth+1)+"0"+strings.Repeat("}", realtime.MaxBodyDepth+1))
	f.Fuzz(func(t *testing.T, room, name, reqID, body string) {
		msg := realtime.Message{Room: room, Name: name, RequestID: reqID, Body: json.RawMessage(body)}
		b, err := msg.Encode()
		if err != nil {
			if !errors.Is(err, realtime.ErrInvalidMessage) && !errors.Is(err, realtime.ErrEncode) && !errors.Is(err, realtime.ErrPayloadTooLarge) {
				t.Fatalf("untyped error: %v", err)
			}
			if errors.Is(err, realtime.ErrInvalidMessage) != (msg.Validate() != nil) {
				t.Fatalf("Encode and Validate disagree: %v", err)
			}
			return
		}
		if !json.Valid(b) || len(b) > realtime.MaxEnvelopeBytes || !utf8.Valid(b) {
			t.Fatalf("bad envelope %q", b)
		}
		// The Inngest server's Redis broadcaster decodes the envelope
		// inside a message object of its own.
		if !json.Valid([]byte(`{"data":` + string(b) + `}`)) {
			t.Fatalf("envelope too deep for the server: %.100q", b)
		}
		got, err := realtime.DecodeEnvelope(b)
		if err != nil {
			t.Fatal(err)
		}
		if got.Name != name || got.RequestID != reqID {
			t.Fatalf("round trip: got %q/%q want %q/%q", got.Name, got.RequestID, name, reqID)
		}
		var want, have any
		if json.Unmarshal([]byte(body), &want) != nil || json.Unmarshal(got.Body.(json.RawMessage), &have) != nil {
			t.Fatal("body does not decode")
		}
		if !jsonEqual(want, have) {
			t.Fatalf("body changed: %s -> %s", body, got.Body)
		}
	})
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

// FuzzValidateField checks the validator's contract: accepted values are
// non-empty, within the limit, valid UTF-8 and printable.
func FuzzValidateField(f *testing.F) {
	for _, s := range []string{"", "a", "vid_123", "a\nb", "\u2028", "\u00ad", "\xc3", strings.Repeat("é", 200)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		err := transport.Validate("room", s, field.RoomBytes)
		if err == nil {
			if s == "" || len(s) > field.RoomBytes || !utf8.ValidString(s) || strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
				t.Fatalf("accepted %q", s)
			}
			return
		}
		var ve *realtime.ValidationError
		if !errors.As(err, &ve) || ve.Field != "room" || !errors.Is(err, realtime.ErrInvalidMessage) {
			t.Fatalf("untyped error for %q: %v", s, err)
		}
	})
}

func TestIsPermanent(t *testing.T) {
	invalid := realtime.Message{Name: "n"}.Validate()
	_, tooLarge := realtime.Message{Room: "r", Name: "n", Body: strings.Repeat("x", realtime.MaxEnvelopeBytes)}.Encode()
	_, unencodable := realtime.Message{Room: "r", Name: "n", Body: make(chan int)}.Encode()
	for _, err := range []error{invalid, tooLarge, unencodable, transport.StatusError("inngest", 400, "", 0)} {
		assert.True(t, realtime.IsPermanent(err), "%v", err)
	}
	for _, err := range []error{nil, transport.StatusError("inngest", 503, "", 0), transport.StatusError("inngest", 401, "", 0), errors.New("other")} {
		assert.False(t, realtime.IsPermanent(err), "%v", err)
	}
}
