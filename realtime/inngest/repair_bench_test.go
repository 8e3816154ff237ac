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
	env, err := realtime.NewEnvelope(context.Background(), benchMsg)
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name    string
		catchUp func(context.Context, uint64) (replay.Page, error)
	}{{name: "catchUp"}, {name: "none"}} {
		b.Run(bc.name, func(b *testing.B) {
			room := bc.name + "-" + strconv.Itoa(b.N)
			bc.catchUp = func(ctx context.Context, after uint64) (replay.Page, error) {
				return log.After(ctx, room, after, 100)
			}
			if bc.name == "none" {
				bc.catchUp = nil
			}
			envs := make([][]byte, b.N)
			for i := range envs {
				e, err := log.Append(context.Background(), room, strconv.Itoa(i), env.Bytes())
				if err != nil {
					b.Fatal(err)
				}
				envs[i] = e.Envelope // the log's numbering, as a Broadcast fans it out
			}
			done := make(chan struct{})
			n := 0
			sub, err := inngest.Subscribe(context.Background(), srv.URL, token, func(inngest.Message) {
				if n++; n == b.N {
					close(done)
				}
			}, &inngest.SubscriberOptions{CatchUp: bc.catchUp, After: 0, QueueSize: b.N + 1})
			if err != nil {
				b.Fatal(err)
			}
			defer sub.Close()
			b.ReportAllocs()
			b.ResetTimer()
			for _, e := range envs {
				if err := sub.Offer(e); err != nil {
					b.Fatal(err)
				}
			}
			<-done
		})
	}
}
