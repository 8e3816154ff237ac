package realtimetest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/coursebuilder/realtime-go/realtime"
)

// Record is one message a [Recorder] accepted.
type Record struct {
	// Message is what was published.
	Message realtime.Message
	// Envelope is the encoded wire form, exactly what a real provider sends.
	Envelope []byte
	// At is when it was recorded.
	At time.Time
}

// Recorder is a [realtime.Provider] that keeps what it is given. Publish
// validates and encodes like every provider, so invalid messages fail here
// as they would in production, and PublishEnvelope keeps an envelope
// encoded already as it is, as the transports do (so a Broadcast over
// Recorders encodes each message once). A type that embeds a Recorder to
// change what Publish does must define PublishEnvelope too: Broadcast calls
// PublishEnvelope, which would otherwise reach the Recorder's own. The zero
// value is ready to use.
type Recorder struct {
	mu      sync.Mutex
	records []Record
	changed chan struct{} // closed and replaced on every change
}

var _ realtime.EnvelopePublisher = (*Recorder)(nil)

// NewRecorder returns an empty Recorder.
func NewRecorder() *Recorder { return &Recorder{} }

// Publish records msg, or returns the error a real provider would return
// before sending: a done context, a validation, encoding or size error.
func (r *Recorder) Publish(ctx context.Context, msg realtime.Message) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	env, err := realtime.NewEnvelope(ctx, msg)
	if err != nil {
		return err
	}
	return r.PublishEnvelope(ctx, env)
}

// PublishEnvelope records env's message and bytes as they are, or returns
// the error a real transport would return before sending: a done context,
// a nil envelope, or an envelope over realtime.MaxEnvelopeBytes.
func (r *Recorder) PublishEnvelope(ctx context.Context, env *realtime.Envelope) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if env == nil || env.Bytes() == nil {
		return fmt.Errorf("%w: no envelope", realtime.ErrInvalidMessage)
	}
	if n := len(env.Bytes()); n > realtime.MaxEnvelopeBytes {
		return &realtime.TooLargeError{Size: n, Limit: realtime.MaxEnvelopeBytes}
	}
	r.mu.Lock()
	r.records = append(r.records, Record{Message: env.Message(), Envelope: env.Bytes(), At: time.Now()})
	r.notifyLocked()
	r.mu.Unlock()
	return nil
}

// Records returns a copy of everything recorded so far, in publish order.
func (r *Recorder) Records() []Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Record(nil), r.records...)
}

// Messages returns the recorded messages, in publish order.
func (r *Recorder) Messages() []realtime.Message {
	recs := r.Records()
	msgs := make([]realtime.Message, len(recs))
	for i, rec := range recs {
		msgs[i] = rec.Message
	}
	return msgs
}

// Len returns how many messages were recorded.
func (r *Recorder) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.records)
}

// Reset forgets everything recorded.
func (r *Recorder) Reset() {
	r.mu.Lock()
	r.records = nil
	r.notifyLocked()
	r.mu.Unlock()
}

// WaitFor blocks until at least n messages are recorded and returns the
// first n, or returns ctx's error with what was recorded by then.
func (r *Recorder) WaitFor(ctx context.Context, n int) ([]Record, error) {
	return r.WaitUntil(ctx, func(recs []Record) bool { return len(recs) >= n })
}

// WaitUntil blocks until ok holds for the records so far and returns them,
// or returns ctx's error with what was recorded by then.
func (r *Recorder) WaitUntil(ctx context.Context, ok func([]Record) bool) ([]Record, error) {
	for {
		r.mu.Lock()
		recs := append([]Record(nil), r.records...)
		if r.changed == nil {
			r.changed = make(chan struct{})
		}
		changed := r.changed
		r.mu.Unlock()
		if ok(recs) {
			return recs, nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return recs, ctx.Err()
		}
	}
}

func (r *Recorder) notifyLocked() {
	if r.changed != nil {
		close(r.changed)
		r.changed = nil
	}
}

// Subscribe watches room for the given names (all names when none are
// given), from now on. It makes a Recorder usable as a [Target] of [Run].
func (r *Recorder) Subscribe(_ context.Context, room string, names []string) (Subscription, error) {
	return &recorderSub{r: r, room: room, names: names, from: r.Len()}, nil
}

type recorderSub struct {
	r     *Recorder
	room  string
	names []string
	from  int
}

func (s *recorderSub) Next(ctx context.Context) ([]byte, error) {
	var found []byte
	_, err := s.r.WaitUntil(ctx, func(recs []Record) bool {
		if s.from > len(recs) { // the Recorder was Reset
			s.from = 0
		}
		for ; s.from < len(recs); s.from++ {
			rec := recs[s.from]
			if rec.Message.Room == s.room && (len(s.names) == 0 || slices.Contains(s.names, rec.Message.Name)) {
				found = rec.Envelope
				s.from++
				return true
			}
		}
		return false
	})
	return found, err
}

func (s *recorderSub) Close() error { return nil }
