package realtimetest

import (
	"context"
	"sync"
	"time"

	"github.com/coursebuilder/realtime-go/realtime"
)

// Outcome decides what one call to [Faulty.Publish] does. It returns nil to
// let the message through to the Faulty's Recorder.
type Outcome func(ctx context.Context, msg realtime.Message) error

// Succeed lets the message through.
func Succeed() Outcome { return func(context.Context, realtime.Message) error { return nil } }

// Fail returns err without recording the message.
func Fail(err error) Outcome { return func(context.Context, realtime.Message) error { return err } }

// Hang blocks until the caller's context ends and returns its error, like a
// server that accepts a connection and never answers.
func Hang() Outcome {
	return func(ctx context.Context, _ realtime.Message) error {
		<-ctx.Done()
		return ctx.Err()
	}
}

// Delay waits d (or until the context ends) and then does then.
func Delay(d time.Duration, then Outcome) Outcome {
	return func(ctx context.Context, msg realtime.Message) error {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
			return then(ctx, msg)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Panic panics with v, to prove that callers contain a misbehaving provider.
func Panic(v any) Outcome { return func(context.Context, realtime.Message) error { panic(v) } }

// Faulty is a [realtime.Provider] that follows a script: call i gets
// outcome i, and calls after the script repeat its last outcome (an empty
// script always succeeds). Messages that get through are validated, encoded
// and recorded in Recorder, so a test sees exactly what was "delivered".
type Faulty struct {
	// Recorder holds the messages that got through.
	Recorder

	mu     sync.Mutex
	script []Outcome
	calls  int
}

var _ realtime.EnvelopePublisher = (*Faulty)(nil)

// NewFaulty returns a Faulty that follows script.
func NewFaulty(script ...Outcome) *Faulty { return &Faulty{script: script} }

// SetScript replaces the script and restarts it at its first outcome.
func (f *Faulty) SetScript(script ...Outcome) {
	f.mu.Lock()
	f.script, f.calls = script, 0
	f.mu.Unlock()
}

// Calls returns how many times Publish was called.
func (f *Faulty) Calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

// Publish applies the next outcome, then records msg if it returned nil.
func (f *Faulty) Publish(ctx context.Context, msg realtime.Message) error {
	if err := f.next()(ctx, msg); err != nil {
		return err
	}
	return f.Recorder.Publish(ctx, msg)
}

// PublishEnvelope applies the next outcome to env's message, then records
// env if it returned nil.
func (f *Faulty) PublishEnvelope(ctx context.Context, env *realtime.Envelope) error {
	out := f.next()
	if env != nil {
		if err := out(ctx, env.Message()); err != nil {
			return err
		}
	}
	return f.Recorder.PublishEnvelope(ctx, env)
}

// next counts a call and returns its outcome.
func (f *Faulty) next() Outcome {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := Succeed()
	if n := len(f.script); n > 0 {
		out = f.script[min(f.calls, n-1)]
	}
	f.calls++
	return out
}
