package bench_test

import (
	"context"
	"encoding/json"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/coursebuilder/realtime-go/harness/inngestrt"
	"github.com/coursebuilder/realtime-go/internal/transport"
	"github.com/coursebuilder/realtime-go/realtime"
)

// encodingRounds is how many turns each operation takes in
// BenchmarkPublishEncoding; its figures are the medians of the rounds.
const encodingRounds = 9

// sinkHeader keeps the headers BenchmarkPublishEncoding builds alive.
var sinkHeader http.Header

// videoReady is the struct shape of the benchmark's bodies.
type videoReady struct {
	ID            string `json:"id"`
	Status        string `json:"status"`
	MuxPlaybackID string `json:"muxPlaybackId"`
	Seq           int    `json:"seq"`
}

// BenchmarkPublishEncoding weighs parts of a publish against a whole
// publish to the real Inngest endpoint, for three body shapes: a small map,
// a struct and a 4 KiB string. For each shape it takes turns, in
// encodingRounds rounds of b.N/encodingRounds operations each after a
// warm-up round, between one sequential publish, Message.Encode alone,
// json.Marshal of the same envelope alone (Encode less validation and the
// depth and UTF-8 checks) and building the request's headers, and reports
// each one's median ns/op and allocs/op, and each part's share of a
// publish.
func BenchmarkPublishEncoding(b *testing.B) {
	servers(b, false)
	ctx := context.Background()
	p := inngestProvider(b)
	room := "enc-" + uuid.NewString()
	text := strings.Repeat("Transcript line with \"quotes\", <tags> & é. ", 4096/44+1)[:4096]
	hashed, _ := inngestrt.HashSigningKey(innKey)
	shapes := []struct {
		name string
		body any
	}{
		{"map", map[string]any{"id": room, "status": "ready", "muxPlaybackId": "pb_123", "seq": 7}},
		{"struct", videoReady{room, "ready", "pb_123", 7}},
		{"string4k", text},
	}
	for _, sh := range shapes {
		b.Run(sh.name, func(b *testing.B) {
			msg := realtime.Message{Room: room, Name: "video.asset.ready", RequestID: "req_123", Body: sh.body, ID: "req_123.3"}
			envelope := func(m realtime.Message) any {
				return struct {
					Body      any    `json:"body"`
					RequestID string `json:"requestId"`
					Name      string `json:"name"`
					ID        string `json:"id"`
				}{m.Body, m.RequestID, m.Name, m.ID}
			}
			ops := []struct {
				name string
				do   func() error
			}{
				{"publish", func() error { return p.Publish(ctx, msg) }},
				{"encode", func() error { _, err := msg.Encode(); return err }},
				{"marshal", func() error { _, err := json.Marshal(envelope(msg)); return err }},
				{"header", func() error {
					// What the provider builds for each request.
					h := http.Header{"Content-Type": {"application/json"}, "User-Agent": {transport.UserAgent}}
					h.Set("Authorization", "Bearer "+hashed)
					sinkHeader = h
					return nil
				}},
			}
			per := max(b.N/encodingRounds, 200)
			ns := make([][]float64, len(ops))
			allocs := make([][]float64, len(ops))
			var ms runtime.MemStats
			b.ResetTimer()
			for round := -1; round < encodingRounds; round++ {
				for k := range ops {
					o := (round + 1 + k) % len(ops) // a different one goes first each round
					runtime.ReadMemStats(&ms)
					m0, t0 := ms.Mallocs, time.Now()
					for range per {
						if err := ops[o].do(); err != nil {
							b.Fatal(err)
						}
					}
					d := time.Since(t0)
					runtime.ReadMemStats(&ms)
					if round >= 0 {
						ns[o] = append(ns[o], float64(d.Nanoseconds())/float64(per))
						allocs[o] = append(allocs[o], float64(ms.Mallocs-m0)/float64(per))
					}
				}
			}
			med := make([]float64, len(ops))
			for o, op := range ops {
				med[o] = median(ns[o])
				b.ReportMetric(med[o], op.name+"-ns")
				b.ReportMetric(median(allocs[o]), op.name+"-allocs")
			}
			b.ReportMetric(med[1]/med[0], "encode/publish")
			b.ReportMetric((med[1]-med[2])/med[0], "(encode-marshal)/publish")
			b.ReportMetric(med[3]/med[0], "header/publish")
			b.ReportMetric(0, "ns/op")
		})
	}
}
