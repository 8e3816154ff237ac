package inngest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"

	"go.uber.org/zap"

	"github.com/coursebuilder/realtime-go/internal/httpx"
	"github.com/coursebuilder/realtime-go/internal/textutil"
	"github.com/coursebuilder/realtime-go/internal/transport"
	"github.com/coursebuilder/realtime-go/realtime"
)

// ErrStreamTruncated matches the error of a streaming publish that the
// server answered before the stream ended: it stopped reading, so text
// written after that point was not published.
var ErrStreamTruncated = errors.New("realtime: stream cut short by the server")

var _ realtime.StreamPublisher = (*Provider)(nil)

// errSegmentEnded unblocks a writer whose request already ended; callers
// never see it, they get the request's result instead.
var errSegmentEnded = errors.New("realtime: stream request ended")

// PublishStream streams what it reads from r to Inngest Realtime, as the
// server's streaming publish (Content-Type: text/stream) delivers it:
// subscribers of the channel and topic that room and name map to receive a
// "datastream-start" message carrying a stream id, then "chunk" messages
// with that stream id and the text, then "datastream-end".
//
// Each read of r, at most 1024 bytes (the most the server reads at once)
// and cut back to the last whole UTF-8 character when possible, is sent at
// once as its own piece of the request body, so subscribers see text while
// r still produces it. The server reads at most 1000 times per stream and
// then silently drops the rest, so after 500 writes (half of that: one
// write may cost the server more than one read) PublishStream ends the
// stream and starts another one for what follows: a long text arrives as
// several streams, one after the other, each with its own stream id.
// Subscribers concatenate the chunks of the streams in the order the
// streams started. An empty r publishes nothing.
//
// The server cuts the bytes at its own read boundaries and encodes each
// chunk as a JSON string, so a multi-byte character split between two
// reads reaches subscribers as U+FFFD. Writing whole characters makes that
// unlikely, not impossible; send ASCII (package chunkstream escapes its
// text) when every character matters.
//
// A stream cannot be sent twice without showing its text twice, so unlike
// [Provider.Publish] nothing is retried and the attempt timeout does not
// apply: ctx bounds the whole stream (and so does the Timeout of an
// Options.HTTPClient, if it has one: leave it zero for streams).
// ctx does not interrupt a Read of r that blocks: the owner of r unblocks
// it, for instance by closing the pipe it comes from. The one exception is a signing key the
// server refuses (401 or 403), which it does before publishing anything:
// PublishStream then sends the same stream again with the fallback key. The
// server answers only once it has read the whole stream, so that can delay
// the stream's text until its end. A failure once text was published
// matches [realtime.ErrMaybeDelivered]; an answer before the stream ended,
// [ErrStreamTruncated]. PublishStream does not close r.
func (p *Provider) PublishStream(ctx context.Context, room, name string, r io.Reader) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := (realtime.Message{Room: room, Name: name}).Validate(); err != nil {
		return err
	}
	target, err := p.publishURL(room, name)
	if err != nil {
		return err
	}
	st := &stream{p: p, ctx: ctx, target: target}
	defer st.abort()

	buf := make([]byte, transport.StreamChunkBytes)
	carry := 0 // bytes of an incomplete character kept from the last read
	for {
		n, rerr := r.Read(buf[carry:])
		n += carry
		cut := n
		if rerr == nil {
			cut = textutil.CompleteRunes(buf[:n])
		}
		if cut > 0 {
			if err := st.write(buf[:cut]); err != nil {
				return err
			}
		}
		carry = copy(buf, buf[cut:n])
		switch {
		case errors.Is(rerr, io.EOF):
			return st.finish()
		case rerr != nil:
			// Publish what was read before the failure, then report it.
			return errors.Join(fmt.Errorf("realtime: read stream: %w", rerr), st.finish())
		}
	}
}

// stream is one call to PublishStream: a sequence of segments, each one
// streaming request.
type stream struct {
	p      *Provider
	ctx    context.Context
	target string
	seg    *segment
}

// write sends b (at most transport.StreamChunkBytes) in the current segment, starting
// a new one first when the current one used its budget.
func (st *stream) write(b []byte) error {
	if st.seg != nil && st.seg.writes >= transport.StreamChunkBudget {
		if err := st.finish(); err != nil {
			return err
		}
	}
	if st.seg == nil {
		st.seg = st.p.startSegment(st.ctx, st.target, st.p.firstKey())
	}
	err := st.seg.write(b)
	if err == nil {
		return nil
	}
	return st.fallback(err, false)
}

// finish ends the current segment, if any, and waits for its answer.
func (st *stream) finish() error {
	if st.seg == nil {
		return nil
	}
	err := st.seg.finish()
	if err == nil {
		st.seg = nil
		return nil
	}
	return st.fallback(err, true)
}

// fallback handles the failure of the current segment: when the server
// refused the key, it replays the segment with the other key (which
// finishes it too when done is set); otherwise it returns err.
func (st *stream) fallback(err error, done bool) error {
	seg := st.seg
	if !errors.Is(err, realtime.ErrUnauthorized) || seg.key < 0 || len(st.p.keys.hashed) < 2 || seg.replayed {
		return err
	}
	other := 1 - seg.key
	st.p.log.Debug("realtime: inngest refused the signing key of a stream; sending it again with the other key")
	next := st.p.startSegment(st.ctx, st.target, other)
	next.replayed = true
	st.seg = next
	for _, n := range seg.lens {
		if werr := next.write(seg.sent[:n]); werr != nil {
			return werr
		}
		seg.sent = seg.sent[n:]
	}
	if done {
		if ferr := next.finish(); ferr != nil {
			return ferr
		}
		st.seg = nil
	}
	if st.p.keys.preferred.CompareAndSwap(int32(seg.key), int32(other)) {
		st.p.log.Warn("realtime: inngest refused one signing key and accepted the other; using the accepted one first",
			zap.Bool("fallback_preferred", other == 1))
	}
	return nil
}

// abort ends a segment left open by an error, and waits for its request.
func (st *stream) abort() {
	if st.seg != nil {
		st.seg.cancel()
		st.seg.pw.CloseWithError(errSegmentEnded)
		<-st.seg.done
		st.seg = nil
	}
}

// firstKey returns the index of the key to try first, -1 without keys.
func (p *Provider) firstKey() int {
	if len(p.keys.hashed) == 0 {
		return -1
	}
	return int(p.keys.preferred.Load())
}

// segment is one streaming request: one datastream for subscribers.
type segment struct {
	p      *Provider
	key    int // index of the signing key, -1 for none
	pw     *io.PipeWriter
	cancel context.CancelFunc
	done   chan struct{}

	// Set by the request goroutine before done is closed.
	ans   httpx.Answer
	err   error
	early bool

	closing  atomic.Bool // set before the body is closed: answers after it are not early
	writes   int
	sent     []byte // what was written, kept for a replay with the other key
	lens     []int  // the size of each write in sent
	replayed bool
}

func (p *Provider) startSegment(ctx context.Context, target string, key int) *segment {
	ctx, cancel := context.WithCancel(ctx)
	pr, pw := io.Pipe()
	s := &segment{p: p, key: key, pw: pw, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		s.ans, s.early, s.err = p.streamRequest(ctx, target, key, pr, &s.closing)
		// Unblock a write the server will never read.
		pr.CloseWithError(errSegmentEnded)
	}()
	return s
}

// write sends b as one piece of the body. It returns the segment's result
// if the request ended before the body did.
func (s *segment) write(b []byte) error {
	if s.key >= 0 && len(s.p.keys.hashed) > 1 && !s.replayed {
		s.sent = append(s.sent, b...)
		s.lens = append(s.lens, len(b))
	}
	s.writes++
	if _, err := s.pw.Write(b); err != nil {
		<-s.done
		s.cancel()
		if err := s.result(); err != nil {
			return err
		}
		return &realtime.PublishError{Transport: "inngest", StatusCode: s.ans.Status, Err: ErrStreamTruncated}
	}
	return nil
}

// finish closes the body and waits for the answer.
func (s *segment) finish() error {
	s.closing.Store(true)
	_ = s.pw.Close()
	<-s.done
	s.cancel()
	return s.result()
}

// result turns the request's outcome into an error, nil for an answer
// that accepted the whole stream.
func (s *segment) result() error {
	switch {
	case s.ans.Status == 0:
		if s.writes > 0 {
			return &realtime.PublishError{Transport: "inngest", Err: errors.Join(realtime.ErrUnavailable, realtime.ErrMaybeDelivered, s.err)}
		}
		return transport.NetworkError("inngest", s.err)
	case s.ans.Status < 200 || s.ans.Status >= 300:
		return transport.StatusError("inngest", s.ans.Status, s.p.errorDetail(s.ans), s.ans.RetryAfter)
	case s.early:
		return &realtime.PublishError{Transport: "inngest", StatusCode: s.ans.Status, Err: ErrStreamTruncated}
	}
	return nil
}

// streamRequest posts body as a text/stream publish and reports the answer,
// and whether it came before closing was set.
func (p *Provider) streamRequest(ctx context.Context, target string, key int, body io.Reader, closing *atomic.Bool) (httpx.Answer, bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, body)
	if err != nil {
		return httpx.Answer{}, false, err
	}
	req.Header.Set("Content-Type", "text/stream")
	req.Header.Set("User-Agent", transport.UserAgent)
	if key >= 0 {
		req.Header.Set("Authorization", "Bearer "+p.keys.hashed[key])
	}
	if p.env != "" {
		req.Header.Set("X-Inngest-Env", p.env)
	}
	resp, err := p.http.Client.Do(req)
	if err != nil {
		p.log.Debug("realtime: inngest stream failed", zap.Error(err))
		return httpx.Answer{}, false, err
	}
	early := !closing.Load()
	// The client does not follow redirects: a 3xx is this answer.
	ans, _ := httpx.ReadAnswer(resp, errorDetailLimit)
	if ans.Status < 200 || ans.Status >= 300 {
		p.log.Debug("realtime: inngest stream failed", zap.Int("status", ans.Status))
	}
	return ans, early, nil
}
