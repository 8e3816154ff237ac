package core

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestCheckEnvelope(t *testing.T) {
	valid := []struct {
		in    string
		empty bool
		out   string // with seq 7, epoch 9
	}{
		{`{}`, true, `{"seq":7,"epoch":9}`},
		{`{ }`, true, `{ "seq":7,"epoch":9}`},
		{` {"a":1}`, false, ` {"a":1,"seq":7,"epoch":9}`},
		{`{"body":{"seq":1,"epoch":2},"name":"n"}`, false, `{"body":{"seq":1,"epoch":2},"name":"n","seq":7,"epoch":9}`},
		{`{"a":"\"seq\":1"}`, false, `{"a":"\"seq\":1","seq":7,"epoch":9}`},
		{`{"a":["seq",{"seq":2}]}`, false, `{"a":["seq",{"seq":2}],"seq":7,"epoch":9}`},
		{`{"sequence":1,"Seq":2,"seq ":3,"epochs":4}`, false, `{"sequence":1,"Seq":2,"seq ":3,"epochs":4,"seq":7,"epoch":9}`},
		{`{"a":-0.5e+10,"b":true,"c":false,"d":null,"e":"\u00e9\n"}`, false, `{"a":-0.5e+10,"b":true,"c":false,"d":null,"e":"\u00e9\n","seq":7,"epoch":9}`},
		{"{\"a\":\"\xff\"}", false, "{\"a\":\"\xff\",\"seq\":7,\"epoch\":9}"},
		{"{\"a\":1\n}", false, "{\"a\":1\n,\"seq\":7,\"epoch\":9}"},
	}
	for _, c := range valid {
		empty, err := CheckEnvelope([]byte(c.in))
		if err != nil || empty != c.empty {
			t.Errorf("CheckEnvelope(%q) = %v, %v; want %v, nil", c.in, empty, err, c.empty)
			continue
		}
		if got := Sequenced([]byte(c.in), empty, 7, 9); string(got) != c.out {
			t.Errorf("Sequenced(%q) = %q, want %q", c.in, got, c.out)
		}
	}

	invalid := map[string]string{
		``:                       "not a JSON object",
		`   `:                    "not a JSON object",
		`[]`:                     "not a JSON object",
		`"x"`:                    "not a JSON object",
		`{"seq":1}`:              `"seq"`,
		`{"a":1,"seq":null}`:     `"seq"`,
		`{"\u0073eq":1}`:         `"seq"`,
		`{"se\u0071":1}`:         `"seq"`,
		`{"a":1} `:               "after its closing",
		`{"a":1}{}`:              "after its closing",
		`{`:                      "not valid JSON",
		`{"a"}`:                  "not valid JSON",
		`{"a":}`:                 "not valid JSON",
		`{"a":1,}`:               "not valid JSON",
		`{a:1}`:                  "not valid JSON",
		`{"a":01}`:               "not valid JSON",
		`{"a":1.}`:               "not valid JSON",
		`{"a":tru}`:              "not valid JSON",
		`{"a":"\x"}`:             "not valid JSON",
		`{"a":"\u12"}`:           "not valid JSON",
		"{\"a\":\"\n\"}":         "not valid JSON",
		`{"a":[1,]}`:             "not valid JSON",
		`{"a":"}`:                "not valid JSON",
		"{\"a\":1\x00}":          "not valid JSON",
		`{"a":1,"seq":1,"b":{}}`: `"seq"`,
		`{"epoch":1}`:            `"epoch"`,
		`{"a":1,"\u0065poch":1}`: `"epoch"`,
	}
	for in, want := range invalid {
		_, err := CheckEnvelope([]byte(in))
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), want) || !strings.HasPrefix(err.Error(), "replay: invalid envelope: ") {
			t.Errorf("CheckEnvelope(%q) = %v; want ErrInvalid mentioning %q", in, err, want)
		}
	}
}

// TestCheckEnvelopeDepth: the nesting limit is encoding/json's, exactly.
func TestCheckEnvelopeDepth(t *testing.T) {
	for _, depth := range []int{maxDepth, maxDepth + 1} {
		in := []byte(`{"a":` + strings.Repeat("[", depth-1) + strings.Repeat("]", depth-1) + `}`)
		_, err := CheckEnvelope(in)
		if (err == nil) != json.Valid(in) {
			t.Errorf("depth %d: CheckEnvelope err = %v, json.Valid = %v", depth, err, json.Valid(in))
		}
	}
}

func TestCheckArgs(t *testing.T) {
	long := strings.Repeat("r", MaxRoomBytes+1)
	cases := []struct {
		room, id, want string
	}{
		{"", "id", "room: empty"},
		{"r", "", "id: empty"},
		{long, "id", "room: 257 bytes, limit 256"},
		{"r", long, "id: 257 bytes, limit 256"},
	}
	for _, c := range cases {
		if _, err := CheckAppend(c.room, c.id, []byte(`{}`)); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("CheckAppend(%.10q, %.10q) = %v; want %q", c.room, c.id, err, c.want)
		}
	}
	if _, err := CheckAppend(long[1:], long[1:], []byte(`{}`)); err != nil {
		t.Errorf("room and id of 256 bytes: %v", err)
	}
	for _, limit := range []int{0, -1} {
		if err := CheckAfter("r", limit); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "limit") {
			t.Errorf("CheckAfter(limit %d) = %v", limit, err)
		}
	}
}

func TestTruncated(t *testing.T) {
	cases := []struct {
		head, after, first uint64
		want               bool
	}{
		{0, 0, 0, false}, // nothing ever appended
		{5, 5, 0, false}, // up to date
		{5, 9, 0, false}, // ahead (another epoch)
		{5, 0, 1, false}, // everything kept
		{5, 0, 2, true},  // seq 1 dropped
		{5, 3, 4, false}, // the next one is there
		{5, 3, 0, true},  // none left although head > after
		{10, 2, 8, true}, // 3..7 dropped
		{1 << 63, 0, 1, false},
	}
	for _, c := range cases {
		if got := Truncated(c.head, c.after, c.first); got != c.want {
			t.Errorf("Truncated(%d, %d, %d) = %v, want %v", c.head, c.after, c.first, got, c.want)
		}
	}
}

// FuzzCheckEnvelope checks CheckEnvelope against encoding/json: it accepts
// exactly the valid JSON objects that end in '}' and have no top-level
// "seq" or "epoch", and Sequenced yields valid JSON with every member kept
// and both added.
func FuzzCheckEnvelope(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":1}`, `{"seq":1}`, `{"\u0073eq":1}`, `{"epoch":1}`, `{"a":{"seq":1}}`, ` {"a":[1,2.5e3,"x\"y",true,null]}`, `{"a":1} `, `[]`, `{"a":"\ud800"}`, "{\"a\":\"\xff\"}"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		empty, err := CheckEnvelope(in)
		var members map[string]json.RawMessage
		trimmed := bytes.TrimLeft(in, " \t\r\n")
		want := json.Valid(in) && len(trimmed) > 0 && trimmed[0] == '{' && in[len(in)-1] == '}' && json.Unmarshal(in, &members) == nil
		if want {
			_, hasSeq := members["seq"]
			_, hasEpoch := members["epoch"]
			want = !hasSeq && !hasEpoch
		}
		if (err == nil) != want {
			t.Fatalf("CheckEnvelope(%q) = %v; encoding/json says acceptable = %v", in, err, want)
		}
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not match ErrInvalid", err)
			}
			return
		}
		if empty != (len(members) == 0) {
			t.Fatalf("CheckEnvelope(%q): empty = %v, members = %d", in, empty, len(members))
		}
		out := Sequenced(in, empty, 1<<40+3, 1<<63)
		var after map[string]json.RawMessage
		if err := json.Unmarshal(out, &after); err != nil {
			t.Fatalf("Sequenced(%q) = %q: %v", in, out, err)
		}
		if string(after["seq"]) != "1099511627779" || string(after["epoch"]) != "9223372036854775808" {
			t.Fatalf("Sequenced(%q) = %q: seq %s, epoch %s", in, out, after["seq"], after["epoch"])
		}
		delete(after, "seq")
		delete(after, "epoch")
		if len(after) != len(members) {
			t.Fatalf("Sequenced(%q) = %q: members changed", in, out)
		}
		for k, v := range members {
			if !bytes.Equal(after[k], v) {
				t.Fatalf("Sequenced(%q) = %q: member %q changed", in, out, k)
			}
		}
	})
}
