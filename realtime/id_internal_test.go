package realtime

import (
	"context"
	"strings"
	"testing"
)

// In a function run, a message without id gets one derived from the run
// and the message: the same on every attempt of the step that publishes
// it, another for another run or another message; and its envelope is the
// one a message with that id given encodes to.
func TestRunDerivedIDsAreStable(t *testing.T) {
	msg := Message{Room: "vid_1", Name: "video.asset.ready", RequestID: "r", Body: map[string]any{"status": "ready"}}
	run := withRunID(context.Background(), "01JRUN")
	a, err := NewEnvelope(run, msg)
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewEnvelope(run, msg)
	if err != nil {
		t.Fatal(err)
	}
	if a.msg.ID != b.msg.ID || string(a.data) != string(b.data) {
		t.Fatalf("a retried step gets another id: %s, %s", a.msg.ID, b.msg.ID)
	}
	if !strings.HasPrefix(a.msg.ID, "r_") || len(a.msg.ID) > 64 {
		t.Fatalf("id %q", a.msg.ID)
	}
	other, _ := NewEnvelope(withRunID(context.Background(), "01JOTHER"), msg)
	changed := msg
	changed.Body = map[string]any{"status": "errored"}
	otherMsg, _ := NewEnvelope(run, changed)
	otherRoom := msg
	otherRoom.Room = "vid_2"
	otherRoomEnv, _ := NewEnvelope(run, otherRoom)
	for _, e := range []*Envelope{other, otherMsg, otherRoomEnv} {
		if e.msg.ID == a.msg.ID {
			t.Fatalf("two messages share the id %s", a.msg.ID)
		}
	}
	given := msg
	given.ID = a.msg.ID
	g, err := NewEnvelope(context.Background(), given)
	if err != nil {
		t.Fatal(err)
	}
	if string(g.data) != string(a.data) {
		t.Fatalf("the envelope with a derived id differs from one with that id given:\n%s\n%s", a.data, g.data)
	}
}
