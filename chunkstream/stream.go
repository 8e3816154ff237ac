package chunkstream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"sync"
	"time"
	"unicode/utf8"

	"go.uber.org/zap"

	"github.com/coursebuilder/realtime-go/internal/textutil"
	"github.com/coursebuilder/realtime-go/realtime"
)

// Defaults for [Options], and the wire values of the legacy contract.
const (
	// DefaultInterval is how often a Stream flushes: the 250 ms of the
	// TypeScript OpenAI provider.
	DefaultInterval = 250 * time.Millisecond
	// DefaultName is the event name of every message of a stream.
	DefaultName = "ai.message"
	// EndMarker is the body of the last message of a complete stream, the
	// TypeScript STREAM_COMPLETE.
	EndMarker = `\ok`
	// DefaultMaxBuffered bounds the text a Stream holds before it is
	// published.
	DefaultMaxBuffered = 4 << 20
	// DefaultMaxAttempts is how many times a message is offered to the
	// provider before the stream gives up.
	DefaultMaxAttempts = 3
)

// minBody is the least room for text a message must have: one character,
// escaped (\u2028) or invalid (\ufffd).
const minBody = 6

// Options configures [New]. A nil *Options, and every zero field, means the
// documented default: the options style of every package of this module.
type Options struct {
	// Room is the room the messages are published to. Defaults to the
	// request id: the TypeScript provider publishes a chat to the room
	// named after its chat id.
	Room string
	// Name is the event name of the messages. Defaults to "ai.message".
	Name string
	// Interval is the time between two flushes. Defaults to 250ms.
	Interval time.Duration
	// MaxMessageBytes bounds the encoded envelope of every message. A flush
	// whose text does not fit in one message publishes several, and a flush
	// happens before the interval is over once the buffered text fills a
	// message. Defaults to, and cannot exceed, realtime.MaxEnvelopeBytes.
	MaxMessageBytes int
	// MaxBuffered bounds, in bytes, the text accepted by PublishChunk and
	// not yet published; past it PublishChunk fails with ErrBufferFull.
	// Defaults to 4 MiB.
	MaxBuffered int
	// MaxAttempts is how many times a message is offered to the provider,
	// one flush after the other, before the stream gives up. Each attempt
	// is one Publish call, which may itself retry (realtime.Inngest does).
	// Defaults to 3.
	MaxAttempts int
	// Retryable says whether a failed publish is tried again at the next
	// flush. Defaults to DefaultRetryable. It is not asked about an error
	// that matches realtime.ErrMaybeDelivered anywhere in its tree: such a
	// message is never sent again.
	Retryable func(error) bool
	// TextStream sends the text with the provider's streaming publish when
	// the provider (after Pin) implements realtime.StreamPublisher, as
	// *realtime.Inngest does: see the package doc. Otherwise it has no
	// effect.
	TextStream bool
	// Logger receives retry and failure diagnostics, never text. Defaults
	// to zap.NewNop().
	Logger *zap.Logger
}

// Stream publishes the text of one streamed response, in order, through a
// [realtime.Provider]. Create one with [New], feed it with
// [Stream.PublishChunk] (or [Pump]) and end it with [Stream.Close].
type Stream struct {
	// Fixed by New.
	provider    realtime.Provider
	streamer    realtime.StreamPublisher // set in text-stream mode
	room, name  string
	requestID   string
	maxBody     int // room for text in one message, encoded
	maxBuffered int
	maxAttempts int
	retryable   func(error) bool
	log         *zap.Logger
	ticker      *time.Ticker

	ctx       context.Context
	cancel    context.CancelCauseFunc
	kick      chan struct{} // a full message is buffered
	closing   chan struct{}
	done      chan struct{}
	closeOnce sync.Once
	complete  bool // set by the first Close or CloseIncomplete, before closing is closed

	mu     sync.Mutex
	buf    []byte // accepted, not yet taken by a flush
	bufEnc int    // encodedLen(buf), an upper bound
	held   int    // accepted and not yet published: buf and queue
	closed bool
	err    error
	space  chan struct{} // closed when held shrinks or the stream ends

	// Owned by the run goroutine.
	spare  []byte
	queue  []pending
	qhead  int
	seq    uint64
	tries  int
	ended  bool // the end marker is queued
	pw     *io.PipeWriter
	sdone  chan error
	escBuf []byte
}

// pending is a message with its sequence number, published or retried as
// is: a Seq never names two different texts.
type pending struct {
	msg  realtime.Message
	size int // text bytes it holds, counted in held
}

// New starts a stream for requestID over p and returns it. It fails with a
// [*realtime.ValidationError] when the room, name or request id cannot be
// published, or when [Options.MaxMessageBytes] leaves no room for text.
//
// When p implements [realtime.Pinner], New calls Pin once: the routing
// chosen now (a broadcast's flag decision) holds for every message of the
// stream, so one response never splits between two transports.
//
// ctx bounds the stream's life: when it ends, the stream abandons what is
// not published yet and fails with its cause. It is also the context of
// every publish, so its values reach the provider.
func New(ctx context.Context, p realtime.Provider, requestID string, opts *Options) (*Stream, error) {
	if p == nil {
		return nil, errors.New("chunkstream: nil provider")
	}
	var o Options
	if opts != nil {
		o = *opts
	}
	s := &Stream{
		room:        o.Room,
		name:        o.Name,
		requestID:   requestID,
		maxBuffered: o.MaxBuffered,
		maxAttempts: o.MaxAttempts,
		retryable:   o.Retryable,
		log:         o.Logger,
		kick:        make(chan struct{}, 1),
		closing:     make(chan struct{}),
		done:        make(chan struct{}),
	}
	if s.room == "" {
		s.room = requestID
	}
	if s.name == "" {
		s.name = DefaultName
	}
	limit := o.MaxMessageBytes
	if limit <= 0 || limit > realtime.MaxEnvelopeBytes {
		limit = realtime.MaxEnvelopeBytes
	}
	overhead, err := realtime.Message{Room: s.room, Name: s.name, RequestID: requestID, Body: "", Seq: math.MaxUint64}.Encode()
	if err != nil {
		return nil, err
	}
	if s.maxBody = limit - len(overhead); s.maxBody < minBody {
		return nil, fmt.Errorf("chunkstream: MaxMessageBytes %d leaves no room for text (an empty message takes %d bytes)", limit, len(overhead))
	}
	if s.maxBuffered <= 0 {
		s.maxBuffered = DefaultMaxBuffered
	}
	if s.maxAttempts <= 0 {
		s.maxAttempts = DefaultMaxAttempts
	}
	if s.retryable == nil {
		s.retryable = DefaultRetryable
	}
	if s.log == nil {
		s.log = zap.NewNop()
	}
	interval := o.Interval
	if interval <= 0 {
		interval = DefaultInterval
	}

	if pin, ok := p.(realtime.Pinner); ok {
		p = pin.Pin(ctx, s.room, s.name)
	}
	s.provider = p
	if sp, ok := p.(realtime.StreamPublisher); ok && o.TextStream {
		s.streamer = sp
	}
	s.ctx, s.cancel = context.WithCancelCause(ctx)
	s.ticker = time.NewTicker(interval)
	go s.run()
	return s, nil
}

// PublishChunk appends text to the stream; the next flush publishes it. It
// only copies text under a mutex and never waits for the provider, however
// slow: a publish in flight makes it neither slower nor blocked.
//
// It fails, without accepting text, with [ErrBufferFull] when the stream
// already holds [Options.MaxBuffered] bytes not yet published, with
// [ErrClosed] after Close, with the stream's [*FailedError] once it gave
// up, and with [ErrInvalidUTF8] for text that is not valid UTF-8 and cannot
// become valid. Empty text is accepted and ignored.
//
// The rule for UTF-8: a character may be split between two calls (a model's
// deltas may cut one), and is published whole; so text may end with the
// first bytes of a character, and the next call must then begin with the
// bytes that complete it. Any other invalid byte sequence is refused, the
// whole text with it, and the stream is unchanged: nothing is ever
// published as U+FFFD. A character still incomplete when the stream is
// closed is not published. U+FFFD itself, valid in the input, is published
// like any other character.
func (s *Stream) PublishChunk(text string) error {
	s.mu.Lock()
	err := s.appendLocked(text)
	full := s.bufEnc >= s.maxBody
	s.mu.Unlock()
	if err == nil && full {
		select {
		case s.kick <- struct{}{}:
		default:
		}
	}
	return err
}

func (s *Stream) appendLocked(text string) error {
	switch {
	case s.err != nil:
		return s.err
	case s.closed:
		return ErrClosed
	}
	if err := s.checkLocked(text); err != nil {
		return err
	}
	if s.held+len(text) > s.maxBuffered {
		return ErrBufferFull
	}
	s.buf = append(s.buf, text...)
	s.held += len(text)
	s.bufEnc += encodedLen(text)
	return nil
}

// checkLocked returns an error matching ErrInvalidUTF8 unless text may
// follow the buffer in valid UTF-8. The buffer is valid UTF-8 but for an
// incomplete character at its end, which text may complete.
func (s *Stream) checkLocked(text string) error {
	var pending []byte
	if n := len(s.buf); n > 0 && s.buf[n-1] >= utf8.RuneSelf {
		pending = s.buf[textutil.CompleteRunes(s.buf):]
	}
	at := invalidAt(pending, text)
	if at < 0 {
		return nil
	}
	return fmt.Errorf("%w: invalid sequence at byte %d of %d; none of the text was accepted", ErrInvalidUTF8, at, len(text))
}

// publishWait is PublishChunk that waits for room instead of failing with
// ErrBufferFull, until ctx ends. Text larger than MaxBuffered is accepted
// in parts.
func (s *Stream) publishWait(ctx context.Context, text string) error {
	// Refuse invalid text before any part of it is accepted.
	s.mu.Lock()
	err := s.checkLocked(text)
	s.mu.Unlock()
	if err != nil {
		return err
	}
	for text != "" {
		part := text[:min(len(text), s.maxBuffered)]
		s.mu.Lock()
		err := s.appendLocked(part)
		if errors.Is(err, ErrBufferFull) {
			if s.space == nil {
				s.space = make(chan struct{})
			}
			wake := s.space
			s.mu.Unlock()
			select {
			case <-wake:
				continue
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		full := s.bufEnc >= s.maxBody
		s.mu.Unlock()
		if err != nil {
			return err
		}
		if full {
			select {
			case s.kick <- struct{}{}:
			default:
			}
		}
		text = text[len(part):]
	}
	return nil
}

// Close publishes the text not published yet, then the end marker as a
// message of its own, and waits for both, or until ctx ends: then what is
// left is abandoned and the stream fails with ctx's error. A message that
// fails with a retryable error is tried again after an interval, up to
// MaxAttempts. Close returns nil when everything was published (but for a
// character the text left incomplete, see [Stream.PublishChunk]), the
// stream's [*FailedError] otherwise. Every goroutine the stream started has
// ended when Close returns.
//
// Close is safe to call more than once, and concurrently: every call waits
// for the same end and returns the same result.
func (s *Stream) Close(ctx context.Context) error { return s.close(ctx, true) }

// CloseIncomplete is Close without the end marker, for a response that
// broke off: the text accepted so far is published, and clients keep
// waiting for an end that will not come (tell them in another way). Only
// the first of Close and CloseIncomplete decides whether the end marker is
// published.
func (s *Stream) CloseIncomplete(ctx context.Context) error { return s.close(ctx, false) }

func (s *Stream) close(ctx context.Context, complete bool) error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		s.wakeLocked()
		s.mu.Unlock()
		s.complete = complete
		close(s.closing)
	})
	select {
	case <-s.done:
	case <-ctx.Done():
		s.cancel(ctx.Err())
		<-s.done
	}
	return s.Err()
}

// Err returns the stream's [*FailedError] once it gave up, nil until then.
func (s *Stream) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// wakeLocked wakes the callers of publishWait.
func (s *Stream) wakeLocked() {
	if s.space != nil {
		close(s.space)
		s.space = nil
	}
}

func (s *Stream) fail(err error) {
	s.mu.Lock()
	if s.err == nil {
		s.err = err
	}
	s.wakeLocked()
	s.mu.Unlock()
	s.log.Warn("chunkstream: stream failed; nothing more is published",
		zap.String("room", s.room), zap.String("request_id", s.requestID), zap.Error(err))
}

// failCtx fails the stream because its context ended.
func (s *Stream) failCtx() {
	s.fail(&FailedError{Seq: s.headSeq(), Attempts: s.tries, Err: context.Cause(s.ctx)})
}

// headSeq is the sequence number of the first message not published.
func (s *Stream) headSeq() uint64 {
	if s.qhead < len(s.queue) {
		return s.queue[s.qhead].msg.Seq
	}
	if s.streamer != nil && !s.ended {
		return 0
	}
	return s.seq + 1
}

// run is the stream's goroutine: every flush happens here, one at a time.
func (s *Stream) run() {
	defer close(s.done)
	defer s.cancel(nil) // release the context
	defer s.ticker.Stop()
	defer s.endTextStream()
	for {
		select {
		case <-s.ctx.Done():
			s.failCtx()
			return
		case <-s.closing:
			s.finish()
			return
		case <-s.ticker.C:
		case <-s.kick:
		}
		if !s.flush(false) {
			return
		}
	}
}

// finish flushes everything, the end marker included, retrying failed
// messages at each tick.
func (s *Stream) finish() {
	for {
		if !s.flush(true) {
			return
		}
		if s.qhead == len(s.queue) {
			return
		}
		select {
		case <-s.ctx.Done():
			s.failCtx()
			return
		case <-s.ticker.C:
		}
	}
}

// flush publishes what was accepted so far and reports whether the stream
// is still healthy. A final flush takes every byte, an incomplete character
// included, and queues the end marker of a complete stream.
func (s *Stream) flush(final bool) bool {
	text := s.take(final)
	if s.streamer != nil {
		if !s.writeText(text, final) {
			return false
		}
	} else {
		for len(text) > 0 {
			n := cutLen(text, s.maxBody)
			if string(text[:n]) == EndMarker {
				n-- // a text message never reads as the end: `\o`, then `k`
			}
			s.enqueue(string(text[:n]), n)
			text = text[n:]
		}
	}
	if final && s.complete && !s.ended {
		s.enqueue(EndMarker, 0)
		s.ended = true
	}
	return s.publishQueue()
}

// take returns the buffered text up to the last whole character. The
// slice is valid until the next take. A final take also drops an
// incomplete character left at the end, which no call can complete any
// more: it is not text, and published, it would read as U+FFFD.
func (s *Stream) take(final bool) []byte {
	s.mu.Lock()
	n := textutil.CompleteRunes(s.buf)
	dropped := 0
	if final {
		dropped = len(s.buf) - n
		s.buf = s.buf[:n]
		s.held -= dropped
	}
	taken := s.buf[:n]
	s.buf = append(s.spare[:0], s.buf[n:]...)
	s.bufEnc = encodedLen(string(s.buf))
	s.spare = taken
	s.mu.Unlock()
	if dropped > 0 {
		s.log.Warn("chunkstream: the text ended inside a character; its first bytes are not published",
			zap.String("room", s.room), zap.String("request_id", s.requestID), zap.Int("bytes", dropped))
	}
	return taken
}

func (s *Stream) enqueue(body string, size int) {
	if s.qhead == len(s.queue) {
		s.queue, s.qhead = s.queue[:0], 0
	}
	s.seq++
	s.queue = append(s.queue, pending{
		msg:  realtime.Message{Room: s.room, Name: s.name, RequestID: s.requestID, Body: body, Seq: s.seq},
		size: size,
	})
}

// publishQueue publishes the queued messages in order. A failure leaves the
// message at the head of the queue for the next flush, or fails the stream
// when it is not retryable or was tried MaxAttempts times.
func (s *Stream) publishQueue() bool {
	for s.qhead < len(s.queue) {
		if s.ctx.Err() != nil {
			s.failCtx()
			return false
		}
		head := &s.queue[s.qhead]
		err := safePublish(s.ctx, s.provider, head.msg)
		if err == nil {
			s.release(head.size)
			*head = pending{}
			s.qhead++
			s.tries = 0
			continue
		}
		s.tries++
		if s.ctx.Err() != nil {
			s.failCtx()
			return false
		}
		// A message that may have been delivered is never sent again,
		// whatever Options.Retryable says: clients that do not read seq
		// would show its text twice.
		if errors.Is(err, realtime.ErrMaybeDelivered) || !s.retryable(err) || s.tries >= s.maxAttempts {
			s.fail(&FailedError{Seq: head.msg.Seq, Attempts: s.tries, Err: err})
			return false
		}
		s.log.Warn("chunkstream: publish failed; trying again at the next flush",
			zap.String("room", s.room), zap.String("request_id", s.requestID),
			zap.Uint64("seq", head.msg.Seq), zap.Int("attempt", s.tries), zap.Error(err))
		return true
	}
	return true
}

// release forgets n published bytes and wakes the callers of publishWait.
func (s *Stream) release(n int) {
	if n == 0 {
		return
	}
	s.mu.Lock()
	s.held -= n
	s.wakeLocked()
	s.mu.Unlock()
}

// errPanic wraps a provider's panic.
var errPanic = errors.New("chunkstream: provider panicked")

func safePublish(ctx context.Context, p realtime.Provider, msg realtime.Message) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %v", errPanic, r)
		}
	}()
	return p.Publish(ctx, msg)
}

// errTextStreamEnded is what a write to a text stream that already ended
// sees; the stream's own error replaces it.
var errTextStreamEnded = errors.New("chunkstream: text stream ended early")

// writeText sends text down the text stream, starting it on the first
// text, and on the final flush ends it and waits for its result.
func (s *Stream) writeText(text []byte, final bool) bool {
	if len(text) > 0 {
		if s.pw == nil {
			s.startTextStream()
		}
		s.escBuf = appendStreamText(s.escBuf[:0], text)
		if _, err := s.pw.Write(s.escBuf); err != nil {
			s.pw = nil
			if serr := <-s.sdone; serr != nil {
				err = serr
			}
			return s.failText(err)
		}
		s.release(len(text))
	}
	if final && s.pw != nil {
		_ = s.pw.Close()
		s.pw = nil
		if err := <-s.sdone; err != nil {
			return s.failText(err)
		}
	}
	return true
}

func (s *Stream) failText(err error) bool {
	if s.ctx.Err() != nil {
		err = context.Cause(s.ctx)
	}
	s.fail(&FailedError{Attempts: 1, Err: err})
	return false
}

func (s *Stream) startTextStream() {
	pr, pw := io.Pipe()
	s.pw, s.sdone = pw, make(chan error, 1)
	go func() {
		err := s.streamer.PublishStream(s.ctx, s.room, s.name, pr)
		pr.CloseWithError(errTextStreamEnded) // unblocks a write it will not read
		s.sdone <- err
	}()
}

// endTextStream ends a text stream left open by a failure and waits for it.
func (s *Stream) endTextStream() {
	if s.pw != nil {
		s.cancel(errTextStreamEnded)
		s.pw.CloseWithError(errTextStreamEnded)
		<-s.sdone
		s.pw = nil
	}
}
