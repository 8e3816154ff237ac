package e2e_test

import (
	"errors"
	"testing"

	"github.com/google/uuid"

	"github.com/coursebuilder/realtime-go/legacyparty"
	"github.com/coursebuilder/realtime-go/realtime"
)

// Faults of the PartyKit transport.

func TestPartyKitServerDownIsUnavailable(t *testing.T) {
	p := newParty(t, legacyparty.Options{BaseURL: downURL(t), Retry: fastRetry(2)})
	err := p.Publish(ctxT(t), readyMsg(room("down")))
	if !errors.Is(err, realtime.ErrUnavailable) {
		t.Fatalf("Publish to a closed port: %v, want ErrUnavailable", err)
	}
	if pe := publishError(t, err); pe.Transport != "partykit" || pe.Attempts != 2 || pe.StatusCode != 0 {
		t.Fatalf("PublishError = %+v, want 2 attempts to partykit and no status", pe)
	}
}

// A room with spaces and non-ASCII characters is one path segment: a
// websocket on the same room, escaped alike, receives the message and no
// other room does.
func TestPartyKitRoomEscaping(t *testing.T) {
	s := sharedParty(t)
	p := newParty(t, legacyparty.Options{BaseURL: s.URL()})
	id := uuid.NewString()
	cases := []struct {
		name  string
		room  string
		decoy string // a room the message would reach if the room were not one escaped segment
	}{
		// Rooms with / ? # or dot segments are refused now; every spelling
		// is covered against partysocket's own URLs by
		// TestPartyKitRoomsReachPartysocketRoom.
		{"unicode and spaces", "ünïcödé 🎬 " + id, "unicode " + id}, // any other room
	}

	subs := map[string]subscriber{}
	targets := make([]*partySub, len(cases))
	for i, c := range cases {
		targets[i] = mustSubscribeParty(t, s, c.room)
		subs["decoy of "+c.name] = mustSubscribeParty(t, s, c.decoy)
	}
	for i, c := range cases {
		msg := readyMsg(c.room)
		if err := p.Publish(ctxT(t), msg); err != nil {
			t.Fatalf("%s: publish to %q: %v", c.name, c.room, err)
		}
		// Delivered to the room's socket and to none of the decoys: the
		// party names its room after the escaped path segment.
		expectDelivered(t, c.name, targets[i], partySpelling(envelope(t, msg)))
		subs[c.name] = targets[i] // and nothing more
	}
	expectQuiet(t, subs)
}
