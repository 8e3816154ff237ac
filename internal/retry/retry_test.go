package retry

import (
	"context"
	"errors"
	"testing"
	"time"
)

type transient struct{ after time.Duration }

func (transient) Error() string                       { return "transient" }
func (transient) Retryable() bool                     { return true }
func (e transient) RetryAfter() (time.Duration, bool) { return e.after, e.after > 0 }

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
			n, last, stop := p.Do(context.Background(), func(_ context.Context, attempt int) error { return c.results[attempt-1] })
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
	n, last, stop := p.Do(ctx, func(context.Context, int) error { return transient{after: 2 * time.Minute} })
	if n != 1 || !errors.Is(stop, context.DeadlineExceeded) || last == nil || ctx.Err() != nil {
		t.Fatalf("got (%d, %v, %v): want one attempt and an immediate give-up", n, last, stop)
	}
}

func TestDoReturnsWhenCancelledDuringBackoff(t *testing.T) {
	p := Policy{Attempts: 3, BaseDelay: time.Hour, MaxDelay: time.Hour, Jitter: func() float64 { return 1 }}
	ctx, cancel := context.WithCancel(context.Background())
	n, _, stop := p.Do(ctx, func(context.Context, int) error { cancel(); return transient{} })
	if n != 1 || !errors.Is(stop, context.Canceled) {
		t.Fatalf("got (%d, %v)", n, stop)
	}
}

func TestDelayIsExponentialJitteredAndCapped(t *testing.T) {
	p := Policy{BaseDelay: 100 * time.Millisecond, MaxDelay: time.Second, Jitter: func() float64 { return 1 }}
	want := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond, time.Second, time.Second}
	for i, w := range want {
		if got := p.Delay(i+1, transient{}); got != w {
			t.Errorf("Delay(%d) = %v, want %v", i+1, got, w)
		}
	}
	p.Jitter = func() float64 { return 0.5 }
	if got := p.Delay(2, transient{}); got != 100*time.Millisecond {
		t.Errorf("half jitter: %v", got)
	}
	if got := p.Delay(1, transient{after: 3 * time.Second}); got != time.Second {
		t.Errorf("Retry-After is capped by MaxDelay: %v", got)
	}
	if got := p.Delay(1, transient{after: 300 * time.Millisecond}); got != 300*time.Millisecond {
		t.Errorf("Retry-After wins over backoff: %v", got)
	}
}

func TestIsRetryable(t *testing.T) {
	if IsRetryable(nil) || IsRetryable(permanent) || IsRetryable(errors.Join(transient{}, context.Canceled)) {
		t.Fatal("nil, permanent and cancelled errors are not retryable")
	}
	if !IsRetryable(errors.Join(errors.New("wrapped"), transient{})) {
		t.Fatal("a wrapped retryable error is retryable")
	}
}
