package e2e_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/coursebuilder/realtime-go/harness/inngestrt"
	"github.com/coursebuilder/realtime-go/realtime"
	"github.com/coursebuilder/realtime-go/realtime/inngest"
)

// Rooms that collide, against the real Inngest realtime server code: it
// routes a channel's messages by an unseeded 64-bit hash of the channel
// name (XXH64), so a client who can get a token for a room of its choosing
// can pick one whose channel hashes like another room's
// (inngestrt.CollidingRoom) and receive that room's messages. Keyed
// channels (the default) stop it; the Go subscriber drops such messages
// even on readable channels.

// collisionChannelSecret is the channel secret of the keyed provider here.
const collisionChannelSecret = "e2e-collision-channel-secret-0123456789"

// victimAndAttacker returns a victim room of at least 64 bytes and a room
// whose readable channel collides with it on the server.
func victimAndAttacker(t *testing.T) (victim, attacker string) {
	t.Helper()
	victim = room("course:typescript-generics:lesson-07:video") // uuid: 36 more bytes
	if len(victim) < inngestrt.MinCollidingRoomBytes {
		t.Fatalf("victim room %q is too short", victim)
	}
	attacker, err := inngestrt.CollidingRoom(victim)
	if err != nil {
		t.Fatal(err)
	}
	return victim, attacker
}

// TestCollisionOnReadableChannelsLeaksAnotherRoomsMessages shows the
// attack on the opt-out (Mapping.Unkeyed, the behaviour before keyed
// channels): a legitimate token for the attacker's room receives, at the
// websocket, a message published to the victim's room.
func TestCollisionOnReadableChannelsLeaksAnotherRoomsMessages(t *testing.T) {
	srv, key := sharedInngest(t)
	p := newInngest(t, inngest.Options{BaseURL: srv.URL(), SigningKey: key, Mapping: inngest.Mapping{Unkeyed: true}})
	victim, attacker := victimAndAttacker(t)

	tok, err := p.SubscriptionToken(ctxT(t), attacker, []string{topic})
	if err != nil {
		t.Fatal(err)
	}
	if tok.Channel != attacker {
		t.Fatalf("unkeyed token for channel %q, want the room %q", tok.Channel, attacker)
	}
	sub, err := srv.Subscribe(ctxT(t), tok.JWT)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Close() })

	secret := readyMsg(victim)
	if err := p.Publish(ctxT(t), secret); err != nil {
		t.Fatal(err)
	}
	m, err := sub.NextData(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if m.Channel != victim || !bytes.Equal(m.Data, envelope(t, secret)) {
		t.Fatalf("the attacker's subscription received %s on %q; the collision should deliver the victim's message", m.Data, m.Channel)
	}
	t.Logf("a token for %q received the message published to %q", attacker, victim)
}

// TestCollisionKeyedChannelsDeliverNothingToTheCollidingRoom: with keyed
// channels the attacker's room maps to an unpredictable channel, so the
// victim's message never reaches the attacker's subscription; its first
// message is the one published to its own room after the victim's.
func TestCollisionKeyedChannelsDeliverNothingToTheCollidingRoom(t *testing.T) {
	srv, key := sharedInngest(t)
	p := newInngest(t, inngest.Options{BaseURL: srv.URL(), SigningKey: key, ChannelSecret: collisionChannelSecret})
	victim, attacker := victimAndAttacker(t)

	tok, err := p.SubscriptionToken(ctxT(t), attacker, []string{topic})
	if err != nil {
		t.Fatal(err)
	}
	if want, _ := p.Channel(attacker); tok.Channel != want || !strings.HasPrefix(tok.Channel, "rtk1_") {
		t.Fatalf("token for channel %q, want the keyed channel %q", tok.Channel, want)
	}
	sub, err := srv.Subscribe(ctxT(t), tok.JWT)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Close() })
	// The victim's own subscriber, with a token from the same provider as
	// a browser would get: it receives the victim's message.
	vtok, err := p.SubscriptionToken(ctxT(t), victim, []string{topic})
	if err != nil {
		t.Fatal(err)
	}
	vsub, err := srv.Subscribe(ctxT(t), vtok.JWT)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = vsub.Close() })

	secret, own := readyMsg(victim), readyMsg(attacker)
	for _, msg := range []realtime.Message{secret, own} {
		if err := p.Publish(ctxT(t), msg); err != nil {
			t.Fatal(err)
		}
	}
	if m, err := vsub.NextData(ctxT(t)); err != nil || !bytes.Equal(m.Data, envelope(t, secret)) {
		t.Fatalf("the victim's subscriber: %s, %v; want its message", m.Data, err)
	}
	// One connection's frames arrive in order: had the victim's message
	// been routed here, it would come first.
	m, err := sub.NextData(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if m.Channel != tok.Channel || !bytes.Equal(m.Data, envelope(t, own)) {
		t.Fatalf("the attacker's subscription received %s on %q, want only its own room's message", m.Data, m.Channel)
	}
}

// TestCollisionGoSubscriberDropsAnotherRoomsMessages: even on readable
// channels, where the server does deliver the victim's message to the
// attacker's connection, inngest.Subscribe drops a frame whose channel is
// not its token's, counts it, and never hands it to the handler.
func TestCollisionGoSubscriberDropsAnotherRoomsMessages(t *testing.T) {
	srv, key := sharedInngest(t)
	p := newInngest(t, inngest.Options{BaseURL: srv.URL(), SigningKey: key, Mapping: inngest.Mapping{Unkeyed: true}})
	victim, attacker := victimAndAttacker(t)

	got := make(chan inngest.Message, 16)
	sub, err := inngest.Subscribe(ctxT(t), srv.URL(), p.TokenFunc(attacker, topic), func(m inngest.Message) { got <- m }, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Close() })
	// inngest.Subscribe returns once the connection is open, which is not
	// yet subscribed on the server: wait until a message of its own room
	// comes through before the real test.
	waitSubscribed(t, p, attacker, got)

	secret, own := readyMsg(victim), readyMsg(attacker)
	own.RequestID = "after-the-victim"
	for _, msg := range []realtime.Message{secret, own} {
		if err := p.Publish(ctxT(t), msg); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case m := <-got:
		if m.Channel != attacker || !bytes.Equal(m.Data, envelope(t, own)) {
			t.Fatalf("the handler got %s on %q, want only its own room's message", m.Data, m.Channel)
		}
	case <-ctxT(t).Done():
		t.Fatal("the subscriber's own message did not arrive")
	}
	if n := sub.Misrouted(); n != 1 {
		t.Fatalf("Misrouted() = %d, want 1: the victim's message reached the connection and was dropped", n)
	}
}

// waitSubscribed publishes to room until the subscriber's handler sees one
// of those messages, then drains them.
func waitSubscribed(t *testing.T, p *inngest.Provider, room string, got <-chan inngest.Message) {
	t.Helper()
	probe := realtime.Message{Room: room, Name: topic, RequestID: "probe", Body: "probe", ID: "probe-" + room}
	want := envelope(t, probe)
	ctx := ctxT(t)
	for {
		if err := p.Publish(ctx, probe); err != nil {
			t.Fatal(err)
		}
		select {
		case m := <-got:
			if !bytes.Equal(m.Data, want) {
				t.Fatalf("unexpected message %s while waiting for the subscription", m.Data)
			}
			// Drain the probes still in flight: publish a marker and
			// skip everything up to it.
			marker := realtime.Message{Room: room, Name: topic, RequestID: "marker", Body: "marker", ID: "marker-" + room}
			if err := p.Publish(ctx, marker); err != nil {
				t.Fatal(err)
			}
			wantMarker := envelope(t, marker)
			for {
				select {
				case m := <-got:
					if bytes.Equal(m.Data, wantMarker) {
						return
					}
				case <-ctx.Done():
					t.Fatal("the marker did not arrive")
				}
			}
		case <-ctx.Done():
			t.Fatal("the subscription never received a message")
		case <-time.After(50 * time.Millisecond): // not yet subscribed: publish another probe
		}
	}
}
