package realtimetest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/coursebuilder/realtime-go/internal/field"
	"github.com/coursebuilder/realtime-go/realtime"
)

// Target is a provider under test together with a way to watch what its
// transport delivers to subscribers.
type Target struct {
	// Provider publishes to the transport under test.
	Provider realtime.Provider
	// Subscribe starts watching room for the given event names and returns
	// once the subscription is live, so that a message published after it
	// returns is seen.
	Subscribe func(ctx context.Context, room string, names []string) (Subscription, error)
	// Stalled, if set, returns a provider whose server accepts requests and
	// never answers; the suite checks that a context deadline ends a publish.
	Stalled func(t *testing.T) realtime.Provider
	// Timeout bounds each wait for a delivery. Defaults to 10s.
	Timeout time.Duration
	// Respell, if set, says how the transport's server re-spells an
	// envelope it relays, for servers that decode and re-encode the JSON
	// (course-builder's party does JSON.stringify(await req.json()); use
	// [JSSpelling]). The suite then expects Respell(envelope) byte for byte.
	// Nil means the server relays the envelope's bytes unchanged.
	Respell func(envelope []byte) []byte

	// Faulty, if set, returns a provider in front of a server that plays
	// f (see [Fault]): the suite's failure paths, each checked for the
	// documented error class (and none of the others), the
	// [*realtime.PublishError] fields and the exact number of requests
	// the server received. The provider must use f.Retry and
	// f.AttemptTimeout. An HTTP transport points at a [NewFaultServer];
	// an in-memory one emulates the fault with [EmulateFault].
	Faulty func(t *testing.T, f Fault) FaultyTarget
	// Transport is the PublishError.Transport the faulty provider's errors
	// carry, such as "inngest". Empty means any non-empty name.
	Transport string
	// UnauthorizedRequests is how many requests a 401 or 403 costs: 1, or
	// 2 for a provider that tries a fallback key once. Defaults to 1.
	UnauthorizedRequests int
	// Secrets are credentials the provider holds (signing keys, raw and as
	// sent); no error of the failure paths may contain one.
	Secrets []string
	// Numbered says that the provider numbers the messages of a room (a
	// broadcast.Broadcast with its replay log): each delivery is then the
	// envelope with "seq" and "epoch" added last, seq rising by one per
	// message published to the room, and the suite checks that too.
	Numbered bool
}

// Subscription yields the payloads a subscriber receives, in order: for
// every published message, the bytes of its envelope.
type Subscription interface {
	// Next returns the next payload, or ctx's error.
	Next(ctx context.Context) ([]byte, error)
	// Close ends the subscription.
	Close() error
}

// Run is the conformance suite for a [realtime.Provider]. newTarget is
// called once per subtest. Every check asserts what a caller relies on:
//
//   - the bytes delivered are exactly [realtime.Message.Encode]'s envelope;
//   - an invalid message fails with a [*realtime.ValidationError] matching
//     [realtime.ErrInvalidMessage] and its reason, and nothing is delivered;
//   - a body that cannot be encoded fails with [realtime.ErrEncode], without
//     a panic, and an envelope over [realtime.MaxEnvelopeBytes] fails with a
//     [*realtime.TooLargeError] while one at the limit arrives intact;
//   - a cancelled context fails with [context.Canceled] and sends nothing;
//     a deadline ends a publish to a server that never answers;
//   - concurrent publishes are all delivered exactly once (run with -race);
//   - when Target.Faulty is set, every failure path ends in its documented
//     class (see "Faults" below);
//   - a Numbered target (Target.Numbered) numbers every message in its
//     room without a gap, refused ones included, and applies the size
//     limit to the envelope as sent, seq and epoch included;
//   - a provider that is a [realtime.EnvelopePublisher] sends the bytes of
//     an envelope encoded already as they are, without encoding the body
//     again, refuses a nil envelope with [realtime.ErrInvalidMessage] and
//     honours a cancelled context.
//
// # Faults
//
// Each fault runs under the retry policy {Attempts: 3, BaseDelay: 1ms,
// MaxDelay: 5ms} and an attempt timeout of 250ms for a server that never
// answers, 10s otherwise. The suite expects, as errors.Is matches (and no
// other of ErrUnauthorized, ErrRejected, ErrUnavailable,
// ErrMaybeDelivered), PublishError.StatusCode and Attempts, and requests
// received:
//
//	400, 404, 409              ErrRejected                         1 attempt,  1 request
//	401, 403                   ErrUnauthorized                     1 attempt,  Target.UnauthorizedRequests
//	408, 500, 502, 503         ErrUnavailable                      3 attempts, 3 requests
//	429, Retry-After: 1        ErrUnavailable, RetryAfter = 1s     3 attempts, 3 requests
//	429, Retry-After: 3600     ErrUnavailable, DeadlineExceeded    1 attempt,  1 request (the wait would outlive the context)
//	600, 999                   ErrRejected                         1 attempt,  1 request
//	302, 307, 308 elsewhere    ErrRejected, the other origin gets nothing  1 attempt, 1 request
//	no answer after reading    ErrUnavailable, ErrMaybeDelivered   1 attempt,  1 request
//	reset after reading        ErrUnavailable, ErrMaybeDelivered   1 attempt,  1 request
//	connection refused         ErrUnavailable                      3 attempts, 0 requests
//
// [realtime.IsPermanent] holds exactly for ErrRejected, and no error
// message contains one of Target.Secrets.
func Run(t *testing.T, newTarget func(t *testing.T) Target) {
	t.Helper()
	t.Run("Envelope", func(t *testing.T) { testEnvelope(t, newTarget(t)) })
	t.Run("Validation", func(t *testing.T) { testValidation(t, newTarget(t)) })
	t.Run("Unencodable", func(t *testing.T) { testUnencodable(t, newTarget(t)) })
	t.Run("SizeGuard", func(t *testing.T) { testSizeGuard(t, newTarget(t)) })
	t.Run("Cancellation", func(t *testing.T) { testCancellation(t, newTarget(t)) })
	t.Run("Deadline", func(t *testing.T) { testDeadline(t, newTarget(t)) })
	t.Run("Concurrent", func(t *testing.T) { testConcurrent(t, newTarget(t)) })
	t.Run("Faults", func(t *testing.T) { testFaults(t, newTarget(t)) })
	t.Run("EncodedOnce", func(t *testing.T) { testEncodedOnce(t, newTarget(t)) })
}

// names is every event name the suite publishes.
var names = []string{"video.asset.ready", "conformance.marker", "ai.message"}

type watch struct {
	t       *testing.T
	target  Target
	room    string
	sub     Subscription
	timeout time.Duration
	seq     uint64 // the last seq delivered, for a Numbered target
	epoch   uint64 // the room's epoch, once a numbered delivery showed it
}

func newWatch(t *testing.T, target Target) *watch {
	t.Helper()
	if target.Provider == nil || target.Subscribe == nil {
		t.Fatal("realtimetest: Target needs a Provider and Subscribe")
	}
	w := &watch{t: t, target: target, room: "conformance-" + uuid.NewString(), timeout: target.Timeout}
	if w.timeout <= 0 {
		w.timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), w.timeout)
	defer cancel()
	sub, err := target.Subscribe(ctx, w.room, names)
	if err != nil {
		t.Fatalf("subscribe to %s: %v", w.room, err)
	}
	t.Cleanup(func() { _ = sub.Close() })
	w.sub = sub
	return w
}

func (w *watch) msg(name string, body any) realtime.Message {
	return realtime.Message{Room: w.room, Name: name, RequestID: "req-" + name, Body: body, ID: uuid.NewString()}
}

func (w *watch) publish(msg realtime.Message) error {
	ctx, cancel := context.WithTimeout(context.Background(), w.timeout)
	defer cancel()
	return w.target.Provider.Publish(ctx, msg)
}

// expect publishes msg and asserts that the next delivery is its envelope.
func (w *watch) expect(msg realtime.Message) {
	w.t.Helper()
	want, err := msg.Encode()
	if err != nil {
		w.t.Fatalf("encode %s: %v", msg.Name, err)
	}
	if err := w.publish(msg); err != nil {
		w.t.Fatalf("publish %s: %v", msg.Name, err)
	}
	w.next(want)
}

func (w *watch) next(want []byte) {
	w.t.Helper()
	if w.target.Respell != nil {
		want = w.target.Respell(want)
	}
	ctx, cancel := context.WithTimeout(context.Background(), w.timeout)
	defer cancel()
	got, err := w.sub.Next(ctx)
	if err != nil {
		w.t.Fatalf("waiting for delivery of %s: %v", short(want), err)
	}
	got = w.unnumber(got)
	if !bytes.Equal(got, want) {
		w.t.Fatalf("delivered payload differs from the envelope\n got: %s\nwant: %s", short(got), short(want))
	}
}

// numbered matches the seq and epoch a replay log adds to an envelope.
var numbered = regexp.MustCompile(`,"seq":([0-9]+),"epoch":([0-9]+)}$`)

// unnumber returns a delivery of a Numbered target without its seq and
// epoch, after checking that its seq follows the last one.
func (w *watch) unnumber(got []byte) []byte {
	w.t.Helper()
	b, seq := w.split(got)
	if w.target.Numbered {
		if w.seq++; seq != w.seq {
			w.t.Fatalf("delivery has seq %d, want %d (one more than the last)", seq, w.seq)
		}
	}
	return b
}

// split returns a delivery without the seq and epoch of a Numbered target,
// and that seq.
func (w *watch) split(got []byte) ([]byte, uint64) {
	w.t.Helper()
	if !w.target.Numbered {
		return got, 0
	}
	m := numbered.FindSubmatchIndex(got)
	if m == nil {
		w.t.Fatalf("a numbered delivery without seq and epoch: %s", short(got))
	}
	seq, err := strconv.ParseUint(string(got[m[2]:m[3]]), 10, 64)
	if err != nil {
		w.t.Fatal(err)
	}
	if w.epoch, err = strconv.ParseUint(string(got[m[4]:m[5]]), 10, 64); err != nil {
		w.t.Fatal(err)
	}
	return append(got[:m[0]:m[0]], '}'), seq
}

// marker proves that nothing was delivered before it.
func (w *watch) marker() {
	w.t.Helper()
	w.expect(w.msg("conformance.marker", map[string]string{"marker": uuid.NewString()}))
}

func short(b []byte) string {
	if len(b) > 200 {
		return fmt.Sprintf("%s… (%d bytes)", b[:200], len(b))
	}
	return string(b)
}

type htmlish struct {
	Title string   `json:"title"`
	Tags  []string `json:"tags"`
}

func testEnvelope(t *testing.T, target Target) {
	w := newWatch(t, target)
	bodies := []any{
		map[string]any{"id": "vid_123", "status": "ready", "duration": 12.5},
		"plain text",
		json.RawMessage(`{"raw":true,"n":[1,2,3]}`),
		nil,
		htmlish{Title: `<script>"Tom & Jerry"</script> — ünïcödé 🎬`, Tags: []string{"a\tb", "line\nbreak"}},
		[]int{},
		42,
	}
	for _, body := range bodies {
		w.expect(w.msg("video.asset.ready", body))
	}
	// An empty request id is allowed and kept.
	w.expect(realtime.Message{Room: w.room, Name: "video.asset.ready", Body: true, ID: uuid.NewString()})
}

func testValidation(t *testing.T, target Target) {
	w := newWatch(t, target)
	cases := []struct {
		name   string
		msg    realtime.Message
		field  string
		reason error
	}{
		{"empty room", realtime.Message{Name: "video.asset.ready"}, "room", realtime.ErrEmpty},
		{"empty name", realtime.Message{Room: w.room}, "name", realtime.ErrEmpty},
		{"room with newline", realtime.Message{Room: w.room + "\n", Name: "x"}, "room", realtime.ErrControlCharacter},
		{"room with NUL", realtime.Message{Room: "a\x00b", Name: "x"}, "room", realtime.ErrControlCharacter},
		{"name with zero-width joiner", realtime.Message{Room: w.room, Name: "video\u200d.ready"}, "name", realtime.ErrControlCharacter},
		{"room too long", realtime.Message{Room: strings.Repeat("r", field.RoomBytes+1), Name: "x"}, "room", realtime.ErrTooLong},
		{"name too long", realtime.Message{Room: w.room, Name: strings.Repeat("n", field.NameBytes+1)}, "name", realtime.ErrTooLong},
		{"name not UTF-8", realtime.Message{Room: w.room, Name: "bad\xff"}, "name", realtime.ErrInvalidUTF8},
		{"request id with DEL", realtime.Message{Room: w.room, Name: "x", RequestID: "a\x7f"}, "requestId", realtime.ErrControlCharacter},
		{"request id too long", realtime.Message{Room: w.room, Name: "x", RequestID: strings.Repeat("i", field.RequestIDBytes+1)}, "requestId", realtime.ErrTooLong},
		{"id too long", realtime.Message{Room: w.room, Name: "x", ID: strings.Repeat("i", field.IDBytes+1)}, "id", realtime.ErrTooLong},
		{"id with newline", realtime.Message{Room: w.room, Name: "x", ID: "a\nb"}, "id", realtime.ErrControlCharacter},
	}
	for _, c := range cases {
		err := w.publish(c.msg)
		if !errors.Is(err, realtime.ErrInvalidMessage) || !errors.Is(err, c.reason) {
			t.Errorf("%s: got %v, want errors matching ErrInvalidMessage and %v", c.name, err, c.reason)
			continue
		}
		var ve *realtime.ValidationError
		if !errors.As(err, &ve) || ve.Field != c.field {
			t.Errorf("%s: got %#v, want a *ValidationError for field %q", c.name, err, c.field)
		}
	}
	w.marker()
}

type panicky struct{}

func (panicky) MarshalJSON() ([]byte, error) { panic("boom") }

type failing struct{}

func (failing) MarshalJSON() ([]byte, error) { return nil, errors.New("cannot") }

func testUnencodable(t *testing.T, target Target) {
	w := newWatch(t, target)
	for name, body := range map[string]any{
		"channel":            make(chan int),
		"function":           func() {},
		"invalid raw JSON":   json.RawMessage(`{"a":`),
		"raw JSON not UTF-8": json.RawMessage("\"\x80\""),
		"failing marshaler":  failing{},
		"panicking marshaler": map[string]any{
			"nested": panicky{},
		},
	} {
		err := w.publish(w.msg("video.asset.ready", body))
		if !errors.Is(err, realtime.ErrEncode) {
			t.Errorf("%s: got %v, want ErrEncode", name, err)
		}
	}
	w.marker()
}

func testSizeGuard(t *testing.T, target Target) {
	w := newWatch(t, target)
	if target.Numbered {
		w.marker() // learns the room's epoch
	}
	base := w.msg("video.asset.ready", "")
	empty, err := base.Encode()
	if err != nil {
		t.Fatal(err)
	}
	// fill is the body that makes the envelope, as sent, exactly
	// MaxEnvelopeBytes long: with the seq and epoch of a Numbered target.
	fill := func() int { return realtime.MaxEnvelopeBytes - len(empty) - w.numbering() }

	over := base
	over.ID = uuid.NewString() // each its own message
	over.Body = strings.Repeat("x", fill()+1)
	err = w.publish(over)
	w.refused()
	var tl *realtime.TooLargeError
	if !errors.Is(err, realtime.ErrPayloadTooLarge) || !errors.As(err, &tl) {
		t.Fatalf("over the limit: got %v, want a *TooLargeError", err)
	}
	if tl.Size != realtime.MaxEnvelopeBytes+1 || tl.Limit != realtime.MaxEnvelopeBytes {
		t.Errorf("TooLargeError = %+v, want size %d limit %d", tl, realtime.MaxEnvelopeBytes+1, realtime.MaxEnvelopeBytes)
	}

	// Escaping counts: a body that is short in Go but long once encoded.
	escaped := base
	escaped.ID = uuid.NewString()
	escaped.Body = strings.Repeat("<", fill()/6+1)
	err = w.publish(escaped)
	w.refused()
	if !errors.Is(err, realtime.ErrPayloadTooLarge) {
		t.Fatalf("over the limit once escaped: got %v, want ErrPayloadTooLarge", err)
	}

	at := base
	at.ID = uuid.NewString()
	at.Body = strings.Repeat("y", fill())
	w.expect(at)
}

// numbering is how many bytes a Numbered target's log adds to the next
// message: its seq and the room's epoch.
func (w *watch) numbering() int {
	if !w.target.Numbered {
		return 0
	}
	return len(`,"seq":,"epoch":`) + len(strconv.FormatUint(w.seq+1, 10)) + len(strconv.FormatUint(w.epoch, 10))
}

// refused notes a message a Numbered target's log numbered although its
// transport refused it: the log holds it, for catch-up.
func (w *watch) refused() {
	if w.target.Numbered {
		w.seq++
	}
}

func testCancellation(t *testing.T, target Target) {
	w := newWatch(t, target)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := target.Provider.Publish(ctx, w.msg("video.asset.ready", "cancelled")); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled context: got %v, want context.Canceled", err)
	}
	w.marker()
}

func testDeadline(t *testing.T, target Target) {
	if target.Stalled == nil {
		t.Skip("target has no stalled server")
	}
	p := target.Stalled(t)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	err := p.Publish(ctx, realtime.Message{Room: "stalled", Name: "video.asset.ready", Body: 1})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("stalled server: got %v, want context.DeadlineExceeded", err)
	}
}

func testConcurrent(t *testing.T, target Target) {
	w := newWatch(t, target)
	const workers, each = 8, 10
	var want []string
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	msgs := make([][]realtime.Message, workers)
	for g := range workers {
		for i := range each {
			msg := w.msg("video.asset.ready", map[string]int{"worker": g, "seq": i})
			msgs[g] = append(msgs[g], msg)
			env, err := msg.Encode()
			if err != nil {
				t.Fatal(err)
			}
			if target.Respell != nil {
				env = target.Respell(env)
			}
			want = append(want, string(env))
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, msg := range msgs[g] {
				errs <- w.publish(msg)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent publish: %v", err)
		}
	}
	var got []string
	var seqs []uint64
	for range want {
		ctx, cancel := context.WithTimeout(context.Background(), w.timeout)
		b, err := w.sub.Next(ctx)
		cancel()
		if err != nil {
			t.Fatalf("after %d of %d deliveries: %v", len(got), len(want), err)
		}
		env, seq := w.split(b)
		got = append(got, string(env))
		seqs = append(seqs, seq)
	}
	if w.target.Numbered {
		// Concurrent publishes may arrive in any order, numbered without
		// a gap or a repeat.
		slices.Sort(seqs)
		for i, seq := range seqs {
			if seq != w.seq+uint64(i)+1 {
				t.Fatalf("concurrent deliveries have seqs %v, want %d to %d", seqs, w.seq+1, w.seq+uint64(len(seqs)))
			}
		}
		w.seq += uint64(len(seqs))
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("concurrent deliveries differ from what was published (lost or duplicated messages)")
	}
	w.marker()
}

// counting is a body that counts how often it is encoded.
type counting struct{ n *atomic.Int64 }

func (c counting) MarshalJSON() ([]byte, error) {
	c.n.Add(1)
	return []byte(`{"counted":true}`), nil
}

func testEncodedOnce(t *testing.T, target Target) {
	ep, ok := target.Provider.(realtime.EnvelopePublisher)
	if !ok {
		t.Skipf("%T is not a realtime.EnvelopePublisher", target.Provider)
	}
	w := newWatch(t, target)
	var encoded atomic.Int64
	env, err := realtime.NewEnvelope(context.Background(), w.msg("video.asset.ready", counting{&encoded}))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), w.timeout)
	defer cancel()
	if err := ep.PublishEnvelope(ctx, env); err != nil {
		t.Fatalf("PublishEnvelope: %v", err)
	}
	w.next(env.Bytes())
	if n := encoded.Load(); n != 1 {
		t.Errorf("the body was encoded %d times; want once, by NewEnvelope", n)
	}

	if err := ep.PublishEnvelope(ctx, nil); !errors.Is(err, realtime.ErrInvalidMessage) {
		t.Errorf("nil envelope: got %v, want ErrInvalidMessage", err)
	}
	cctx, ccancel := context.WithCancel(context.Background())
	ccancel()
	if err := ep.PublishEnvelope(cctx, env); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: got %v, want context.Canceled", err)
	}
	w.marker()
}
