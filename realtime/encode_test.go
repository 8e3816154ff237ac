package realtime_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/coursebuilder/realtime-go/internal/field"
	"github.com/coursebuilder/realtime-go/realtime"
)

// reference is the envelope as encoding/json writes it: the definition that
// Message.Encode must match byte for byte.
func reference(m realtime.Message) ([]byte, error) {
	return json.Marshal(struct {
		Body      any    `json:"body"`
		RequestID string `json:"requestId"`
		Name      string `json:"name"`
		ID        string `json:"id"`
	}{m.Body, m.RequestID, m.Name, m.ID})
}

// placeholderID is as long as the random id a message without one gets.
const placeholderID = "00000000-0000-0000-0000-000000000000"

// requireSameAsEncodingJSON checks Encode against reference. A message
// without an id is compared with the id Encode gave it.
func requireSameAsEncodingJSON(t *testing.T, m realtime.Message) {
	t.Helper()
	got, err := m.Encode()
	ref := m
	if m.ID == "" {
		ref.ID = placeholderID
		if err == nil {
			dec, derr := realtime.DecodeEnvelope(got)
			require.NoError(t, derr)
			require.Len(t, dec.ID, len(placeholderID), "a random id is a UUID")
			ref.ID = dec.ID
		}
	}
	want, refErr := reference(ref)
	switch {
	case m.Validate() != nil:
		require.ErrorIs(t, err, realtime.ErrInvalidMessage)
	case refErr != nil:
		require.ErrorIs(t, err, realtime.ErrEncode, "encoding/json refused it: %v", refErr)
	case !utf8.Valid(want):
		// A body with its own JSON that is not UTF-8: Encode refuses it
		// where encoding/json passes it on.
		require.ErrorIs(t, err, realtime.ErrEncode)
	case len(want) > realtime.MaxEnvelopeBytes:
		require.ErrorIs(t, err, realtime.ErrPayloadTooLarge)
	default:
		require.NoError(t, err)
		require.Equal(t, string(want), string(got), "body %#v", m.Body)
	}
}

type point struct {
	X, Y float64
	Tag  string `json:"tag,omitempty"`
}

func TestEncodeMatchesEncodingJSON(t *testing.T) {
	tricky := "<a href=\"x\">&amp;</a> \\ \b\f\n\r\t\x00\x1f\x7f é中😀 \u2028\u2029 \xff\xc3"
	bodies := []any{
		nil, "", tricky, true, false,
		0.0, math.Copysign(0, -1), 1.0, -1.5, 0.1, 1e20, 1e21, 1e-6, 1e-7, 123456789.123, math.MaxFloat64, math.SmallestNonzeroFloat64,
		float32(0.1), float32(1e21), float32(1e-7), float32(3.4e38),
		0, -1, math.MaxInt64, math.MinInt64, int8(-8), int16(16), int32(-32), uint(7), uint8(8), uint16(16), uint32(32), uint64(math.MaxUint64),
		[]string(nil), []string{}, []string{"a", tricky},
		map[string]string(nil), map[string]string{}, map[string]string{"b": "2", "a": "1", tricky: tricky, "": ""},
		map[string]any(nil), map[string]any{}, []any(nil), []any{},
		map[string]any{"id": "vid_1", "status": "ready", "duration": 93.4, "n": nil, "ok": true, "tags": []any{"a", 1, 2.5, nil}},
		map[string]any{"z": map[string]any{"y": []any{map[string]any{"x": []string{"w"}}}}},
		map[string]any{"k01": 1, "k02": 2, "k03": 3, "k04": 4, "k05": 5, "k06": 6, "k07": 7, "k08": 8, "k09": 9,
			"k10": 10, "k11": 11, "k12": 12, "k13": 13, "k14": 14, "k15": 15, "k16": 16, "k17": 17},
		// Structs, bytes, raw JSON and other maps, alone and nested.
		point{1, 2, "<b>"}, &point{X: 1}, (*point)(nil), []byte("bytes"), json.RawMessage(` { "a" : [1, 2] , "b":"<" } `),
		json.RawMessage(nil), json.Number("12.5"), map[string]any{"p": point{3, 4, ""}}, []any{1, point{}},
		map[int]string{2: "b", 1: "a"}, []int{1, 2},
		// Values encoding/json refuses, alone and nested.
		math.NaN(), math.Inf(1), float32(math.Inf(-1)), map[string]any{"a": math.NaN()}, []any{"x", math.Inf(1)}, make(chan int),
		json.RawMessage(`{`), json.RawMessage("\"\xff\""),
	}
	for _, body := range bodies {
		for _, id := range []string{"", "id-1", "<&>\u2028 é中", strings.Repeat("i", field.IDBytes)} {
			requireSameAsEncodingJSON(t, realtime.Message{Room: "r", Name: "video.asset.ready", RequestID: "req <&>", Body: body, ID: id})
		}
	}
	requireSameAsEncodingJSON(t, realtime.Message{Room: "r", Name: "n\u2028&", Body: "x"})
}

func TestEncodeDeepAndCyclicBodies(t *testing.T) {
	deep := any("leaf")
	for range 100 {
		deep = map[string]any{"d": []any{deep}}
	}
	requireSameAsEncodingJSON(t, realtime.Message{Room: "r", Name: "n", Body: deep})

	cyclic := map[string]any{}
	cyclic["self"] = cyclic
	_, err := realtime.Message{Room: "r", Name: "n", Body: cyclic}.Encode()
	assert.ErrorIs(t, err, realtime.ErrEncode)
}

// FuzzEncodeMatchesEncodingJSON builds bodies of many shapes (scalars, maps,
// slices, raw JSON, structs) from fuzzed strings and numbers, and checks
// Encode against encoding/json.
func FuzzEncodeMatchesEncodingJSON(f *testing.F) {
	f.Add(uint8(0), "<&>\u2028", "\xff\x00", 0.1, int64(-7), uint64(3))
	f.Add(uint8(4), "id", "status", 1e21, int64(math.MaxInt64), uint64(0))
	f.Add(uint8(9), `{"a":1}`, "b", 1e-7, int64(0), uint64(math.MaxUint64))
	f.Fuzz(func(t *testing.T, shape uint8, s1, s2 string, fl float64, i int64, seq uint64) {
		var body any
		switch shape % 13 {
		case 0:
			body = s1
		case 1:
			body = fl
		case 2:
			body = float32(fl)
		case 3:
			body = i
		case 4:
			body = map[string]any{s1: s2, s2: fl, "n": nil, "b": i%2 == 0, "arr": []any{s1, i, fl, float32(fl), uint64(i)}}
		case 5:
			body = map[string]string{s1: s2, "x": s1}
		case 6:
			body = []string{s1, s2}
		case 7:
			body = map[string]any{"a": map[string]any{s1: []any{map[string]any{s2: fl}, []string{s1}, map[string]string{s2: s1}}}}
		case 8:
			body = nil
		case 9:
			body = json.RawMessage(s1)
		case 10:
			body = point{fl, float64(i), s1}
		case 11:
			body = []any{int(i), int32(i), int16(i), int8(i), uint(seq), uint32(seq), uint16(seq), uint8(seq), s2}
		default:
			body = map[string]any{s1: map[string]any(nil), s2: []any(nil), "s": []string(nil), "m": map[string]string(nil)}
		}
		// seq picks the id: none (a random one), a fuzzed one, or a number.
		var id string
		switch seq % 3 {
		case 1:
			id = s2
		case 2:
			id = strconv.FormatUint(seq, 10)
		}
		m := realtime.Message{Room: "r", Name: "n" + s2, RequestID: s1, Body: body, ID: id}
		if m.Validate() != nil {
			m.Name, m.RequestID, m.ID = "n", "", ""
		}
		requireSameAsEncodingJSON(t, m)
		if _, err := m.Encode(); err != nil && !errors.Is(err, realtime.ErrEncode) && !errors.Is(err, realtime.ErrPayloadTooLarge) {
			t.Fatalf("untyped error: %v", err)
		}
		// Only the replay log numbers a message: Encode ignores a seq and
		// an epoch.
		if seq != 0 && m.ID != "" {
			want, wantErr := m.Encode()
			m.Seq, m.Epoch = seq, seq/2+1
			got, err := m.Encode()
			if !bytes.Equal(got, want) || (err == nil) != (wantErr == nil) {
				t.Fatalf("Encode with seq %d = %s, %v; without it %s, %v", seq, got, err, want, wantErr)
			}
		}
	})
}
