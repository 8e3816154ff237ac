package inngest_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/coursebuilder/realtime-go/realtime"
	"github.com/coursebuilder/realtime-go/realtime/inngest"
	"github.com/coursebuilder/realtime-go/replay"
)

// BenchmarkSubscriberOffer is one envelope through a subscriber's order
// and deduplication to its handler: numbered and in order with CatchUp
// (the common case of gap repair), and without CatchUp.
func BenchmarkSubscriberOffer(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		<-ws.CloseRead(r.Context()).Done()
	}))
	b.Cleanup(srv.Close)
	token := func(context.Context) (inngest.Token, error) {
		return inngest.Token{JWT: "jwt", Channel: "vid_123", Topics: []string{benchMsg.Name}, Expires: time.Now().Add(time.Hour)}, nil
	}
	log := replay.NewMemory(nil)
	defer log.Close()
	runs := 0
	for _, repair := range []bool{true, false} {
		name := map[bool]string{true: "catchUp", false: "none"}[repair]
		b.Run(name, func(b *testing.B) {
			runs++
			room := name + "-" + strconv.Itoa(runs) // ids are new in each room
			var catchUp func(context.Context, uint64) (replay.Page, error)
			if repair {
				catchUp = func(ctx context.Context, after uint64) (replay.Page, error) {
					return log.After(ctx, room, after, 100)
				}
			}
			done := make(chan struct{})
			n := 0
			sub, err := inngest.Subscribe(context.Background(), srv.URL, token, func(inngest.Message) {
				if n++; n == b.N {
					close(done)
				}
			}, &inngest.SubscriberOptions{CatchUp: catchUp, QueueSize: b.N + 1})
			if err != nil {
				b.Fatal(err)
			}
			defer sub.Close()
			for !inngest.Idle(sub) { // the connection's catch-up is over: Offer alone delivers
				time.Sleep(time.Millisecond)
			}
			envs := make([][]byte, b.N)
			for i := range envs {
				msg := benchMsg
				msg.ID = strconv.Itoa(i)
				env, err := realtime.NewEnvelope(context.Background(), msg)
				if err != nil {
					b.Fatal(err)
				}
				e, err := log.Append(context.Background(), room, msg.ID, env.Bytes())
				if err != nil {
					b.Fatal(err)
				}
				envs[i] = e.Envelope // the log's numbering, as a Broadcast fans it out
			}
			b.ReportAllocs()
			b.ResetTimer()
			for _, e := range envs {
				if err := sub.Offer(e); err != nil {
					b.Fatal(err)
				}
			}
			select {
			case <-done:
			case <-time.After(time.Minute): // a bound, not a race: a healthy run takes milliseconds
				b.Fatalf("%d of %d messages delivered after a minute", n, b.N)
			}
		})
	}
}
