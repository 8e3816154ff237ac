package chunkstream

import "time"

// Clock makes the ticker that paces a [Stream]'s flushes. Tests inject a
// fake one, such as chunkstreamtest.Clock, to decide when flushes happen
// without sleeping.
type Clock interface {
	NewTicker(d time.Duration) Ticker
}

// Ticker delivers ticks like a [time.Ticker]: a tick that is not received
// before the next one is due is dropped.
type Ticker interface {
	// C returns the channel the ticks are delivered on.
	C() <-chan time.Time
	// Stop turns the ticker off.
	Stop()
}

// SystemClock is the [Clock] of package time, the default.
type SystemClock struct{}

// NewTicker returns a [time.NewTicker] ticker.
func (SystemClock) NewTicker(d time.Duration) Ticker { return systemTicker{time.NewTicker(d)} }

type systemTicker struct{ t *time.Ticker }

func (t systemTicker) C() <-chan time.Time { return t.t.C }
func (t systemTicker) Stop()               { t.t.Stop() }
