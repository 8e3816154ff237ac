package chunkstream_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coursebuilder/realtime-go/chunkstream"
	"github.com/coursebuilder/realtime-go/chunkstream/chunkstreamtest"
	"github.com/coursebuilder/realtime-go/realtime"
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

// BenchmarkPublishChunk measures PublishChunk on the hot path, with a flush
// every 20 deltas (about the 250 ms window of a fast model), flush costs
// included: allocs/op is allocations per delta.
func BenchmarkPublishChunk(b *testing.B) {
	clock := chunkstreamtest.NewClock(time.Time{})
	s, err := chunkstream.New(context.Background(), &counter{}, "chat-1", &chunkstream.Options{Clock: clock})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if err := s.PublishChunk(delta); err != nil {
			b.Fatal(err)
		}
		if i++; i%20 == 0 {
			clock.Tick()
		}
	}
	b.StopTimer()
	if err := s.Close(context.Background()); err != nil {
		b.Fatal(err)
	}
}

// notifier counts publishes and signals each one.
type notifier struct {
	counter
	c chan struct{}
}

func (n *notifier) Publish(ctx context.Context, msg realtime.Message) error {
	err := n.counter.Publish(ctx, msg)
	n.c <- struct{}{}
	return err
}

// BenchmarkPublishesPer1000Deltas reports how many messages (end marker
// included) one response of 1,000 deltas costs at the default 250 ms
// interval, for models streaming 10 to 1,000 deltas a second. Time is the
// fake clock's: each delta advances it by 1/rate, and a window that ends is
// flushed before the next delta, as it is in real time.
func BenchmarkPublishesPer1000Deltas(b *testing.B) {
	for _, rate := range []int{10, 50, 200, 1000} {
		b.Run(fmt.Sprintf("deltas-per-second=%d", rate), func(b *testing.B) {
			b.ReportAllocs()
			step := time.Second / time.Duration(rate)
			var total int64
			for b.Loop() {
				n := &notifier{c: make(chan struct{}, 1)}
				clock := chunkstreamtest.NewClock(time.Time{})
				s, err := chunkstream.New(context.Background(), n, "chat-1", &chunkstream.Options{Clock: clock})
				if err != nil {
					b.Fatal(err)
				}
				var elapsed time.Duration
				for range 1000 {
					if err := s.PublishChunk(delta); err != nil {
						b.Fatal(err)
					}
					before := elapsed / chunkstream.DefaultInterval
					elapsed += step
					clock.Advance(step)
					if elapsed/chunkstream.DefaultInterval > before {
						<-n.c // the window's flush
					}
				}
				go func() {
					for range n.c {
					}
				}()
				if err := s.Close(context.Background()); err != nil {
					b.Fatal(err)
				}
				close(n.c)
				total += n.n.Load()
			}
			b.ReportMetric(float64(total)/float64(b.N), "publishes/1000deltas")
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

// BenchmarkTimeToFirstPublish reports the time from the tick that ends the
// first window (fake clock) or from the first delta (real clock, 1 ms
// interval) to the provider's first Publish call.
func BenchmarkTimeToFirstPublish(b *testing.B) {
	b.Run("fake-tick", func(b *testing.B) {
		var total time.Duration
		for b.Loop() {
			p := &firstSignal{c: make(chan time.Time, 1)}
			clock := chunkstreamtest.NewClock(time.Time{})
			s, err := chunkstream.New(context.Background(), p, "chat-1", &chunkstream.Options{Clock: clock})
			if err != nil {
				b.Fatal(err)
			}
			_ = s.PublishChunk(delta)
			start := time.Now()
			clock.Tick()
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
