package chunkstream_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/coursebuilder/realtime-go/chunkstream"
	"github.com/coursebuilder/realtime-go/internal/transport"
	"github.com/coursebuilder/realtime-go/realtime"
	"github.com/coursebuilder/realtime-go/realtime/realtimetest"
)

// unavailable is a transient failure: a provider retries it, a Stream
// does not.
func unavailable() error { return transport.StatusError("test", 503, "", 0) }

// rejected is a permanent failure.
func rejected() error { return transport.StatusError("test", 400, "bad", 0) }

// requireCalls checks, once every goroutine of the bubble is blocked, that
// f was called at least n times.
func requireCalls(t testing.TB, f *realtimetest.Faulty, n int) {
	t.Helper()
	synctest.Wait()
	if f.Calls() < n {
		t.Fatalf("provider called %d times, want %d", f.Calls(), n)
	}
}

// requireErr checks, once every goroutine of the bubble is blocked, that
// the stream failed, and returns its error.
func requireErr(t testing.TB, s *chunkstream.Stream) error {
	t.Helper()
	synctest.Wait()
	if s.Err() == nil {
		t.Fatal("the stream did not fail")
	}
	return s.Err()
}

func TestFlushesEveryTick(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := realtimetest.NewRecorder()
		s, tick := newStream(t, rec, nil)

		require.NoError(t, s.PublishChunk("Hello, "))
		require.NoError(t, s.PublishChunk("world"))
		synctest.Wait()
		assert.Equal(t, 0, rec.Len(), "published before the interval was over")
		tick()
		recs := rec.Records()
		require.Len(t, recs, 1)
		assert.Equal(t, "Hello, world", body(t, recs[0].Message))
		stream, n := chunkID(t, recs[0].Message.ID)
		assert.Equal(t, uint64(1), n)
		assert.Equal(t, `{"body":"Hello, world","requestId":"chat-1","name":"ai.message","id":"`+stream+`.1"}`, string(recs[0].Envelope))

		require.NoError(t, s.PublishChunk("!"))
		tick()
		require.Equal(t, 2, rec.Len())

		require.NoError(t, s.Close(ctxT(t)))
		recs = rec.Records()
		require.Len(t, recs, 3)
		assert.Equal(t, "Hello, world!", reassemble(t, recs, true, 0))
		assert.Equal(t, `{"body":"\\ok","requestId":"chat-1","name":"ai.message","id":"`+stream+`.3"}`, string(recs[2].Envelope))
	})
}

func TestFlushFollowsTheInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := realtimetest.NewRecorder()
		s, _ := newStream(t, rec, &chunkstream.Options{Interval: 100 * time.Millisecond})
		require.NoError(t, s.PublishChunk("a"))
		time.Sleep(99 * time.Millisecond)
		synctest.Wait()
		assert.Zero(t, rec.Len(), "published before the interval was over")
		time.Sleep(time.Millisecond)
		synctest.Wait()
		assert.Equal(t, 1, rec.Len(), "not published when the interval was over")
		require.NoError(t, s.Close(ctxT(t)))
		assert.Equal(t, "a", reassemble(t, rec.Records(), true, 0))
	})
}

func TestEmptyStreamPublishesOnlyTheEndMarker(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := realtimetest.NewRecorder()
		s, tick := newStream(t, rec, nil)
		require.NoError(t, s.PublishChunk(""))
		tick()
		tick()
		require.NoError(t, s.Close(ctxT(t)))
		recs := rec.Records()
		require.Len(t, recs, 1)
		assert.Equal(t, "", reassemble(t, recs, true, 0))
	})
}

func TestSplitsWhatDoesNotFitInOneMessage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const limit = 200
		rec := realtimetest.NewRecorder()
		s, _ := newStream(t, rec, &chunkstream.Options{MaxMessageBytes: limit})
		// Characters that grow when encoded, and some that take several bytes.
		text := strings.Repeat(`<a href="x">&amp;</a> é中😀`+"\u2028\x01\n", 40)
		require.NoError(t, s.PublishChunk(text))
		// No tick, and no time passes: a full buffer flushes on its own.
		synctest.Wait()
		assert.Greater(t, rec.Len(), 10)
		require.NoError(t, s.Close(ctxT(t)))
		recs := rec.Records()
		assert.Greater(t, len(recs), 10)
		assert.Equal(t, text, reassemble(t, recs, true, limit))
	})
}

func TestLargeTextStaysUnderTheEnvelopeLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := realtimetest.NewRecorder()
		s, _ := newStream(t, rec, nil)
		// 2 MiB that encode to 6 times their size.
		text := strings.Repeat("<", 2<<20)
		require.NoError(t, s.PublishChunk(text))
		require.NoError(t, s.Close(ctxT(t)))
		recs := rec.Records()
		assert.Greater(t, len(recs), 24)
		assert.Equal(t, text, reassemble(t, recs, true, realtime.MaxEnvelopeBytes))
	})
}

func TestCharacterSplitBetweenDeltasIsPublishedWhole(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := realtimetest.NewRecorder()
		s, tick := newStream(t, rec, nil)
		emoji := "😀"
		require.NoError(t, s.PublishChunk("a"+emoji[:2]))
		tick()
		require.Equal(t, 1, rec.Len())
		require.NoError(t, s.PublishChunk(emoji[2:]+"b"))
		require.NoError(t, s.Close(ctxT(t)))
		recs := rec.Records()
		require.Len(t, recs, 3)
		assert.Equal(t, "a", body(t, recs[0].Message))
		assert.Equal(t, emoji+"b", body(t, recs[1].Message))
	})
}

func TestTextNeverReadsAsTheEndMarker(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := realtimetest.NewRecorder()
		s, tick := newStream(t, rec, nil)
		require.NoError(t, s.PublishChunk(chunkstream.EndMarker))
		tick()
		require.Equal(t, 2, rec.Len())
		require.NoError(t, s.PublishChunk(chunkstream.EndMarker))
		require.NoError(t, s.Close(ctxT(t)))
		recs := rec.Records()
		assert.Equal(t, `\ok\ok`, reassemble(t, recs, true, 0))
		assert.Len(t, recs, 5, `\o, k, \o, k, end`)
	})
}

func TestOptions(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := realtimetest.NewRecorder()
		s, _ := newStream(t, rec, &chunkstream.Options{Room: "video-7", Name: "ai.reply"})
		require.NoError(t, s.PublishChunk("x"))
		require.NoError(t, s.Close(ctxT(t)))
		require.Len(t, rec.Messages(), 2)
		for _, m := range rec.Messages() {
			assert.Equal(t, "video-7", m.Room)
			assert.Equal(t, "ai.reply", m.Name)
			assert.Equal(t, "chat-1", m.RequestID)
		}
	})
}

func TestNewRefuses(t *testing.T) {
	rec := realtimetest.NewRecorder()
	_, err := chunkstream.New(context.Background(), rec, "", nil)
	assert.ErrorIs(t, err, realtime.ErrInvalidMessage, "empty request id, so empty room")
	_, err = chunkstream.New(context.Background(), rec, "chat\n1", nil)
	assert.ErrorIs(t, err, realtime.ErrControlCharacter)
	_, err = chunkstream.New(context.Background(), rec, "chat-1", &chunkstream.Options{MaxMessageBytes: 60})
	assert.ErrorContains(t, err, "no room for text")
	// The budget counts the longest chunk id and a replay log's seq and epoch.
	assert.ErrorContains(t, err, fmt.Sprintf("(an empty message takes %d bytes)", overhead(t)))
	_, err = chunkstream.New(context.Background(), nil, "chat-1", nil)
	assert.Error(t, err)
}

// pinner records how it is pinned and publishes through a Recorder.
type pinner struct {
	realtimetest.Recorder
	mu     sync.Mutex
	pins   []string
	direct atomic.Int32
}

func (p *pinner) Publish(context.Context, realtime.Message) error {
	p.direct.Add(1)
	return errors.New("not pinned")
}

func (p *pinner) Pin(_ context.Context, room, name string) realtime.Provider {
	p.mu.Lock()
	p.pins = append(p.pins, room+"/"+name)
	p.mu.Unlock()
	return &p.Recorder
}

func TestPinsOnceAtNew(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := &pinner{}
		s, tick := newStream(t, p, nil)
		for range 5 {
			require.NoError(t, s.PublishChunk("x"))
			tick()
		}
		require.NoError(t, s.Close(ctxT(t)))
		assert.Equal(t, []string{"chat-1/ai.message"}, p.pins)
		assert.Zero(t, p.direct.Load())
		assert.Equal(t, "xxxxx", reassemble(t, p.Records(), true, 0))
		assert.Len(t, p.Records(), 6, "one message a tick, then the end marker")
	})
}

func TestCloseIsIdempotent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := realtimetest.NewRecorder()
		s, _ := newStream(t, rec, nil)
		require.NoError(t, s.PublishChunk("rest"))
		var wg sync.WaitGroup
		for range 3 {
			wg.Go(func() { assert.NoError(t, s.Close(ctxT(t))) })
		}
		wg.Wait()
		require.NoError(t, s.Close(ctxT(t)))
		assert.Equal(t, "rest", reassemble(t, rec.Records(), true, 0))
		assert.Len(t, rec.Records(), 2)
		assert.ErrorIs(t, s.PublishChunk("late"), chunkstream.ErrClosed)
		assert.NoError(t, s.Err())
	})
}

func TestCloseIncomplete(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := realtimetest.NewRecorder()
		s, _ := newStream(t, rec, nil)
		require.NoError(t, s.PublishChunk("half an ans"))
		require.NoError(t, s.CloseIncomplete(ctxT(t)))
		require.NoError(t, s.Close(ctxT(t)), "the first close decides")
		assert.Equal(t, "half an ans", reassemble(t, rec.Records(), false, 0))
		assert.Len(t, rec.Records(), 1)
	})
}

// TestSlowProviderNeverBlocksPublishChunk proves the bound on PublishChunk:
// while a publish is stuck in the provider, many PublishChunk calls
// complete, and the ticks that pass start no second publish.
func TestSlowProviderNeverBlocksPublishChunk(t *testing.T) {
	for name, outcome := range map[string]realtimetest.Outcome{
		"hang":  realtimetest.Hang(),
		"delay": realtimetest.Delay(time.Hour, realtimetest.Succeed()),
	} {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := realtimetest.NewFaulty(outcome)
				s, tick := newStream(t, f, nil)
				require.NoError(t, s.PublishChunk("first"))
				tick()
				requireCalls(t, f, 1) // the flush is inside Publish, and stays there

				for i := range 10000 {
					if i%1000 == 0 {
						tick() // 10 ticks: 2.5 s, far less than the hour of "delay"
					}
					require.NoError(t, s.PublishChunk("more text "), "call %d", i)
				}
				synctest.Wait()
				assert.Equal(t, 1, f.Calls(), "one publish in flight at most")

				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
				defer cancel()
				err := s.Close(ctx)
				assert.ErrorIs(t, err, context.DeadlineExceeded)
				var fe *chunkstream.FailedError
				require.ErrorAs(t, err, &fe)
				assert.Equal(t, uint64(1), fe.Seq)
				assert.Equal(t, err, s.Err())
				assert.Zero(t, f.Len())
			})
		})
	}
}

// gate is a provider that holds every publish until it is opened.
type gate struct {
	realtimetest.Recorder
	open    chan struct{}
	waiting atomic.Int32
}

func newGate() *gate { return &gate{open: make(chan struct{})} }

func (g *gate) Publish(ctx context.Context, msg realtime.Message) error {
	g.waiting.Add(1)
	select {
	case <-g.open:
	case <-ctx.Done():
		return ctx.Err()
	}
	return g.Recorder.Publish(ctx, msg)
}

// requireBlocked checks, once every goroutine of the bubble is blocked,
// that a publish is held by the gate.
func (g *gate) requireBlocked(t testing.TB) {
	t.Helper()
	synctest.Wait()
	if g.waiting.Load() == 0 {
		t.Fatal("nothing was published")
	}
}

func TestBufferFullRefusesText(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := newGate()
		s, tick := newStream(t, g, &chunkstream.Options{MaxBuffered: 10})
		require.NoError(t, s.PublishChunk("12345"))
		tick()
		g.requireBlocked(t) // "12345" is in flight, still held

		require.NoError(t, s.PublishChunk("abcd"))
		err := s.PublishChunk("XY")
		require.ErrorIs(t, err, chunkstream.ErrBufferFull)
		require.NoError(t, s.PublishChunk("e"), "what fits is accepted")

		close(g.open)
		synctest.Wait()
		require.Equal(t, 1, g.Len())
		// The caller kept "XY" and offers it again: "12345" is published,
		// so there is room.
		require.NoError(t, s.PublishChunk("XY"))
		require.NoError(t, s.Close(ctxT(t)))
		assert.Equal(t, "12345abcdeXY", reassemble(t, g.Records(), true, 0))
	})
}

// attempts wraps a provider and records every message offered to it.
type attempts struct {
	realtime.Provider
	mu   sync.Mutex
	msgs []realtime.Message
}

func (a *attempts) Publish(ctx context.Context, msg realtime.Message) error {
	a.mu.Lock()
	a.msgs = append(a.msgs, msg)
	a.mu.Unlock()
	return a.Provider.Publish(ctx, msg)
}

// TestTransientFailureFailsTheStream: a publish that fails with a
// retryable 503 is not offered again, though the provider would take it
// now: the provider is called once, and the stream fails at that seq.
func TestTransientFailureFailsTheStream(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := realtimetest.NewFaulty(realtimetest.Succeed(), realtimetest.Fail(unavailable()), realtimetest.Succeed())
		a := &attempts{Provider: f}
		s, tick := newStream(t, a, nil)

		require.NoError(t, s.PublishChunk("a"))
		tick()
		require.NoError(t, s.Err())
		require.NoError(t, s.PublishChunk("b"))
		tick()
		err := requireErr(t, s)
		var fe *chunkstream.FailedError
		require.ErrorAs(t, err, &fe)
		assert.Equal(t, uint64(2), fe.Seq)
		assert.ErrorIs(t, err, realtime.ErrUnavailable)
		assert.Equal(t, "chunkstream: stream failed at seq 2: "+unavailable().Error(), err.Error())

		assert.Equal(t, err, s.PublishChunk("c"), "PublishChunk reports the failure")
		for range 5 {
			tick()
		}
		assert.Equal(t, err, s.Close(ctxT(t)))
		var seen []string
		for _, m := range a.msgs {
			_, n := chunkID(t, m.ID)
			seen = append(seen, body(t, m)+"#"+strconv.FormatUint(n, 10))
		}
		assert.Equal(t, []string{"a#1", "b#2"}, seen, "message 2 once, and nothing after it, not even the end marker")
		assert.Equal(t, "a", reassemble(t, f.Records(), false, 0))
	})
}

// TestFailureAtCloseIsFinal: Close offers the rest of the text once; a
// failure is not tried again at a later tick, and Close returns at once.
func TestFailureAtCloseIsFinal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := realtimetest.NewFaulty(realtimetest.Fail(unavailable()), realtimetest.Succeed())
		s, _ := newStream(t, f, nil)
		require.NoError(t, s.PublishChunk("last words"))
		start := time.Now()
		err := s.Close(ctxT(t))
		assert.Zero(t, time.Since(start), "Close waited to try again")
		var fe *chunkstream.FailedError
		require.ErrorAs(t, err, &fe)
		assert.Equal(t, uint64(1), fe.Seq)
		assert.ErrorIs(t, err, realtime.ErrUnavailable)
		assert.Equal(t, err, s.Close(ctxT(t)), "a second Close does not try again either")
		assert.Equal(t, 1, f.Calls())
		assert.Zero(t, f.Len())
	})
}

// TestEveryFailureGivesUpAtOnce: whatever the error, the failed message is
// offered once and nothing after it is published.
func TestEveryFailureGivesUpAtOnce(t *testing.T) {
	maybe := &realtime.PublishError{Transport: "test", Err: errors.Join(realtime.ErrUnavailable, realtime.ErrMaybeDelivered)}
	for name, c := range map[string]struct {
		outcome realtimetest.Outcome
		is      error
	}{
		"unavailable":     {realtimetest.Fail(unavailable()), realtime.ErrUnavailable},
		"network error":   {realtimetest.Fail(transport.NetworkError("test", io.ErrUnexpectedEOF)), realtime.ErrUnavailable},
		"rejected":        {realtimetest.Fail(rejected()), realtime.ErrRejected},
		"maybe delivered": {realtimetest.Fail(maybe), realtime.ErrMaybeDelivered},
		"plain error":     {realtimetest.Fail(io.ErrUnexpectedEOF), io.ErrUnexpectedEOF},
		"panic":           {realtimetest.Panic("boom"), nil},
	} {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := realtimetest.NewFaulty(realtimetest.Succeed(), c.outcome, realtimetest.Succeed())
				s, tick := newStream(t, f, nil)
				require.NoError(t, s.PublishChunk("a"))
				tick()
				require.Equal(t, 1, f.Len())
				require.NoError(t, s.PublishChunk("b"))
				tick()
				err := requireErr(t, s)
				if c.is != nil {
					assert.ErrorIs(t, err, c.is)
				} else {
					assert.ErrorContains(t, err, "provider panicked: boom")
				}
				var fe *chunkstream.FailedError
				require.ErrorAs(t, err, &fe)
				assert.Equal(t, uint64(2), fe.Seq)
				tick()
				assert.Equal(t, err, s.Close(ctxT(t)))
				assert.Equal(t, 2, f.Calls())
				assert.Equal(t, "a", reassemble(t, f.Records(), false, 0))
			})
		})
	}
}

func TestNewContextEndsTheStream(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		f := realtimetest.NewFaulty(realtimetest.Hang())
		s, err := chunkstream.New(ctx, f, "chat-1", nil)
		require.NoError(t, err)
		require.NoError(t, s.PublishChunk("a"))
		tick(defaultInterval)
		requireCalls(t, f, 1)
		cancel()
		err = requireErr(t, s)
		assert.ErrorIs(t, err, context.Canceled)
		assert.ErrorIs(t, s.PublishChunk("b"), context.Canceled)
		assert.ErrorIs(t, s.Close(ctxT(t)), context.Canceled)
	})
}

// streamer is a provider that implements realtime.StreamPublisher: it keeps
// the bytes of every stream, and publishes messages to its Recorder.
type streamer struct {
	realtimetest.Recorder
	mu      sync.Mutex
	streams []string
	fail    error
}

func (p *streamer) PublishStream(ctx context.Context, room, name string, r io.Reader) error {
	if room != "chat-1" || name != "ai.message" {
		return errors.New("wrong room or name")
	}
	if p.fail != nil {
		return p.fail
	}
	b, err := io.ReadAll(r)
	p.mu.Lock()
	p.streams = append(p.streams, string(b))
	p.mu.Unlock()
	return err
}

func TestTextStream(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := &streamer{}
		s, tick := newStream(t, p, &chunkstream.Options{TextStream: true})
		text := "Voilà: \"quotes\", \\backslash\\, 中文, 😀, <tags> & \u2028 \x00 \\ok"
		for i := 0; i < len(text); i += 3 {
			require.NoError(t, s.PublishChunk(text[i:min(i+3, len(text))]))
			tick()
		}
		require.NoError(t, s.Close(ctxT(t)))

		require.Len(t, p.streams, 1)
		for _, c := range p.streams[0] {
			require.Less(t, c, rune(0x80), "the stream is ASCII")
		}
		got, err := decodeStreamText(p.streams[0])
		require.NoError(t, err)
		assert.Equal(t, text, got)
		recs := p.Records()
		require.Len(t, recs, 1, "only the end marker is a message")
		assert.Equal(t, "", reassemble(t, recs, true, 0))
	})
}

func TestTextStreamNeedsAStreamPublisher(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := realtimetest.NewRecorder()
		s, _ := newStream(t, rec, &chunkstream.Options{TextStream: true})
		require.NoError(t, s.PublishChunk("plain"))
		require.NoError(t, s.Close(ctxT(t)))
		assert.Equal(t, "plain", reassemble(t, rec.Records(), true, 0))
	})
}

func TestTextStreamFailure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := &streamer{fail: unavailable()}
		s, tick := newStream(t, p, &chunkstream.Options{TextStream: true})
		require.NoError(t, s.PublishChunk("lost"))
		tick()
		err := s.Close(ctxT(t))
		assert.ErrorAs(t, err, new(*chunkstream.FailedError))
		assert.ErrorIs(t, err, realtime.ErrUnavailable)
		assert.Zero(t, p.Len(), "no end marker after a failed stream")
	})
}
