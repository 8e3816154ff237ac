package inngest_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/coursebuilder/realtime-go/internal/transport"
	"github.com/coursebuilder/realtime-go/realtime"
	"github.com/coursebuilder/realtime-go/realtime/inngest"
)

// noLeaks checks, after every other cleanup of t (servers and providers
// closed), that t left no goroutine behind.
func noLeaks(t *testing.T) {
	opt := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, opt) })
}

// streamReq is one streaming publish the fake received.
type streamReq struct {
	Channel, Topic string
	Header         http.Header
	Status         int
	Chunks         []string // one per read, as the server publishes them
	EOF            bool     // the whole body was read
}

// streamServer plays Inngest's streaming publish (pkg/execution/realtime,
// publishStream): it reads the body StreamChunkBytes at a time, one chunk
// per read, at most maxReads times, then answers 200 even if the body
// goes on.
type streamServer struct {
	*httptest.Server
	maxReads int
	// answer, if set, may refuse request n (1-based) before it reads the
	// body, with the status it returns (0 accepts).
	answer func(n int, r *http.Request) int
	// early, if set, makes the handler stop after that many reads and
	// answer at once (Connection: close, so that the answer is not held
	// back while net/http drains the body).
	early int
	// answered is closed when a request was answered early.
	answered chan struct{}

	mu   sync.Mutex
	reqs []streamReq
}

func newStreamServer(t *testing.T, s *streamServer) *streamServer {
	t.Helper()
	if s.maxReads == 0 {
		s.maxReads = transport.StreamMaxChunks
	}
	s.answered = make(chan struct{})
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

func (s *streamServer) serve(w http.ResponseWriter, r *http.Request) {
	req := streamReq{Channel: r.URL.Query().Get("channel"), Topic: r.URL.Query().Get("topic"), Header: r.Header.Clone(), Status: 200}
	s.mu.Lock()
	n := len(s.reqs) + 1
	s.reqs = append(s.reqs, req)
	s.mu.Unlock()
	record := func() {
		s.mu.Lock()
		s.reqs[n-1] = req
		s.mu.Unlock()
	}
	if r.Header.Get("Content-Type") != "text/stream" {
		req.Status = http.StatusUnsupportedMediaType
		record()
		http.Error(w, "not a stream", req.Status)
		return
	}
	if s.answer != nil {
		if st := s.answer(n, r); st != 0 {
			req.Status = st
			record()
			http.Error(w, "refused", st)
			return
		}
	}
	reads := s.maxReads
	if s.early > 0 {
		reads = s.early
	}
	for range reads {
		buf := make([]byte, transport.StreamChunkBytes)
		k, err := r.Body.Read(buf)
		if k > 0 {
			req.Chunks = append(req.Chunks, string(buf[:k]))
		}
		if errors.Is(err, io.EOF) {
			req.EOF = true
			break
		}
		if err != nil {
			break
		}
	}
	record()
	if s.early > 0 {
		w.Header().Set("Connection", "close")
		w.WriteHeader(http.StatusOK)
		close(s.answered)
	}
}

func (s *streamServer) Requests() []streamReq {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]streamReq(nil), s.reqs...)
}

// published returns what subscribers would have received, the accepted
// streams in order, and checks that each was read to its end within the cap.
func (s *streamServer) published(t *testing.T) string {
	t.Helper()
	var sb strings.Builder
	for i, r := range s.Requests() {
		if r.Status != 200 {
			continue
		}
		require.True(t, r.EOF, "stream %d was not read to its end", i)
		require.LessOrEqual(t, len(r.Chunks), transport.StreamMaxChunks, "stream %d", i)
		for _, c := range r.Chunks {
			sb.WriteString(c)
		}
	}
	return sb.String()
}

func TestPublishStreamSendsWhatTheServerExpects(t *testing.T) {
	noLeaks(t)
	srv := newStreamServer(t, &streamServer{})
	p := newInngest(t, srv.URL, inngest.Options{SigningKey: testKey, Env: "branch-1"})
	require.NoError(t, p.PublishStream(context.Background(), "chat 1/ä", "ai.message", strings.NewReader("Hello, stream")))

	reqs := srv.Requests()
	require.Len(t, reqs, 1)
	hashed, err := transport.HashSigningKey(testKey)
	require.NoError(t, err)
	assert.Equal(t, "Bearer "+hashed, reqs[0].Header.Get("Authorization"))
	assert.Equal(t, "branch-1", reqs[0].Header.Get("X-Inngest-Env"))
	assert.Equal(t, "chat 1/ä", reqs[0].Channel)
	assert.Equal(t, "ai.message", reqs[0].Topic)
	assert.Equal(t, "Hello, stream", srv.published(t))
}

func TestPublishStreamEmptyReaderPublishesNothing(t *testing.T) {
	noLeaks(t)
	srv := newStreamServer(t, &streamServer{})
	p := newInngest(t, srv.URL, inngest.Options{SigningKey: testKey})
	require.NoError(t, p.PublishStream(context.Background(), "chat-1", "ai.message", strings.NewReader("")))
	assert.Empty(t, srv.Requests())
}

func TestPublishStreamValidates(t *testing.T) {
	noLeaks(t)
	p := newInngest(t, "http://127.0.0.1:1", inngest.Options{SigningKey: testKey})
	err := p.PublishStream(context.Background(), "", "ai.message", strings.NewReader("x"))
	assert.ErrorIs(t, err, realtime.ErrInvalidMessage)
	err = p.PublishStream(context.Background(), "chat-1", "ai\nmessage", strings.NewReader("x"))
	assert.ErrorIs(t, err, realtime.ErrControlCharacter)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	assert.ErrorIs(t, p.PublishStream(ctx, "chat-1", "ai.message", strings.NewReader("x")), context.Canceled)
}

// TestPublishStreamStartsANewStreamBeforeTheCap: a text that would take more
// reads than the server makes arrives whole, in several streams.
func TestPublishStreamStartsANewStreamBeforeTheCap(t *testing.T) {
	noLeaks(t)
	for name, c := range map[string]struct {
		text    string
		wrap    func(io.Reader) io.Reader
		streams int
	}{
		// 1.2 MiB read 1 KiB at a time: 1,200 writes, 500 per stream.
		"large": {strings.Repeat("Café 😀 中文 — ", 1<<16)[:1200<<10], func(r io.Reader) io.Reader { return r }, 3},
		// A reader that yields a byte at a time: 1,100 writes.
		"one byte reads": {strings.Repeat("x", 1100), iotest.OneByteReader, 3},
	} {
		t.Run(name, func(t *testing.T) {
			srv := newStreamServer(t, &streamServer{})
			p := newInngest(t, srv.URL, inngest.Options{SigningKey: testKey})
			require.NoError(t, p.PublishStream(context.Background(), "chat-1", "ai.message", c.wrap(strings.NewReader(c.text))))
			assert.Len(t, srv.Requests(), c.streams)
			assert.Equal(t, c.text, srv.published(t))
		})
	}
}

// TestPublishStreamAtTheServersCap shows why the budget matters: a server
// that reads fewer times than a stream needs drops the rest and answers 200.
// With a cap just above the budget, nothing is lost.
func TestPublishStreamAtTheServersCap(t *testing.T) {
	noLeaks(t)
	srv := newStreamServer(t, &streamServer{maxReads: transport.StreamChunkBudget + 1})
	p := newInngest(t, srv.URL, inngest.Options{SigningKey: testKey})
	text := strings.Repeat("y", 3*transport.StreamChunkBudget+7)
	require.NoError(t, p.PublishStream(context.Background(), "chat-1", "ai.message", iotest.OneByteReader(strings.NewReader(text))))
	assert.Equal(t, text, srv.published(t))
}

func TestPublishStreamFallsBackToTheOtherKey(t *testing.T) {
	noLeaks(t)
	hashedPrimary, err := transport.HashSigningKey(testKey)
	require.NoError(t, err)
	srv := newStreamServer(t, &streamServer{answer: func(_ int, r *http.Request) int {
		if r.Header.Get("Authorization") == "Bearer "+hashedPrimary {
			return http.StatusUnauthorized
		}
		return 0
	}})
	p := newInngest(t, srv.URL, inngest.Options{SigningKey: testKey, SigningKeyFallback: testFallback})
	// Long enough for two streams, so the second starts with the key that
	// worked.
	text := strings.Repeat("rotated key ", 50_000)
	require.NoError(t, p.PublishStream(context.Background(), "chat-1", "ai.message", strings.NewReader(text)))
	assert.Equal(t, text, srv.published(t), "the refused stream published nothing; the replay published everything once")
	var statuses []int
	for _, r := range srv.Requests() {
		statuses = append(statuses, r.Status)
	}
	assert.Equal(t, []int{401, 200, 200}, statuses)

	// The next stream starts with the accepted key.
	require.NoError(t, p.PublishStream(context.Background(), "chat-1", "ai.message", strings.NewReader("again")))
	assert.Len(t, srv.Requests(), 4)
}

func TestPublishStreamIsNotRetried(t *testing.T) {
	noLeaks(t)
	for status, is := range map[int]error{503: realtime.ErrUnavailable, 400: realtime.ErrRejected, 401: realtime.ErrUnauthorized} {
		srv := newStreamServer(t, &streamServer{answer: func(int, *http.Request) int { return status }})
		p := newInngest(t, srv.URL, inngest.Options{SigningKey: testKey})
		err := p.PublishStream(context.Background(), "chat-1", "ai.message", strings.NewReader("text"))
		require.ErrorIs(t, err, is, "status %d", status)
		var pe *realtime.PublishError
		require.ErrorAs(t, err, &pe)
		assert.Equal(t, status, pe.StatusCode)
		assert.Len(t, srv.Requests(), 1, "status %d: a stream is not sent twice", status)
	}
}

// TestPublishStreamReportsAnEarlyAnswer: a server that stops reading and
// answers before the stream ended never yields a silent success. (Only an
// answer that reaches the client before the stream ends can be seen; the
// chunk budget is what keeps a real server from stopping.)
func TestPublishStreamReportsAnEarlyAnswer(t *testing.T) {
	noLeaks(t)
	srv := newStreamServer(t, &streamServer{early: 3})
	answered := &signalingTransport{rt: &http.Transport{}, got: make(chan struct{})}
	t.Cleanup(answered.rt.(*http.Transport).CloseIdleConnections)
	p := newInngest(t, srv.URL, inngest.Options{SigningKey: testKey, HTTPClient: &http.Client{Transport: answered}})
	// 10 KiB, then, once the answer reached the client, text without end.
	r := io.MultiReader(strings.NewReader(strings.Repeat("a", 10<<10)), &waitReader{wait: answered.got, r: endless{}})
	err := p.PublishStream(context.Background(), "chat-1", "ai.message", r)
	require.Error(t, err)
	assert.True(t, errors.Is(err, inngest.ErrStreamTruncated) || errors.Is(err, realtime.ErrMaybeDelivered), "%v", err)
}

// signalingTransport closes got when its first round trip returns.
type signalingTransport struct {
	rt   http.RoundTripper
	once sync.Once
	got  chan struct{}
}

func (s *signalingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := s.rt.RoundTrip(r)
	s.once.Do(func() { close(s.got) })
	return resp, err
}

// endless reads as an endless run of "b".
type endless struct{}

func (endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'b'
	}
	return len(p), nil
}

// waitReader reads r once wait is closed.
type waitReader struct {
	wait <-chan struct{}
	r    io.Reader
}

func (w *waitReader) Read(p []byte) (int, error) {
	<-w.wait
	return w.r.Read(p)
}

func TestPublishStreamHonoursTheContext(t *testing.T) {
	noLeaks(t)
	srv := newStreamServer(t, &streamServer{})
	p := newInngest(t, srv.URL, inngest.Options{SigningKey: testKey})
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	errc := make(chan error, 1)
	go func() { errc <- p.PublishStream(ctx, "chat-1", "ai.message", pr) }()
	_, err := pw.Write([]byte("first"))
	require.NoError(t, err)
	cancel()
	// PublishStream notices while it sends "first", or at a later write
	// that fails to be sent: it cannot interrupt a Read of r that blocks,
	// so r goes on.
	wrote := make(chan struct{})
	go func() {
		defer close(wrote)
		for {
			if _, err := pw.Write([]byte("more")); err != nil {
				return
			}
		}
	}()
	err = <-errc
	assert.ErrorIs(t, err, context.Canceled)
	assert.ErrorIs(t, err, realtime.ErrMaybeDelivered, "first may have been published")
	_ = pr.Close() // PublishStream does not close r: a write it did not read ends here
	<-wrote
}

func TestPublishStreamReaderFailure(t *testing.T) {
	noLeaks(t)
	srv := newStreamServer(t, &streamServer{})
	p := newInngest(t, srv.URL, inngest.Options{SigningKey: testKey})
	boom := errors.New("boom")
	r := io.MultiReader(strings.NewReader("read before the failure"), iotest.ErrReader(boom))
	err := p.PublishStream(context.Background(), "chat-1", "ai.message", r)
	assert.ErrorIs(t, err, boom)
	assert.Equal(t, "read before the failure", srv.published(t))
}

func TestPublishStreamKeepsCharactersWhole(t *testing.T) {
	noLeaks(t)
	srv := newStreamServer(t, &streamServer{})
	p := newInngest(t, srv.URL, inngest.Options{SigningKey: testKey})
	// A multi-byte character straddles every 1 KiB boundary of the text.
	text := strings.Repeat("😀", 3000)
	require.NoError(t, p.PublishStream(context.Background(), "chat-1", "ai.message", strings.NewReader(text)))
	assert.Equal(t, text, srv.published(t))
}

var _ realtime.StreamPublisher = (*inngest.Provider)(nil)

func ExampleProvider_PublishStream() {
	// A stand-in for Inngest's publish route that prints what it receives.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		fmt.Println(r.Header.Get("Content-Type"), r.URL.Query().Get("channel"), r.URL.Query().Get("topic"))
		fmt.Println(string(body))
	}))
	defer srv.Close()
	p, err := inngest.New(&inngest.Options{BaseURL: srv.URL, SigningKey: "signkey-test-0123456789abcdef", ChannelSecret: "the app's own secret, 32 bytes or more"})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer p.Close()

	// Any io.Reader: text is sent as it is read.
	err = p.PublishStream(context.Background(), "chat_42", "ai.message", strings.NewReader("Hello, stream"))
	fmt.Println(err)
	// Output:
	// text/stream rtk1_YQb5UgZZGEjpe6a8hWv1if8-SjCgjYPAKb-I7aJsWlY ai.message
	// Hello, stream
	// <nil>
}
