package retry

import (
	"context"
	"errors"
	"testing"
	"time"
)

type transient struct{ after time.Duration }

func (transient) Error() string { return "transient" }

// classify retries a transient error (after its delay) and nothing else.
func classify(err error) (bool, time.Duration) {
	var t transient
	if errors.As(err, &t) {
		return true, t.after
	}
	return false, 0
}

var permanent = errors.New("permanent")

func TestDoStopsOnSuccessPermanentErrorOrAttempts(t *testing.T) {
	p := Policy{Attempts: 4, BaseDelay: time.Microsecond, MaxDelay: time.Millisecond}
	cases := []struct {
		name     string
		results  []error
		attempts int
		last     error
	}{
		{"success first", []error{nil}, 1, nil},
		{"success third", []error{transient{}, transient{}, nil}, 3, nil},
		{"permanent stops", []error{transient{}, permanent}, 2, permanent},
		{"attempts run out", []error{transient{}, transient{}, transient{}, transient{}, nil}, 4, transient{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			n, last, stop := p.Do(context.Background(), classify, func(_ context.Context, attempt int) error { return c.results[attempt-1] })
			if n != c.attempts || !errors.Is(last, c.last) || stop != nil {
				t.Fatalf("got (%d, %v, %v), want (%d, %v, nil)", n, last, stop, c.attempts, c.last)
			}
		})
	}
}

func TestDoNeverSleepsPastTheDeadline(t *testing.T) {
	p := Policy{Attempts: 3, MaxDelay: time.Hour}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	n, last, stop := p.Do(ctx, classify, func(context.Context, int) error { return transient{after: 2 * time.Minute} })
	if n != 1 || !errors.Is(stop, context.DeadlineExceeded) || last == nil || ctx.Err() != nil {
		t.Fatalf("got (%d, %v, %v): want one attempt and an immediate give-up", n, last, stop)
	}
}

func TestDoReturnsWhenCancelledDuringBackoff(t *testing.T) {
	p := Policy{Attempts: 3, BaseDelay: time.Hour, MaxDelay: time.Hour, Jitter: func() float64 { return 1 }}
	ctx, cancel := context.WithCancel(context.Background())
	n, _, stop := p.Do(ctx, classify, func(context.Context, int) error { cancel(); return transient{} })
	if n != 1 || !errors.Is(stop, context.Canceled) {
		t.Fatalf("got (%d, %v)", n, stop)
	}
}

func TestDelayIsExponentialJitteredAndCapped(t *testing.T) {
	p := Policy{BaseDelay: 100 * time.Millisecond, MaxDelay: time.Second, Jitter: func() float64 { return 1 }}
	want := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond, time.Second, time.Second}
	for i, w := range want {
		if got := p.Delay(i+1, 0); got != w {
			t.Errorf("Delay(%d) = %v, want %v", i+1, got, w)
		}
	}
	p.Jitter = func() float64 { return 0.5 }
	if got := p.Delay(2, 0); got != 100*time.Millisecond {
		t.Errorf("half jitter: %v", got)
	}
	if got := p.Delay(1, 3*time.Second); got != time.Second {
		t.Errorf("Retry-After is capped by MaxDelay: %v", got)
	}
	if got := p.Delay(1, 300*time.Millisecond); got != 300*time.Millisecond {
		t.Errorf("Retry-After wins over backoff: %v", got)
	}
}

func TestDoNeverRetriesTheContextsOwnError(t *testing.T) {
	p := Policy{Attempts: 3}
	always := func(error) (bool, time.Duration) { return true, 0 }
	for _, cause := range []error{context.Canceled, context.DeadlineExceeded} {
		n, last, _ := p.Do(context.Background(), always, func(context.Context, int) error { return errors.Join(transient{}, cause) })
		if n != 1 || !errors.Is(last, cause) {
			t.Fatalf("%v: got %d attempts (%v), want 1", cause, n, last)
		}
	}
}
