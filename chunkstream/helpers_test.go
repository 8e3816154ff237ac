package chunkstream_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/coursebuilder/realtime-go/chunkstream"
	"github.com/coursebuilder/realtime-go/chunkstream/chunkstreamtest"
	"github.com/coursebuilder/realtime-go/realtime"
	"github.com/coursebuilder/realtime-go/realtime/realtimetest"
)

// wait bounds every wait for something that must happen.
const wait = 10 * time.Second

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	t.Cleanup(cancel)
	return ctx
}

// newStream returns a stream on a fake clock, closed (if the test did not)
// when t ends.
func newStream(t testing.TB, p realtime.Provider, opts *chunkstream.Options) (*chunkstream.Stream, *chunkstreamtest.Clock) {
	t.Helper()
	clock := chunkstreamtest.NewClock(time.Unix(0, 0))
	var o chunkstream.Options
	if opts != nil {
		o = *opts
	}
	if o.Clock == nil {
		o.Clock = clock
	}
	s, err := chunkstream.New(context.Background(), p, "chat-1", &o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		_ = s.Close(ctx)
	})
	return s, clock
}

// closeTicking closes s while ticking clock, so that retries at Close, which
// wait for ticks, happen.
func closeTicking(t testing.TB, s *chunkstream.Stream, clock *chunkstreamtest.Clock) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- s.Close(ctxT(t)) }()
	for {
		select {
		case err := <-done:
			return err
		default:
			clock.Tick()
			time.Sleep(50 * time.Microsecond) // yield; not a timing assumption
		}
	}
}

// body returns the text of a recorded message.
func body(t testing.TB, m realtime.Message) string {
	t.Helper()
	s, ok := m.Body.(string)
	if !ok {
		t.Fatalf("seq %d: body is %T, want string", m.Seq, m.Body)
	}
	return s
}

// reassemble checks what a client relies on — seq 1..n in publish order,
// the end marker last (when end is set), every envelope within limit — and
// returns the concatenated text.
func reassemble(t testing.TB, recs []realtimetest.Record, end bool, limit int) string {
	t.Helper()
	var sb strings.Builder
	for i, r := range recs {
		m := r.Message
		if m.Seq != uint64(i+1) {
			t.Fatalf("message %d has seq %d, want %d", i, m.Seq, i+1)
		}
		if m.Room != "chat-1" || m.Name != "ai.message" || m.RequestID != "chat-1" {
			t.Fatalf("seq %d: room %q, name %q, requestId %q", m.Seq, m.Room, m.Name, m.RequestID)
		}
		if limit > 0 && len(r.Envelope) > limit {
			t.Fatalf("seq %d: envelope of %d bytes, limit %d", m.Seq, len(r.Envelope), limit)
		}
		var env struct {
			Seq uint64 `json:"seq"`
		}
		if err := json.Unmarshal(r.Envelope, &env); err != nil || env.Seq != m.Seq {
			t.Fatalf("seq %d: envelope %s has seq %d (%v)", m.Seq, r.Envelope, env.Seq, err)
		}
		if i == len(recs)-1 && end {
			if b := body(t, m); b != chunkstream.EndMarker {
				t.Fatalf("last message (seq %d) is %q, want the end marker", m.Seq, b)
			}
			break
		}
		b := body(t, m)
		if b == chunkstream.EndMarker {
			t.Fatalf("seq %d: a text message reads as the end marker", m.Seq)
		}
		sb.WriteString(b)
	}
	if end && len(recs) == 0 {
		t.Fatal("no message, not even the end marker")
	}
	return sb.String()
}
