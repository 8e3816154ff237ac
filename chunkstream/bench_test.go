package chunkstream_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/coursebuilder/realtime-go/chunkstream"
	"github.com/coursebuilder/realtime-go/realtime"
	"github.com/coursebuilder/realtime-go/realtime/realtimetest"
)

// counter is the cheapest provider: it encodes like a real one and counts.
type counter struct{ n atomic.Int64 }

func (c *counter) Publish(_ context.Context, msg realtime.Message) error {
	if _, err := msg.Encode(); err != nil {
		return err
	}
	c.n.Add(1)
	return nil
}

// delta is a typical completion token.
const delta = " token"

// messageBytesFor returns the Options.MaxMessageBytes that makes a stream
// of request "chat-1" flush once n deltas are buffered: a full message
// flushes at once, without waiting for the interval.
func messageBytesFor(tb testing.TB, n int) int {
	return overhead(tb) + n*len(delta)
}

// BenchmarkPublishChunk measures PublishChunk on the hot path, with a flush
// every 20 deltas (about the 250 ms window of a fast model; here the
// message limit triggers it), flush costs included: allocs/op is
// allocations per delta.
func BenchmarkPublishChunk(b *testing.B) {
	s, err := chunkstream.New(context.Background(), &counter{}, "chat-1", &chunkstream.Options{MaxMessageBytes: messageBytesFor(b, 20)})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		err := s.PublishChunk(delta)
		for errors.Is(err, chunkstream.ErrBufferFull) {
			// The loop outran the flushes (a loaded machine): wait for
			// room, as Pump does, and count the wait.
			runtime.Gosched()
			err = s.PublishChunk(delta)
		}
		if err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if err := s.Close(context.Background()); err != nil {
		b.Fatal(err)
	}
}

// TestPublishesPer1000Deltas counts the messages (end marker included) one
// response of 1,000 deltas costs at the default 250 ms interval, for
// models streaming 10 to 1,000 deltas a second: one per window, where
// publishing every delta would cost 1,000. Time is the synctest bubble's
// fake clock: each delta advances it by 1/rate, and a window that ends is
// flushed before the next delta, as it is in real time. Run with -v to see
// the counts BENCHMARKS.md reports.
func TestPublishesPer1000Deltas(t *testing.T) {
	for _, rate := range []int{10, 50, 200, 1000} {
		t.Run(fmt.Sprintf("deltas-per-second=%d", rate), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				step := time.Second / time.Duration(rate)
				rec := realtimetest.NewRecorder()
				s, err := chunkstream.New(context.Background(), rec, "chat-1", nil)
				if err != nil {
					t.Fatal(err)
				}
				for range 1000 {
					if err := s.PublishChunk(delta); err != nil {
						t.Fatal(err)
					}
					time.Sleep(step)
					synctest.Wait()
				}
				if err := s.Close(ctxT(t)); err != nil {
					t.Fatal(err)
				}
				windows := int(1000 * step / defaultInterval)
				t.Logf("%d publishes per 1000 deltas", rec.Len())
				if rec.Len() != windows+1 {
					t.Fatalf("%d publishes, want %d: one per window and the end marker", rec.Len(), windows+1)
				}
			})
		})
	}
}

// firstSignal is a provider that signals its first publish.
type firstSignal struct {
	once atomic.Bool
	c    chan time.Time
}

func (f *firstSignal) Publish(context.Context, realtime.Message) error {
	if f.once.CompareAndSwap(false, true) {
		f.c <- time.Now()
	}
	return nil
}

// BenchmarkTimeToFirstPublish reports the time from the delta that fills
// a message (which flushes at once) or from the first delta (1 ms
// interval) to the provider's first Publish call.
func BenchmarkTimeToFirstPublish(b *testing.B) {
	b.Run("full-message", func(b *testing.B) {
		limit := messageBytesFor(b, 1)
		var total time.Duration
		for b.Loop() {
			p := &firstSignal{c: make(chan time.Time, 1)}
			s, err := chunkstream.New(context.Background(), p, "chat-1", &chunkstream.Options{MaxMessageBytes: limit})
			if err != nil {
				b.Fatal(err)
			}
			start := time.Now()
			_ = s.PublishChunk(delta)
			total += (<-p.c).Sub(start)
			_ = s.Close(context.Background())
		}
		b.ReportMetric(float64(total.Nanoseconds())/float64(b.N), "ns/first-publish")
	})
	b.Run("real-1ms", func(b *testing.B) {
		var total time.Duration
		for b.Loop() {
			p := &firstSignal{c: make(chan time.Time, 1)}
			s, err := chunkstream.New(context.Background(), p, "chat-1", &chunkstream.Options{Interval: time.Millisecond})
			if err != nil {
				b.Fatal(err)
			}
			start := time.Now()
			_ = s.PublishChunk(delta)
			total += (<-p.c).Sub(start)
			_ = s.Close(context.Background())
		}
		b.ReportMetric(float64(total.Nanoseconds())/float64(b.N), "ns/first-publish")
	})
}
