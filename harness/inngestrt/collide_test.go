package inngestrt_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/inngest/inngest/pkg/execution/realtime/streamingtypes"
	"github.com/inngest/inngest/pkg/util"

	"github.com/coursebuilder/realtime-go/harness/inngestrt"
	"github.com/coursebuilder/realtime-go/internal/field"
	"github.com/coursebuilder/realtime-go/internal/transport"
)

// TestCollidingRoomSharesTheServersRoutingKey checks CollidingRoom against
// the server's own code: the room it returns differs from the victim's, is a
// valid room, and yields the same routing key (streamingtypes.Topic.String,
// built on util.XXHash) for every topic.
func TestCollidingRoomSharesTheServersRoutingKey(t *testing.T) {
	for _, room := range []string{
		"course:typescript-generics:lesson-07-conditional-types:video-asset",
		strings.Repeat("a", 64),
		"astro-party:" + strings.Repeat("lesson/ä-", 20),
	} {
		b, err := inngestrt.CollidingRoom(room)
		if err != nil {
			t.Fatalf("CollidingRoom(%q): %v", room, err)
		}
		if b == room || len(b) != len(room) {
			t.Fatalf("CollidingRoom(%q) = %q: want another room of the same length", room, b)
		}
		if err := transport.Validate("room", b, field.RoomBytes); err != nil {
			t.Fatalf("CollidingRoom(%q) = %q is not a valid room: %v", room, b, err)
		}
		if util.XXHash(b) != util.XXHash(room) {
			t.Fatalf("CollidingRoom(%q) = %q: hashes %s and %s differ", room, b, util.XXHash(b), util.XXHash(room))
		}
		ta := streamingtypes.Topic{Kind: streamingtypes.TopicKindRun, EnvID: inngestrt.EnvID, Channel: room, Name: "video.asset.ready"}
		tb := ta
		tb.Channel = b
		if ta.String() != tb.String() {
			t.Fatalf("routing keys differ: %s vs %s", ta, tb)
		}
		t.Logf("%q collides with %q", b, room)
	}
}

func TestCollidingRoomRefusesShortRooms(t *testing.T) {
	if _, err := inngestrt.CollidingRoom("vid_1"); !errors.Is(err, inngestrt.ErrRoomTooShort) {
		t.Fatalf("err = %v, want ErrRoomTooShort", err)
	}
}
