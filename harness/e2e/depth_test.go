package e2e_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/coursebuilder/realtime-go/internal/transport"
	"github.com/coursebuilder/realtime-go/realtime"
	"github.com/coursebuilder/realtime-go/realtime/inngest"
)

// deepArrays is JSON of n nested arrays around 1.
func deepArrays(n int) json.RawMessage {
	return json.RawMessage(strings.Repeat("[", n) + "1" + strings.Repeat("]", n))
}

// postRaw publishes body to channel and topic on s by hand, bypassing
// Encode, and fails t unless the server answers 200.
func postRaw(t testing.TB, base, key, channel string, body []byte) {
	t.Helper()
	hashed, err := transport.HashSigningKey(key)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequestWithContext(ctxT(t), http.MethodPost,
		base+"/v1/realtime/publish?channel="+url.QueryEscape(channel)+"&topic="+url.QueryEscape(topic), bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+hashed)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("raw publish: status %d", resp.StatusCode)
	}
}

// A body nested MaxBodyDepth deep reaches the real server's subscribers as
// the object it is; one level more is refused before anything is sent.
// Sent by hand, that one level more is what the server loses: its answer is
// 200 but its Redis broadcaster cannot decode the message and drops it, and
// another level more arrives as one JSON string. Each time, the next message
// the subscriber gets is the one published after it.
func TestDepthLimitIsWhatTheRealServerDelivers(t *testing.T) {
	s, key := sharedInngest(t)
	e := newEndpoint(t, nil)
	hardeningEnv(t)
	p := newInngest(t, inngest.Options{BaseURL: s.URL(), SigningKey: key})
	rm := room("depth")
	ch := channelOf(t, p, rm, topic)
	sub := mustSubscribeInngest(t, s, ch, topic)

	atLimit := realtime.Message{Room: rm, Name: topic, RequestID: "at-limit", Body: deepArrays(realtime.MaxBodyDepth), ID: "at-limit"}
	if err := p.Publish(ctxT(t), atLimit); err != nil {
		t.Fatalf("Publish at the depth limit: %v", err)
	}
	got, err := sub.Next(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if got[0] != '{' || !bytes.Equal(got, envelope(t, atLimit)) {
		t.Fatalf("at the depth limit the subscriber got %.80s…, want the envelope as an object", got)
	}

	// One level more: refused, and nothing reaches a server.
	pe := newInngest(t, inngest.Options{BaseURL: e.URL(), SigningKey: e.Key})
	over := realtime.Message{Room: rm, Name: topic, RequestID: "over", Body: deepArrays(realtime.MaxBodyDepth + 1), ID: "over"}
	if err := pe.Publish(ctxT(t), over); !errors.Is(err, realtime.ErrEncode) || !strings.Contains(err.Error(), "depth limit") {
		t.Fatalf("Publish one level past the depth limit: %v, want ErrEncode naming the depth limit", err)
	}
	if n := e.Requests(); n != 0 {
		t.Fatalf("%d requests reached the server for a body past the depth limit", n)
	}
	for _, body := range []struct {
		depth    int
		asString bool
	}{{realtime.MaxBodyDepth + 1, false}, {realtime.MaxBodyDepth + 2, true}} {
		raw := []byte(`{"body":` + string(deepArrays(body.depth)) + `,"requestId":"raw","name":"` + topic + `"}`)
		postRaw(t, s.URL(), key, ch, raw)
		if body.asString {
			got, err := sub.Next(ctxT(t))
			if err != nil {
				t.Fatal(err)
			}
			var str string
			if err := json.Unmarshal(got, &str); err != nil || str != string(raw) {
				t.Fatalf("body %d deep: the subscriber got %.80s…, want the envelope as a JSON string", body.depth, got)
			}
		}
		control := realtime.Message{Room: rm, Name: topic, RequestID: "control", Body: "after", ID: fmt.Sprint("control-", body.depth)}
		if err := p.Publish(ctxT(t), control); err != nil {
			t.Fatal(err)
		}
		expectDelivered(t, "inngest subscriber", sub, envelope(t, control))
	}
}
