package chunkstream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"go.uber.org/zap"

	"github.com/coursebuilder/realtime-go/internal/field"
	"github.com/coursebuilder/realtime-go/internal/textutil"
	"github.com/coursebuilder/realtime-go/realtime"
)

// EndMarker is the body of the last message of a complete stream: the
// TypeScript provider's STREAM_COMPLETE, which a subscriber compares a body
// with to know the response is over.
const EndMarker = `\ok`

// Defaults of [Options], as documented on its fields.
const (
	defaultInterval    = 250 * time.Millisecond // the TypeScript OpenAI provider's
	defaultName        = "ai.message"
	defaultMaxBuffered = 4 << 20
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
	// TextStream sends the text with the provider's streaming publish when
	// the provider (after Pin) implements realtime.StreamPublisher, as
	// *inngest.Provider does: see the package doc. Otherwise it has no
	// effect.
	TextStream bool
	// Logger receives failure diagnostics, never text. Defaults to
	// zap.NewNop().
	Logger *zap.Logger
}

// Stream publishes the text of one streamed response, in order, through a
// [realtime.Provider]. Create one with [New], feed it with
// [Stream.PublishChunk] (or [Pump]) and end it with [Stream.Close].
//
// A Stream offers each message to the provider once and never retries:
// the provider's retry policy is the only retry loop. A publish that fails
// fails the stream for good, Close included (see [FailedError]).
type Stream struct {
	// Fixed by New.
	provider    realtime.Provider
	streamer    realtime.StreamPublisher // set in text-stream mode
	room, name  string
	requestID   string
	id          string // the stream's id, the prefix of its messages' ids
	maxBody     int    // room for text in one message, encoded
	maxBuffered int
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
	held   int    // accepted and not yet published: buf and the flush in progress
	closed bool
	err    error
	space  chan struct{} // closed when held shrinks or the stream ends

	// Owned by the run goroutine.
	spare  []byte
	seq    uint64 // of the last message created
	pw     *io.PipeWriter
	sdone  chan error
	escBuf []byte
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
		log:         o.Logger,
		kick:        make(chan struct{}, 1),
		closing:     make(chan struct{}),
		done:        make(chan struct{}),
	}
	if s.room == "" {
		s.room = requestID
	}
	if s.name == "" {
		s.name = defaultName
	}
	limit := o.MaxMessageBytes
	if limit <= 0 || limit > realtime.MaxEnvelopeBytes {
		limit = realtime.MaxEnvelopeBytes
	}
	s.id = uuid.Must(uuid.NewV7()).String()
	// The largest envelope without text: the longest id, and the seq and
	// epoch a replay log adds.
	empty, err := realtime.Message{Room: s.room, Name: s.name, RequestID: requestID, Body: "", ID: s.messageID(math.MaxUint64)}.Encode()
	if err != nil {
		return nil, err
	}
	overhead := len(empty) + field.SequenceBytes
	if s.maxBody = limit - overhead; s.maxBody < minBody {
		return nil, fmt.Errorf("chunkstream: MaxMessageBytes %d leaves no room for text (an empty message takes %d bytes)", limit, overhead)
	}
	if s.maxBuffered <= 0 {
		s.maxBuffered = defaultMaxBuffered
	}
	if s.log == nil {
		s.log = zap.NewNop()
	}
	interval := o.Interval
	if interval <= 0 {
		interval = defaultInterval
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
// up, and with an error matching [realtime.ErrInvalidUTF8] for text that
// is not valid UTF-8 and cannot become valid. Empty text is accepted and
// ignored.
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

// checkLocked returns an error matching realtime.ErrInvalidUTF8 unless
// text may follow the buffer in valid UTF-8. The buffer is valid UTF-8 but
// for an incomplete character at its end, which text may complete.
func (s *Stream) checkLocked(text string) error {
	var pending []byte
	if n := len(s.buf); n > 0 && s.buf[n-1] >= utf8.RuneSelf {
		pending = s.buf[textutil.CompleteRunes(s.buf):]
	}
	at := invalidAt(pending, text)
	if at < 0 {
		return nil
	}
	return fmt.Errorf("chunkstream: text refused, invalid sequence at byte %d of %d: %w", at, len(text), realtime.ErrInvalidUTF8)
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
		s.mu.Lock()
		// As much as fits beside what is held: a cut inside a character
		// leaves its first bytes held until the next part completes them,
		// so a part of MaxBuffered bytes would never fit.
		part := text[:min(len(text), max(s.maxBuffered-s.held, 1))]
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
// left is abandoned and the stream fails with ctx's error. Close offers each
// message to the provider once, like every flush: a publish that fails,
// whatever the error, fails the stream for good (the provider's own retry
// policy, such as
// [github.com/coursebuilder/realtime-go/realtime/inngest.Options.Retry],
// already retried what it could), and the text after it and the end marker
// are not published. Close returns nil when everything was published (but
// for a character the text left incomplete, see [Stream.PublishChunk]), the
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

// Err returns the stream's [*FailedError] once it failed, nil until then.
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

// failCtx fails the stream because its context ended, before the message
// seq was published.
func (s *Stream) failCtx(seq uint64) {
	s.fail(&FailedError{Seq: seq, Err: context.Cause(s.ctx)})
}

// nextSeq is the sequence number of the first message not published while
// the stream waits between two flushes: the next one to be created, or 0
// in text-stream mode, whose text is not in messages.
func (s *Stream) nextSeq() uint64 {
	if s.streamer != nil {
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
			s.failCtx(s.nextSeq())
			return
		case <-s.closing:
			s.flush(true)
			return
		case <-s.ticker.C:
		case <-s.kick:
		}
		if !s.flush(false) {
			return
		}
	}
}

// flush publishes what was accepted so far and reports whether the stream
// is still healthy. A final flush takes every byte, an incomplete character
// included, and publishes the end marker of a complete stream.
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
			if !s.publish(string(text[:n]), n) {
				return false
			}
			text = text[n:]
		}
	}
	if final && s.complete {
		return s.publish(EndMarker, 0)
	}
	return true
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

// publish creates the next message, with body and the next seq, and offers
// it to the provider once; size is the text bytes it holds, counted in
// held. A failure fails the stream, whatever the error: the provider's
// retry policy is the only retry loop, so the message is never sent again
// and a seq never names two different texts.
func (s *Stream) publish(body string, size int) bool {
	s.seq++
	msg := realtime.Message{Room: s.room, Name: s.name, RequestID: s.requestID, Body: body, ID: s.messageID(s.seq)}
	if s.ctx.Err() != nil {
		s.failCtx(s.seq)
		return false
	}
	if err := safePublish(s.ctx, s.provider, msg); err != nil {
		if s.ctx.Err() != nil {
			s.failCtx(s.seq)
		} else {
			s.fail(&FailedError{Seq: s.seq, Err: err})
		}
		return false
	}
	s.release(size)
	return true
}

// messageID is the id of the stream's message number seq: the stream's id,
// a dot and seq, so that every message of a stream has an id of its own
// (two chunks with the same text are two messages) and its number in the
// stream can be read from it.
func (s *Stream) messageID(seq uint64) string {
	return s.id + "." + strconv.FormatUint(seq, 10)
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
	s.fail(&FailedError{Err: err})
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
