package inngest_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/coursebuilder/realtime-go/realtime"
	"github.com/coursebuilder/realtime-go/realtime/inngest"
	"github.com/coursebuilder/realtime-go/replay"
)

// The gap-repair tests publish into a real replay.Memory log, send what
// they choose of it over the fake websocket of subscriber_test.go (its
// channel "vid_1" and topics "video.asset.ready" and "t"), and let the
// subscriber catch up from the same log, as a Broadcast's History would.

// logRoom is one room's replay log and a CatchUp over it.
type logRoom struct {
	t     *testing.T
	log   atomic.Pointer[replay.Memory]
	limit int // page size; small, so that catch-ups page
	gate  atomic.Pointer[chan struct{}]

	mu     sync.Mutex
	afters []uint64 // of every CatchUp call, in order
	fail   func(n int, after uint64) error
	calls  int
}

func newLogRoom(t *testing.T, limit int, r *replay.Retention) *logRoom {
	room := &logRoom{t: t, limit: limit}
	room.log.Store(replay.NewMemory(r))
	return room
}

// publish appends a message named name to the log and returns its entry;
// nothing is sent on the websocket.
func (r *logRoom) publish(name string, body any) replay.Entry {
	r.t.Helper()
	env, err := realtime.NewEnvelope(context.Background(), realtime.Message{Room: "room", Name: name, Body: body})
	require.NoError(r.t, err)
	e, err := r.log.Load().Append(context.Background(), "room", env.Message().ID, env.Bytes())
	require.NoError(r.t, err)
	return e
}

// hold makes every catch-up but a subscriber's first (which only learns
// where the room stands) wait, before it reads the log, until release: the
// test decides what the log holds when it is read.
func (r *logRoom) hold() {
	ch := make(chan struct{})
	r.gate.Store(&ch)
}

func (r *logRoom) release() { close(*r.gate.Swap(nil)) }

// catchUp is SubscriberOptions.CatchUp.
func (r *logRoom) catchUp(ctx context.Context, after uint64) (replay.Page, error) {
	if g := r.gate.Load(); g != nil && after != 1<<64-1 {
		select {
		case <-*g:
		case <-ctx.Done():
			return replay.Page{}, ctx.Err()
		}
	}
	r.mu.Lock()
	r.calls++
	n, fail := r.calls, r.fail
	r.afters = append(r.afters, after)
	r.mu.Unlock()
	if fail != nil {
		if err := fail(n, after); err != nil {
			return replay.Page{}, err
		}
	}
	return r.log.Load().After(ctx, "room", after, r.limit)
}

func (r *logRoom) Afters() []uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.afters)
}

// frame is the data frame that carries e on topic.
func frame(e replay.Entry, topic string) map[string]any {
	return data("vid_1", topic, string(e.Envelope))
}

// syncFrames sends a payload that is not an envelope, delivered at once,
// and waits for it: the frames sent before it have been taken in.
func syncFrames(t *testing.T, c *serverConn, rec *deliveries) {
	t.Helper()
	c.send(t, data("vid_1", "t", `"sync"`))
	e := rec.next(t)
	require.Equal(t, `"sync"`, string(e.m.Data), "the next delivery")
}

// deliveries collects deliveries and resets in the order the handler saw
// them.
type deliveries struct{ ch chan event }

type event struct {
	m     inngest.Message
	reset bool
}

func newDeliveries() *deliveries { return &deliveries{ch: make(chan event, 1024)} }

func (r *deliveries) handle(m inngest.Message) { r.ch <- event{m: m} }
func (r *deliveries) onReset()                 { r.ch <- event{reset: true} }

func (r *deliveries) next(t *testing.T) event {
	t.Helper()
	select {
	case e := <-r.ch:
		return e
	case <-time.After(patience):
		t.Fatal("nothing delivered")
		return event{}
	}
}

// expect takes the next deliveries and checks their seqs; 0 stands for
// an OnReset call.
func (r *deliveries) expect(t *testing.T, seqs ...uint64) []inngest.Message {
	t.Helper()
	var got []uint64
	var msgs []inngest.Message
	for range seqs {
		e := r.next(t)
		if e.reset {
			got = append(got, 0)
			continue
		}
		got = append(got, e.m.Seq)
		msgs = append(msgs, e.m)
	}
	require.Equal(t, seqs, got, "seqs delivered (0: a reset)")
	return msgs
}

// repairOpts are fast backoffs with CatchUp over room and OnReset into rec.
func repairOpts(room *logRoom, rec *deliveries) *inngest.SubscriberOptions {
	return &inngest.SubscriberOptions{
		MinBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond,
		CatchUp: room.catchUp, OnReset: rec.onReset,
	}
}

// TestRepairFillsAGapInOrder: a live message whose seq is not the next one
// is held while CatchUp, page after page, brings what lies between, and
// they are delivered in seq order, each once. What the room held before
// the subscriber started is not delivered: After 0 means from now.
func TestRepairFillsAGapInOrder(t *testing.T) {
	room := newLogRoom(t, 1, nil)
	room.publish("t", "before the subscriber")
	room.hold()
	srv := newWSServer(t, nil)
	src, _ := numbered(t)
	rec := newDeliveries()
	sub := subscribe(t, srv.URL, src, rec.handle, repairOpts(room, rec))
	assert.Equal(t, []uint64{1<<64 - 1}, room.Afters(), "the first catch-up only learns where the room stands")
	c := srv.next()

	e2, e3, e4 := room.publish("t", 2), room.publish("video.asset.ready", 3), room.publish("t", 4)
	c.send(t, frame(e4, "t"))
	syncFrames(t, c, rec) // 4 is held
	room.release()
	msgs := rec.expect(t, 2, 3, 4)

	assert.Equal(t, e2.ID, msgs[0].ID)
	assert.Equal(t, inngest.Message{
		Channel: "vid_1", Topic: "video.asset.ready", Data: e3.Envelope, CreatedAt: e3.Time,
		ID: e3.ID, Seq: 3, Epoch: e3.Epoch,
	}, msgs[1], "a repaired message")
	assert.Equal(t, "run_1", msgs[2].RunID, "the live copy, held")
	assert.Equal(t, uint64(2), sub.Repaired())
	assert.Zero(t, sub.Duplicates())
	assert.Zero(t, sub.Resets())
	assert.Zero(t, sub.Dropped())
}

// TestRepairDeliversOnceWhenLiveAndCatchUpOverlap: the missing message
// arrives live while the catch-up is on its way; the catch-up's copies are
// dropped and counted.
func TestRepairDeliversOnceWhenLiveAndCatchUpOverlap(t *testing.T) {
	room := newLogRoom(t, 10, nil)
	room.publish("t", "before the subscriber") // so that the epoch is known from the start
	room.hold()
	srv := newWSServer(t, nil)
	src, _ := numbered(t)
	rec := newDeliveries()
	sub := subscribe(t, srv.URL, src, rec.handle, repairOpts(room, rec))
	c := srv.next()
	c.send(t, frame(room.publish("t", 2), "t"))
	rec.expect(t, 2)

	e3, e4 := room.publish("t", 3), room.publish("t", 4)
	c.send(t, frame(e4, "t")) // 3 is missing: 4 is held, a catch-up waits
	syncFrames(t, c, rec)
	c.send(t, frame(e3, "t")) // 3 arrives live after all: 3 and the held 4 go out
	rec.expect(t, 3, 4)
	room.release() // the catch-up waiting reads 2 (or 3) to 4: all delivered already
	require.Eventually(t, func() bool { return sub.Duplicates() >= 2 }, patience, time.Millisecond)

	c.send(t, frame(room.publish("t", 5), "t"))
	rec.expect(t, 5)
	assert.Zero(t, sub.Resets())
}

// TestRepairCatchesUpOnReconnect: what was published while the
// subscriber was away is delivered once the new connection opens, without
// waiting for a live message to show the gap.
func TestRepairCatchesUpOnReconnect(t *testing.T) {
	room := newLogRoom(t, 2, nil)
	published := make(chan struct{})
	publishedOnce := sync.OnceFunc(func() { close(published) })
	var reconnected atomic.Bool
	srv := newWSServer(t, func(n int, _ string) int {
		if n == 2 {
			<-published
			reconnected.Store(true)
		}
		return 0
	})
	t.Cleanup(publishedOnce) // before the server's cleanup, should the test fail first
	var (
		afterReconnect []uint64
		mu             sync.Mutex
	)
	room.fail = func(_ int, after uint64) error {
		if reconnected.Load() {
			mu.Lock()
			afterReconnect = append(afterReconnect, after)
			mu.Unlock()
		}
		return nil
	}
	src, _ := numbered(t)
	rec := newDeliveries()
	sub := subscribe(t, srv.URL, src, rec.handle, repairOpts(room, rec))
	c := srv.next()
	c.send(t, frame(room.publish("t", 1), "t"))
	rec.expect(t, 1)
	syncFrames(t, c, rec) // the first frame, which asks for a catch-up, was read
	require.Eventually(t, func() bool { return inngest.Idle(sub) }, patience, time.Millisecond,
		"the first connection's catch-ups are over")
	before := sub.Repaired()

	_ = c.ws.CloseNow()
	for i := range 3 {
		room.publish("t", i+2) // 2, 3, 4: nobody is connected
	}
	publishedOnce()
	srv.next() // sends nothing
	rec.expect(t, 2, 3, 4)
	mu.Lock()
	require.NotEmpty(t, afterReconnect)
	assert.Equal(t, []uint64{1}, afterReconnect[:1], "a catch-up after the last seq delivered, once the new connection opened")
	mu.Unlock()
	assert.Equal(t, uint64(3), sub.Repaired()-before)
}

// TestRepairCatchesUpAtTheFirstFrame: the server subscribes a connection
// a little after the handshake, so a message published in between is
// neither sent nor seen by the catch-up of the handshake; the connection's
// first frame (here a keepalive ping) shows the server has subscribed it,
// and a catch-up then brings the message.
func TestRepairCatchesUpAtTheFirstFrame(t *testing.T) {
	room := newLogRoom(t, 10, nil)
	srv := newWSServer(t, nil)
	src, _ := numbered(t)
	rec := newDeliveries()
	sub := subscribe(t, srv.URL, src, rec.handle, repairOpts(room, rec))
	c := srv.next()
	require.Eventually(t, func() bool { return inngest.Idle(sub) }, patience, time.Millisecond,
		"the handshake's catch-up is over")
	room.publish("t", 1) // before the server subscribed the connection
	c.send(t, map[string]any{"kind": "ping"})
	rec.expect(t, 1)
	assert.Equal(t, uint64(1), sub.Repaired())
}

// TestRepairOverlapsConnectionsOnClosing: on "closing" the new
// connection opens while the old one is still read; the old one closes
// once the new one is open; what both deliver goes out once, and what was
// published during the switch comes from the log.
func TestRepairOverlapsConnectionsOnClosing(t *testing.T) {
	room := newLogRoom(t, 10, nil)
	dialing, release := make(chan struct{}), make(chan struct{})
	releaseOnce := sync.OnceFunc(func() { close(release) })
	srv := newWSServer(t, func(n int, _ string) int {
		if n == 2 {
			close(dialing)
			<-release
		}
		return 0
	})
	t.Cleanup(releaseOnce) // before the server's cleanup, should the test fail first
	src, minted := numbered(t)
	rec := newDeliveries()
	sub := subscribe(t, srv.URL, src, rec.handle, repairOpts(room, rec))
	old := srv.next()
	e1 := room.publish("t", 1)
	old.send(t, frame(e1, "t"))
	rec.expect(t, 1)

	old.send(t, map[string]any{"kind": "closing"})
	<-dialing // the second handshake has reached the server
	e2 := room.publish("t", 2)
	old.send(t, frame(e2, "t"))
	rec.expect(t, 2) // the old connection is still read
	// It stays open while the new one is not, however long one waits.
	select {
	case <-old.closed.Done():
		t.Fatal("the old connection was closed before the new one opened")
	case <-time.After(50 * time.Millisecond):
	}

	e3 := room.publish("t", 3) // during the switch, on neither connection
	releaseOnce()
	fresh := srv.next()
	select {
	case <-old.closed.Done(): // closed by the client once the new one was open
	case <-time.After(patience):
		t.Fatal("the old connection stayed open")
	}
	e4 := room.publish("video.asset.ready", 4)
	fresh.send(t, frame(e2, "t")) // the overlap: both connections had it
	fresh.send(t, frame(e3, "t"))
	fresh.send(t, frame(e4, "video.asset.ready"))
	rec.expect(t, 3, 4)
	e5 := room.publish("t", 5)
	fresh.send(t, frame(e5, "t"))
	rec.expect(t, 5)
	assert.GreaterOrEqual(t, sub.Duplicates(), uint64(1))
	assert.EqualValues(t, 1, minted.Load(), "the token was still good")
}

// TestRepairResetsWhenTheEpochChanges: the log lost the room's history
// (a restart), its seqs start again at 1 under a new epoch: the handler is
// told (OnReset) and then gets the new epoch's messages from the start.
func TestRepairResetsWhenTheEpochChanges(t *testing.T) {
	room := newLogRoom(t, 10, nil)
	srv := newWSServer(t, nil)
	src, _ := numbered(t)
	rec := newDeliveries()
	core, logs := observer.New(zap.WarnLevel)
	opts := repairOpts(room, rec)
	opts.Logger = zap.New(core)
	sub := subscribe(t, srv.URL, src, rec.handle, opts)
	c := srv.next()
	old := room.publish("t", 1)
	c.send(t, frame(old, "t"))
	rec.expect(t, 1)

	// A new log whose epoch differs from the old one's (epochs are
	// microseconds: a new log in the same microsecond would repeat it).
	for {
		room.log.Store(replay.NewMemory(nil))
		if e := room.publish("t", "new 1"); e.Epoch != old.Epoch {
			break
		}
	}
	e2 := room.publish("t", "new 2")
	c.send(t, frame(e2, "t"))
	msgs := rec.expect(t, 0, 1, 2)
	assert.Equal(t, e2.Epoch, msgs[0].Epoch)
	assert.Equal(t, uint64(1), sub.Resets())
	assert.Equal(t, 1, logs.FilterMessageSnippet("were lost").Len(), "logged at Warn")
}

// TestRepairResetsWhenHistoryWasTruncated: retention dropped some of what
// the subscriber missed; it is told, then gets what the log still holds.
func TestRepairResetsWhenHistoryWasTruncated(t *testing.T) {
	room := newLogRoom(t, 10, &replay.Retention{MaxMessages: 2})
	room.hold()
	srv := newWSServer(t, nil)
	src, _ := numbered(t)
	rec := newDeliveries()
	sub := subscribe(t, srv.URL, src, rec.handle, repairOpts(room, rec))
	c := srv.next()
	c.send(t, frame(room.publish("t", 1), "t"))
	rec.expect(t, 1)

	room.publish("t", 2)
	room.publish("t", 3)
	room.publish("t", 4)
	c.send(t, frame(room.publish("t", 5), "t")) // the log holds 4 and 5
	room.release()
	rec.expect(t, 0, 4, 5)
	assert.Equal(t, uint64(1), sub.Resets())
}

// TestRepairDeliversMessagesWithoutSeqAtOnce: a message the log did not
// number (it was down) is delivered as it arrives, even while a gap waits
// for its catch-up, and only once by id.
func TestRepairDeliversMessagesWithoutSeqAtOnce(t *testing.T) {
	room := newLogRoom(t, 10, nil)
	room.hold()
	srv := newWSServer(t, nil)
	src, _ := numbered(t)
	rec := newDeliveries()
	sub := subscribe(t, srv.URL, src, rec.handle, repairOpts(room, rec))
	c := srv.next()
	c.send(t, frame(room.publish("t", 1), "t"))
	rec.expect(t, 1)

	room.publish("t", 2)
	c.send(t, frame(room.publish("t", 3), "t")) // a gap: 3 is held, the catch-up waits
	unnumbered, err := realtime.NewEnvelope(context.Background(), realtime.Message{Room: "room", Name: "t", Body: "log down"})
	require.NoError(t, err)
	c.send(t, data("vid_1", "t", string(unnumbered.Bytes())))
	e := rec.next(t)
	assert.Equal(t, unnumbered.Message().ID, e.m.ID, "delivered while the gap waits")
	assert.Zero(t, e.m.Seq)

	room.release()
	rec.expect(t, 2, 3)
	require.NoError(t, sub.Offer(unnumbered.Bytes()))
	c.send(t, data("vid_1", "t", string(unnumbered.Bytes())))
	c.send(t, frame(room.publish("t", 4), "t"))
	rec.expect(t, 4)
	assert.GreaterOrEqual(t, sub.Duplicates(), uint64(2), "the two copies of the unnumbered message")
}

// TestOfferDeliversEachMessageOnceWhicheverTransportIsFirst: during
// shadow mode the PartyKit websocket's envelopes are offered; each id and
// seq goes out once, in order. A name the token does not cover is not
// delivered, but its seq counts.
func TestOfferDeliversEachMessageOnceWhicheverTransportIsFirst(t *testing.T) {
	room := newLogRoom(t, 10, nil)
	room.hold() // no catch-up reads the log: the two transports alone
	srv := newWSServer(t, nil)
	src, _ := numbered(t)
	rec := newDeliveries()
	sub := subscribe(t, srv.URL, src, rec.handle, repairOpts(room, rec))
	c := srv.next()

	e1, e2, e3 := room.publish("t", 1), room.publish("other", 2), room.publish("video.asset.ready", 3)
	require.NoError(t, sub.Offer(e1.Envelope)) // PartyKit first
	require.NoError(t, sub.Offer(e2.Envelope)) // not for this token: passed
	c.send(t, frame(e3, "video.asset.ready"))  // Inngest first
	c.send(t, frame(e1, "t"))                  // Inngest's copy of 1
	require.NoError(t, sub.Offer(e3.Envelope)) // PartyKit's copy of 3
	msgs := rec.expect(t, 1, 3)
	assert.Equal(t, "t", msgs[0].Topic)
	assert.Equal(t, "vid_1", msgs[0].Channel)
	assert.JSONEq(t, string(e1.Envelope), string(msgs[0].Data))

	e4 := room.publish("t", 4)
	require.NoError(t, sub.Offer(e4.Envelope))
	c.send(t, frame(e4, "t"))
	rec.expect(t, 4)
	syncFrames(t, c, rec)
	assert.Equal(t, uint64(3), sub.Duplicates(), "1, 3 and 4 came twice")
	assert.Zero(t, sub.Repaired())

	var ve *realtime.ValidationError
	require.ErrorAs(t, sub.Offer([]byte(`{"body":1}`)), &ve, "an envelope without a name")
	assert.Error(t, sub.Offer([]byte(`not json`)))
}

// TestOfferWithoutCatchUpDropsSecondCopies: without CatchUp nothing is
// reordered, but an id is still delivered once.
func TestOfferWithoutCatchUpDropsSecondCopies(t *testing.T) {
	srv := newWSServer(t, nil)
	src, _ := numbered(t)
	rec := newDeliveries()
	sub := subscribe(t, srv.URL, src, rec.handle, fast)
	c := srv.next()
	room := newLogRoom(t, 10, nil)
	e1, e2 := room.publish("t", 1), room.publish("t", 2)
	c.send(t, frame(e2, "t"))
	rec.expect(t, 2)
	require.NoError(t, sub.Offer(e1.Envelope)) // out of order, delivered as it comes
	require.NoError(t, sub.Offer(e2.Envelope))
	c.send(t, frame(e1, "t"))
	c.send(t, frame(room.publish("t", 3), "t"))
	rec.expect(t, 1, 3)
	assert.Equal(t, uint64(2), sub.Duplicates())
	assert.Zero(t, sub.Repaired())
}

// TestRepairRetriesCatchUpErrors: a failing or panicking CatchUp is
// retried with backoff; the gap is filled once it answers, nothing twice.
func TestRepairRetriesCatchUpErrors(t *testing.T) {
	room := newLogRoom(t, 10, nil)
	room.hold()
	var failing atomic.Int32
	room.fail = func(int, uint64) error {
		switch failing.Add(-1) {
		case 2:
			panic("catch-up bug")
		case 1, 0:
			return errors.New("history unavailable")
		}
		return nil
	}
	srv := newWSServer(t, nil)
	src, _ := numbered(t)
	rec := newDeliveries()
	sub := subscribe(t, srv.URL, src, rec.handle, repairOpts(room, rec))
	c := srv.next()
	c.send(t, frame(room.publish("t", 1), "t"))
	rec.expect(t, 1)

	failing.Store(3) // the next three calls fail
	room.publish("t", 2)
	c.send(t, frame(room.publish("t", 3), "t"))
	syncFrames(t, c, rec) // 3 is held
	room.release()
	rec.expect(t, 2, 3)
	c.send(t, frame(room.publish("t", 4), "t"))
	rec.expect(t, 4)
	assert.LessOrEqual(t, failing.Load(), int32(-1), "every failure was retried")
	assert.Zero(t, sub.Resets(), "three failures are not five")
	assert.Equal(t, uint64(1), sub.Repaired())
}

// TestRepairGivesUpAGapWhenCatchUpKeepsFailing: live messages are not
// held forever: after five failures in a row the gap is given up, the
// handler told, and what is held delivered in order.
func TestRepairGivesUpAGapWhenCatchUpKeepsFailing(t *testing.T) {
	room := newLogRoom(t, 10, nil)
	room.hold()
	var down atomic.Bool
	room.fail = func(int, uint64) error {
		if down.Load() {
			return errors.New("history unavailable")
		}
		return nil
	}
	srv := newWSServer(t, nil)
	src, _ := numbered(t)
	rec := newDeliveries()
	sub := subscribe(t, srv.URL, src, rec.handle, repairOpts(room, rec))
	c := srv.next()
	c.send(t, frame(room.publish("t", 1), "t"))
	rec.expect(t, 1)

	down.Store(true)
	room.publish("t", 2)
	c.send(t, frame(room.publish("t", 3), "t"))
	c.send(t, frame(room.publish("t", 4), "t"))
	room.release()
	rec.expect(t, 0, 3, 4)
	assert.Equal(t, uint64(1), sub.Resets())

	down.Store(false)
	c.send(t, frame(room.publish("t", 5), "t"))
	rec.expect(t, 5)
}

// TestSubscribeFailsWhenTheFirstCatchUpCannot: with After 0, Subscribe
// needs the room's position; it retries until ctx ends.
func TestSubscribeFailsWhenTheFirstCatchUpCannot(t *testing.T) {
	srv := newWSServer(t, nil)
	src, _ := numbered(t)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	var calls atomic.Int32
	_, err := inngest.Subscribe(ctx, srv.URL, src, func(inngest.Message) {}, &inngest.SubscriberOptions{
		MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond,
		CatchUp: func(context.Context, uint64) (replay.Page, error) {
			calls.Add(1)
			return replay.Page{}, errors.New("history unavailable")
		},
	})
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.ErrorContains(t, err, "history unavailable")
	assert.Greater(t, calls.Load(), int32(1), "retried")
	c := srv.next()
	select {
	case <-c.closed.Done(): // the connection it opened is closed
	case <-time.After(patience):
		t.Fatal("the connection stayed open")
	}
}

// TestSubscriberCloseEndsACatchUpInProgress: Close cancels the context of
// a CatchUp call and returns; no goroutine is left behind.
func TestSubscriberCloseEndsACatchUpInProgress(t *testing.T) {
	leaks := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, leaks) })
	room := newLogRoom(t, 10, nil)
	var block atomic.Bool
	entered, ended := make(chan struct{}), make(chan error, 1)
	srv := newWSServer(t, nil)
	src, _ := numbered(t)
	rec := newDeliveries()
	opts := repairOpts(room, rec)
	opts.CatchUp = func(ctx context.Context, after uint64) (replay.Page, error) {
		if block.CompareAndSwap(true, false) {
			close(entered)
			<-ctx.Done()
			ended <- ctx.Err()
			return replay.Page{}, ctx.Err()
		}
		return room.catchUp(ctx, after)
	}
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	sub, err := inngest.Subscribe(ctx, srv.URL, src, rec.handle, opts)
	require.NoError(t, err)
	c := srv.next()
	block.Store(true)
	room.publish("t", 1)
	c.send(t, frame(room.publish("t", 2), "t")) // a gap: a catch-up that hangs
	<-entered

	require.NoError(t, sub.Close())
	assert.ErrorIs(t, <-ended, context.Canceled)
	require.NoError(t, sub.Close(), "twice")
	assert.NoError(t, sub.Offer(room.publish("t", 3).Envelope), "Offer after Close does nothing")
}

// TestSubscribeAfterResumesFromASavedPosition: After and AfterEpoch resume
// after the last message a program handled; with another epoch, it is told
// of the loss and gets the room's messages from the start.
func TestSubscribeAfterResumesFromASavedPosition(t *testing.T) {
	room := newLogRoom(t, 2, nil)
	e1 := room.publish("t", 1)
	for i := range 4 {
		room.publish("t", i+2)
	}
	for _, tc := range []struct {
		epoch uint64
		want  []uint64
	}{
		{e1.Epoch, []uint64{3, 4, 5}},
		{0, []uint64{3, 4, 5}},
		{e1.Epoch + 1, []uint64{0, 1, 2, 3, 4, 5}},
	} {
		srv := newWSServer(t, nil)
		src, _ := numbered(t)
		rec := newDeliveries()
		opts := repairOpts(room, rec)
		opts.After, opts.AfterEpoch = 2, tc.epoch
		sub := subscribe(t, srv.URL, src, rec.handle, opts)
		srv.next()
		rec.expect(t, tc.want...)
		require.NoError(t, sub.Close())
	}
}

// TestRepairLosesNothingWhenTheHandlerIsSlow: numbered messages that do
// not fit the queue wait, or are fetched again, instead of being dropped.
func TestRepairLosesNothingWhenTheHandlerIsSlow(t *testing.T) {
	room := newLogRoom(t, 3, nil)
	srv := newWSServer(t, nil)
	src, _ := numbered(t)
	release := make(chan struct{})
	rec := newDeliveries()
	opts := repairOpts(room, rec)
	opts.QueueSize = 2
	sub := subscribe(t, srv.URL, src, func(m inngest.Message) {
		<-release
		rec.handle(m)
	}, opts)
	c := srv.next()
	want := make([]uint64, 20)
	for i := range want {
		want[i] = uint64(i + 1)
		c.send(t, frame(room.publish("t", i), "t"))
	}
	close(release)
	rec.expect(t, want...)
	assert.Zero(t, sub.Dropped())
	assert.Zero(t, sub.Resets())
}

// TestRepairWithACatchUpThatFiltersNames: a source that, like the token
// endpoint, leaves out the names the token does not cover, and so answers
// pages with holes, and a Topic mapping.
func TestRepairWithACatchUpThatFiltersNames(t *testing.T) {
	room := newLogRoom(t, 2, nil)
	filtered := func(ctx context.Context, after uint64) (replay.Page, error) {
		for {
			p, err := room.catchUp(ctx, after)
			if err != nil || len(p.Entries) == 0 {
				return p, err
			}
			full := len(p.Entries) == room.limit
			last := p.Entries[len(p.Entries)-1].Seq
			p.Entries = slices.DeleteFunc(p.Entries, func(e replay.Entry) bool {
				m, _ := realtime.DecodeEnvelope(e.Envelope)
				return m.Name != "t"
			})
			if len(p.Entries) > 0 || !full {
				return p, nil
			}
			after = last // an empty page must mean nothing is left
		}
	}
	srv := newWSServer(t, nil)
	token := func(context.Context) (inngest.Token, error) {
		return inngest.Token{JWT: "jwt", Channel: "vid_1", Topics: []string{"rt.t"}, Expires: time.Now().Add(time.Minute)}, nil
	}
	rec := newDeliveries()
	opts := repairOpts(room, rec)
	opts.CatchUp = filtered
	opts.Topic = func(name string) (string, error) { return "rt." + name, nil }
	sub := subscribe(t, srv.URL, token, rec.handle, opts)
	c := srv.next()

	room.publish("t", 1)
	for range 5 {
		room.publish("other", "not mine")
	}
	room.publish("t", 7)
	room.publish("other", "not mine")
	e9 := room.publish("t", 9)
	c.send(t, frame(e9, "rt.t"))
	msgs := rec.expect(t, 1, 7, 9)
	assert.Equal(t, "rt.t", msgs[0].Topic)
	require.NoError(t, sub.Offer(room.publish("other", 10).Envelope))
	require.NoError(t, sub.Offer(room.publish("t", 11).Envelope))
	rec.expect(t, 11)
	assert.Zero(t, sub.Resets())
}

// TestSubscriberRenewsItsTokenDuringALongStream: a connection outlives its
// token (Inngest checks tokens when a connection opens); the next
// connection, here after "closing", dials with a fresh one instead of
// being refused first.
func TestSubscriberRenewsItsTokenDuringALongStream(t *testing.T) {
	var (
		expires sync.Map // jwt → expiry
		n       atomic.Int32
	)
	token := func(context.Context) (inngest.Token, error) {
		i := n.Add(1)
		life := time.Minute
		if i == 1 {
			life = 30 * time.Millisecond // the first stream outlives it
		}
		jwt := fmt.Sprintf("jwt-%d", i)
		exp := time.Now().Add(life)
		expires.Store(jwt, exp)
		return inngest.Token{JWT: jwt, Channel: "vid_1", Topics: []string{"t"}, Expires: exp}, nil
	}
	var refused atomic.Int32
	srv := newWSServer(t, func(n int, jwt string) int {
		exp, ok := expires.Load(jwt)
		if n > 1 && (!ok || !time.Now().Before(exp.(time.Time))) { // a reconnection with an expired token
			refused.Add(1)
			return http.StatusUnauthorized
		}
		return 0
	})
	room := newLogRoom(t, 10, nil)
	rec := newDeliveries()
	opts := repairOpts(room, rec)
	opts.TokenMargin = 10 * time.Millisecond
	subscribe(t, srv.URL, token, rec.handle, opts)
	c := srv.next()
	// The stream goes on past the token's expiry: the clock passes it,
	// whatever the subscriber does meanwhile.
	exp, _ := expires.Load("jwt-1")
	for time.Now().Before(exp.(time.Time)) {
		time.Sleep(time.Millisecond)
	}
	c.send(t, frame(room.publish("t", 1), "t"))
	rec.expect(t, 1)
	c.send(t, map[string]any{"kind": "closing"})
	fresh := srv.next()
	fresh.send(t, frame(room.publish("t", 2), "t"))
	rec.expect(t, 2)
	assert.Equal(t, []string{"Bearer jwt-1", "Bearer jwt-2"}, srv.Auths(), "renewed before dialing, never refused")
	assert.Zero(t, refused.Load())
}
