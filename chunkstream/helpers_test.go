package chunkstream_test

import (
	"context"
	"encoding/json"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/uuid"

	"github.com/coursebuilder/realtime-go/chunkstream"
	"github.com/coursebuilder/realtime-go/internal/field"
	"github.com/coursebuilder/realtime-go/realtime"
	"github.com/coursebuilder/realtime-go/realtime/realtimetest"
)

// wait bounds every wait for something that must happen.
const wait = 10 * time.Second

// defaultInterval is the documented default of Options.Interval, the
// TypeScript provider's 250ms.
const defaultInterval = 250 * time.Millisecond

// decodeStreamText decodes the concatenated data of the chunk messages of
// a text-stream mode Stream the way the package documentation says (and
// JSON.parse does in a browser).
func decodeStreamText(data string) (string, error) {
	var s string
	err := json.Unmarshal([]byte(`"`+data+`"`), &s)
	return s, err
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	t.Cleanup(cancel)
	return ctx
}

// newStream returns a stream, closed (if the test did not) when t ends,
// and a tick function that ends the stream's current window. Call it
// inside a synctest bubble: the stream's ticker then runs on the bubble's
// fake clock, and time passes only when every goroutine of the bubble is
// blocked, so no flush happens because the test was slow.
func newStream(t testing.TB, p realtime.Provider, opts *chunkstream.Options) (*chunkstream.Stream, func()) {
	t.Helper()
	var o chunkstream.Options
	if opts != nil {
		o = *opts
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
	interval := o.Interval
	if interval <= 0 {
		interval = defaultInterval
	}
	return s, func() { tick(interval) }
}

// tick sleeps one interval of the bubble's fake clock, so that every
// stream ticker of that interval fires, and waits until the stream is done
// with the tick (its flush published, or blocked in the provider).
func tick(interval time.Duration) {
	time.Sleep(interval)
	synctest.Wait()
}

// overhead is the most a chunk message of request "chat-1" takes besides
// its text: its envelope with an empty body and the longest chunk id, and
// the seq and epoch a replay log adds to it.
func overhead(tb testing.TB) int {
	tb.Helper()
	id := uuid.NewString() + "." + strconv.FormatUint(math.MaxUint64, 10)
	empty, err := realtime.Message{Room: "chat-1", Name: "ai.message", RequestID: "chat-1", Body: "", ID: id}.Encode()
	if err != nil {
		tb.Fatal(err)
	}
	return len(empty) + field.SequenceBytes
}

// body returns the text of a recorded message.
func body(t testing.TB, m realtime.Message) string {
	t.Helper()
	s, ok := m.Body.(string)
	if !ok {
		t.Fatalf("message %s: body is %T, want string", m.ID, m.Body)
	}
	return s
}

// chunkID splits the id of a chunk message, "<stream uuid>.<n>", into the
// stream's id and n, failing t when id is not of that form.
func chunkID(t testing.TB, id string) (stream string, n uint64) {
	t.Helper()
	stream, num, ok := strings.Cut(id, ".")
	if !ok {
		t.Fatalf("message id %q is not <stream uuid>.<n>", id)
	}
	if _, err := uuid.Parse(stream); err != nil || len(stream) != 36 {
		t.Fatalf("message id %q: the stream id is not a UUID (%v)", id, err)
	}
	n, err := strconv.ParseUint(num, 10, 64)
	if err != nil || strconv.FormatUint(n, 10) != num {
		t.Fatalf("message id %q: %q is not a decimal number", id, num)
	}
	return stream, n
}

// reassemble checks what a client relies on — ids <stream>.1 to <stream>.n
// of one stream in publish order, each on its envelope, the end marker
// last (when end is set), every envelope within limit once a replay log
// added its seq and epoch — and returns the concatenated text.
func reassemble(t testing.TB, recs []realtimetest.Record, end bool, limit int) string {
	t.Helper()
	var sb strings.Builder
	var stream string
	for i, r := range recs {
		m := r.Message
		s, n := chunkID(t, m.ID)
		if i == 0 {
			stream = s
		}
		if s != stream || n != uint64(i+1) {
			t.Fatalf("message %d has id %s, want %s.%d", i, m.ID, stream, i+1)
		}
		if m.Room != "chat-1" || m.Name != "ai.message" || m.RequestID != "chat-1" {
			t.Fatalf("message %s: room %q, name %q, requestId %q", m.ID, m.Room, m.Name, m.RequestID)
		}
		if m.Seq != 0 || m.Epoch != 0 {
			t.Fatalf("message %s: seq %d epoch %d set by the stream; only a replay log numbers messages", m.ID, m.Seq, m.Epoch)
		}
		if limit > 0 && len(r.Envelope)+field.SequenceBytes > limit {
			t.Fatalf("message %s: envelope of %d bytes, %d with a log's seq and epoch, limit %d",
				m.ID, len(r.Envelope), len(r.Envelope)+field.SequenceBytes, limit)
		}
		env, err := realtime.DecodeEnvelope(r.Envelope)
		if err != nil || env.ID != m.ID || env.Seq != 0 {
			t.Fatalf("message %s: envelope %.200s has id %q seq %d (%v)", m.ID, r.Envelope, env.ID, env.Seq, err)
		}
		if i == len(recs)-1 && end {
			if b := body(t, m); b != chunkstream.EndMarker {
				t.Fatalf("last message (%s) is %q, want the end marker", m.ID, b)
			}
			break
		}
		b := body(t, m)
		if b == chunkstream.EndMarker {
			t.Fatalf("message %s: a text message reads as the end marker", m.ID)
		}
		sb.WriteString(b)
	}
	if end && len(recs) == 0 {
		t.Fatal("no message, not even the end marker")
	}
	return sb.String()
}

// pipeServer starts an httptest server for handler that listens on an
// in-memory network (net.Pipe), and returns it with a client that dials
// it. Inside a synctest bubble, as the bubble's documentation asks: a
// goroutine waiting on a pipe is durably blocked, so the fake clock runs
// (a provider's retry backoff passes at once) and synctest.Wait works,
// which real sockets would prevent. Both are closed when t ends.
func pipeServer(t testing.TB, handler http.Handler) (*httptest.Server, *http.Client) {
	t.Helper()
	l := &pipeListener{conns: make(chan net.Conn), done: make(chan struct{})}
	srv := httptest.NewUnstartedServer(handler)
	_ = srv.Listener.Close() // the loopback listener it opened
	srv.Listener = l
	srv.Start()
	tr := &http.Transport{DialContext: l.dial}
	t.Cleanup(func() {
		tr.CloseIdleConnections()
		srv.Close()
	})
	return srv, &http.Client{Transport: tr}
}

// pipeListener is a net.Listener whose connections are net.Pipe ends.
type pipeListener struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *pipeListener) Addr() net.Addr { return pipeAddr{} }

// dial connects to the listener, whatever the address.
func (l *pipeListener) dial(ctx context.Context, _, _ string) (net.Conn, error) {
	client, server := net.Pipe()
	select {
	case l.conns <- server:
		return client, nil
	case <-l.done:
		return nil, net.ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// pipeAddr is the listener's address: the host of the server's URL.
type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "inngest.pipe.test" }
