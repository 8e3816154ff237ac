package inngest_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/coursebuilder/realtime-go/realtime"
	"github.com/coursebuilder/realtime-go/replay"
)

// FuzzRepairOrder: whatever reaches the subscriber, in whatever order,
// over the websocket and through Offer, with copies and losses, the
// handler gets every message of its names once, in seq order.
//
// Each byte of ops publishes a message to the log, or sends one again:
//
//	op%6 == 0  publish "t", send it live
//	op%6 == 1  publish "t", Offer it
//	op%6 == 2  publish "t", send it nowhere (lost)
//	op%6 == 3  publish "other" (not the token's), Offer it or not (op&8)
//	op%6 == 4  send an earlier message again (op>>3 picks it), live or Offer (op&128)
//	op%6 == 5  publish "t", keep it back and Offer it after the next one
//
// A last message, Offered, shows any gap at the end.
func FuzzRepairOrder(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 0})
	f.Add([]byte{2, 2, 2, 0})
	f.Add([]byte{5, 5, 5, 12, 132, 1})
	f.Add([]byte{3, 11, 3, 0, 4, 2, 1})
	f.Fuzz(func(t *testing.T, ops []byte) {
		if len(ops) > 24 {
			ops = ops[:24]
		}
		room := newLogRoom(t, 3, nil)
		srv := newWSServer(t, nil)
		src, _ := numbered(t)
		rec := newDeliveries()
		sub := subscribe(t, srv.URL, src, rec.handle, repairOpts(room, rec))
		c := srv.next()

		var sent, want []replay.Entry
		var back *replay.Entry
		send := func(e replay.Entry, live bool) {
			if live {
				c.send(t, frame(e, "t"))
			} else {
				require.NoError(t, sub.Offer(e.Envelope))
			}
		}
		for _, op := range ops {
			var e replay.Entry
			switch op % 6 {
			case 0, 1, 2, 5:
				e = room.publish("t", int(op))
				want = append(want, e)
			case 3:
				if o := room.publish("other", int(op)); op&8 != 0 {
					require.NoError(t, sub.Offer(o.Envelope))
				}
				continue
			case 4:
				if len(sent) > 0 {
					send(sent[int(op>>3)%len(sent)], op&128 != 0)
				}
				continue
			}
			switch op % 6 {
			case 0, 1:
				send(e, op%6 == 0)
				sent = append(sent, e)
			case 5:
				if back != nil {
					send(*back, false)
					sent = append(sent, *back)
				}
				back = &e
				continue
			}
			if back != nil && op%6 != 2 {
				send(*back, false)
				sent = append(sent, *back)
				back = nil
			}
		}
		last := room.publish("t", "last")
		want = append(want, last)
		require.NoError(t, sub.Offer(last.Envelope))

		for _, w := range want {
			e := rec.next(t)
			require.False(t, e.reset, "no history was lost")
			require.Equal(t, w.Seq, e.m.Seq, "in seq order, each once")
			assert.Equal(t, w.ID, e.m.ID)
		}
		assert.Zero(t, sub.Resets())
	})
}

// FuzzOffer: Offer takes any bytes without panicking, and fails exactly
// when they are not an envelope.
func FuzzOffer(f *testing.F) {
	env, err := realtime.NewEnvelope(context.Background(), realtime.Message{Room: "r", Name: "t", Body: 1})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(env.Bytes())
	f.Add(env.Sequenced(1, 7).Bytes())
	f.Add(env.Sequenced(1<<64-1, 1).Bytes())
	f.Add([]byte(`{"name":"t","seq":3}`))
	f.Add([]byte(`{"name":"other","seq":1,"epoch":1}`))
	f.Add([]byte(`{"body":1}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		room := newLogRoom(t, 10, nil)
		srv := newWSServer(t, nil)
		src, _ := numbered(t)
		rec := newDeliveries()
		sub := subscribe(t, srv.URL, src, rec.handle, repairOpts(room, rec))
		srv.next()
		_, derr := realtime.DecodeEnvelope(b)
		err := sub.Offer(b)
		if derr != nil {
			assert.Error(t, err)
		} else {
			assert.NoError(t, err)
		}
		require.NoError(t, sub.Close())
	})
}
