// Package chunkstreamtest helps test code that streams text with package
// chunkstream: [Clock] is a fake [chunkstream.Clock] whose ticks the test
// delivers, so that flushes happen when the test says and never because
// time passed.
package chunkstreamtest

import (
	"sync"
	"time"

	"github.com/coursebuilder/realtime-go/chunkstream"
)

// Clock is a [chunkstream.Clock] driven by the test: its time stands still
// until Advance moves it, and Tick fires every ticker at once. It is safe
// for concurrent use; the zero value is ready to use and starts at the zero
// time.
type Clock struct {
	mu      sync.Mutex
	now     time.Time
	tickers []*Ticker
}

var _ chunkstream.Clock = (*Clock)(nil)

// NewClock returns a Clock whose time is start.
func NewClock(start time.Time) *Clock { return &Clock{now: start} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// NewTicker returns a ticker that fires every d of the clock's time. It
// panics if d is not positive, as time.NewTicker does.
func (c *Clock) NewTicker(d time.Duration) chunkstream.Ticker {
	if d <= 0 {
		panic("chunkstreamtest: non-positive interval for NewTicker")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &Ticker{clock: c, period: d, next: c.now.Add(d), c: make(chan time.Time, 1)}
	c.tickers = append(c.tickers, t)
	return t
}

// Tickers returns how many tickers are running.
func (c *Clock) Tickers() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.tickers)
}

// Tick fires every running ticker once, now, whatever its period. Like a
// time.Ticker, a ticker whose previous tick was not received yet drops the
// new one. Tick does not wait for the ticks to be received.
func (c *Clock) Tick() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, t := range c.tickers {
		t.fire(c.now)
	}
}

// Advance moves the clock's time forward by d and fires every ticker whose
// next tick is due (once, even if several periods passed, as a slow
// receiver of a time.Ticker sees).
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	for _, t := range c.tickers {
		if !t.next.After(c.now) {
			t.fire(c.now)
			for !t.next.After(c.now) {
				t.next = t.next.Add(t.period)
			}
		}
	}
}

// Ticker is a ticker of a [Clock].
type Ticker struct {
	clock  *Clock
	period time.Duration
	next   time.Time
	c      chan time.Time
}

// C returns the channel the ticks are delivered on.
func (t *Ticker) C() <-chan time.Time { return t.c }

// Stop turns the ticker off; it is safe to call more than once.
func (t *Ticker) Stop() {
	c := t.clock
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, x := range c.tickers {
		if x == t {
			c.tickers = append(c.tickers[:i], c.tickers[i+1:]...)
			return
		}
	}
}

func (t *Ticker) fire(now time.Time) {
	select {
	case t.c <- now:
	default:
	}
}
