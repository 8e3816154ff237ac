package bench_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/google/uuid"

	"github.com/coursebuilder/realtime-go/broadcast"
	"github.com/coursebuilder/realtime-go/flags"
	"github.com/coursebuilder/realtime-go/realtime"
	"github.com/coursebuilder/realtime-go/replay"
)

// countingLog numbers messages and keeps nothing: a Broadcast over it does
// everything but the replay log's own work, the baseline of
// BenchmarkReplayLogThroughput.
type countingLog struct{ seq atomic.Uint64 }

func (l *countingLog) Append(_ context.Context, _, id string, _ []byte) (replay.Entry, error) {
	return replay.Entry{ID: id, Seq: l.seq.Add(1), Epoch: 1}, nil
}

func (l *countingLog) After(context.Context, string, uint64, int) (replay.Page, error) {
	return replay.Page{}, nil
}

func (l *countingLog) Close() error { return nil }

// BenchmarkReplayLogThroughput publishes through a Broadcast in realtime
// mode to the real Inngest endpoint from 8 goroutines, with the embedded
// replay log (replay.NewMemory, the default) and with a log that only
// counts, taking turns as BenchmarkThroughput's clients do. It reports
// each rate and the median per-round ratio of the embedded log's to the
// counting one's.
func BenchmarkReplayLogThroughput(b *testing.B) {
	servers(b, false)
	room := "bench-log-" + uuid.NewString()
	p := inngestProvider(b)
	newBroadcast := func(log replay.Log) *broadcast.Broadcast {
		br, err := broadcast.New(realtime.NewNoop(nil), p, &broadcast.Options{Resolver: flags.Fixed(flags.Realtime), Log: log})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = br.Close(context.Background()) })
		return br
	}
	memory := replay.NewMemory(nil)
	b.Cleanup(func() { _ = memory.Close() })
	withLog, without := newBroadcast(memory), newBroadcast(&countingLog{})
	clients := []publisher{
		{"memorylog", func(room string, i int) error { return withLog.Publish(context.Background(), message(room, i)) }},
		{"nolog", func(room string, i int) error { return without.Publish(context.Background(), message(room, i)) }},
	}
	per := max(b.N/throughputRounds, 50)
	rates := make([][]float64, len(clients))
	var ratio []float64
	b.ResetTimer()
	for round := -1; round < throughputRounds; round++ {
		rate := make([]float64, len(clients))
		for k := range clients {
			c := (round + 1 + k) % len(clients)
			rate[c] = concurrently(b, per, 8, room, clients[c].publish)
		}
		if round < 0 {
			continue
		}
		for c := range clients {
			rates[c] = append(rates[c], rate[c])
		}
		ratio = append(ratio, rate[0]/rate[1])
	}
	for c, cl := range clients {
		b.ReportMetric(median(rates[c]), cl.name+"-pub/s")
	}
	b.ReportMetric(median(ratio), "memorylog/nolog")
	b.ReportMetric(0, "ns/op")
}
