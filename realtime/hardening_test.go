package realtime_test

import (
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/coursebuilder/realtime-go/realtime"
)

// nested returns a body of the given form nested depth levels deep around
// leaf, a JSON string.
func nested(form int, depth int, leaf string) any {
	switch form % 4 {
	case 0: // Go slices
		var v any = leaf
		for range depth {
			v = []any{v}
		}
		return v
	case 1: // Go maps
		var v any = leaf
		for range depth {
			v = map[string]any{"[{": v}
		}
		return v
	case 2: // raw JSON
		s, _ := json.Marshal(leaf)
		return json.RawMessage(strings.Repeat(`{"a":[`, depth/2) + strings.Repeat("[", depth%2) + string(s) + strings.Repeat("]", depth%2) + strings.Repeat(`]}`, depth/2))
	default: // a MarshalJSON of its own
		return deepJSON(depth)
	}
}

// deepJSON marshals as n nested arrays.
type deepJSON int

func (d deepJSON) MarshalJSON() ([]byte, error) {
	return []byte(strings.Repeat("[", int(d)) + strings.Repeat("]", int(d))), nil
}

// A body as deep as the server's JSON parser (and its Redis broadcaster)
// reads is sent; a deeper one, whatever its form, is refused before it is
// sent, instead of reaching subscribers as one JSON string or not at all.
func TestEncodeRefusesBodiesDeeperThanTheServerParses(t *testing.T) {
	for form, name := range []string{"slices", "maps", "raw JSON", "MarshalJSON"} {
		t.Run(name, func(t *testing.T) {
			msg := realtime.Message{Room: "r", Name: "n", Body: nested(form, realtime.MaxBodyDepth, `"[{\`)}
			b, err := msg.Encode()
			require.NoError(t, err)
			assert.True(t, json.Valid(b), "the envelope at the limit is not valid for encoding/json")
			assert.True(t, json.Valid([]byte(`{"data":`+string(b)+`}`)), "the server's Redis message at the limit is not valid")

			msg.Body = nested(form, realtime.MaxBodyDepth+1, "x")
			_, err = msg.Encode()
			require.ErrorIs(t, err, realtime.ErrEncode)
			assert.Contains(t, err.Error(), "depth limit")
			assert.Contains(t, err.Error(), strconv.Itoa(realtime.MaxBodyDepth))
			assert.True(t, realtime.IsPermanent(err))

			// Deeper than encoding/json itself reads.
			msg.Body = nested(form, 10001, "x")
			_, err = msg.Encode()
			require.ErrorIs(t, err, realtime.ErrEncode)
			assert.Contains(t, err.Error(), "depth limit")
		})
	}
}

// FuzzEncodeDepth checks, around the depth limit and with brackets and
// quotes in strings, that whatever Encode accepts encoding/json parses,
// also wrapped in the server's message object, and that it refuses only
// bodies deeper than MaxBodyDepth.
func FuzzEncodeDepth(f *testing.F) {
	f.Add(uint8(0), uint8(8), "x")
	f.Add(uint8(1), uint8(9), `"]}\`)
	f.Add(uint8(2), uint8(7), `[[[{`)
	f.Add(uint8(3), uint8(15), "")
	f.Add(uint8(2), uint8(0), `\"[`)
	f.Fuzz(func(t *testing.T, form, d uint8, leaf string) {
		depth := realtime.MaxBodyDepth - 8 + int(d%16)
		b, err := realtime.Message{Room: "r", Name: "n", Body: nested(int(form), depth, leaf)}.Encode()
		if err != nil {
			if !errors.Is(err, realtime.ErrEncode) || depth <= realtime.MaxBodyDepth {
				t.Fatalf("depth %d refused: %v", depth, err)
			}
			return
		}
		if depth > realtime.MaxBodyDepth {
			t.Fatalf("depth %d accepted", depth)
		}
		if !json.Valid(b) || !json.Valid([]byte(`{"data":`+string(b)+`}`)) {
			t.Fatalf("Encode accepted what encoding/json refuses, at depth %d", depth)
		}
	})
}
