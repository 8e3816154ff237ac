package realtimetest_test

import (
	"encoding/json"
	"testing"

	"github.com/coursebuilder/realtime-go/realtime/realtimetest"
)

func TestJSSpelling(t *testing.T) {
	for in, want := range map[string]string{
		`{"a":"\u003cb\u003e \u0026"}`: `{"a":"<b> &"}`,
		`"\\u003c"`:                    `"\\u003c"`, // an escaped backslash, then text
		`"\u2028\u2029"`:               "\"\u2028\u2029\"",
		`"\n\t\"\u001b"`:               `"\n\t\"\u001b"`,
		`{"n":1e-7}`:                   `{"n":1e-7}`,
	} {
		if got := string(realtimetest.JSSpelling([]byte(in))); got != want {
			t.Errorf("JSSpelling(%s) = %s, want %s", in, got, want)
		}
	}
}

// FuzzJSSpelling checks that respelling never changes what the JSON means.
func FuzzJSSpelling(f *testing.F) {
	f.Add("<a href=\"x&y\">\u2028</a>")
	f.Add(`\u003c`)
	f.Fuzz(func(t *testing.T, s string) {
		b, err := json.Marshal(map[string]string{"s": s})
		if err != nil {
			t.Skip()
		}
		var a, c map[string]string
		if err := json.Unmarshal(realtimetest.JSSpelling(b), &c); err != nil {
			t.Fatalf("respelled JSON does not parse: %v", err)
		}
		_ = json.Unmarshal(b, &a)
		if a["s"] != c["s"] {
			t.Fatalf("meaning changed: %q vs %q", a["s"], c["s"])
		}
	})
}
