package inngest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/coursebuilder/realtime-go/realtime"
	"github.com/coursebuilder/realtime-go/replay"
)

// Bounds of gap repair (see SubscriberOptions.CatchUp).
const (
	// dedupeWindow is how many ids of delivered messages a subscriber
	// remembers, to drop a second copy of a message without seq.
	dedupeWindow = 4096
	// maxRepairFailures is how many failed CatchUp calls in a row a held
	// gap waits for before it is given up as lost.
	maxRepairFailures = 5
	// maxIdleRounds is how many catch-ups in a row that answer but do not
	// move the cursor a held gap waits for before it is given up as lost.
	maxIdleRounds = 3
	// maxResetsPerFetch bounds the resets of one catch-up: a source whose
	// epoch changes on every page is failing.
	maxResetsPerFetch = 2
	// defaultCatchUpTimeout is the default of SubscriberOptions.CatchUpTimeout.
	defaultCatchUpTimeout = 10 * time.Second
)

// positionAfter is the seq the first catch-up of a subscriber without
// SubscriberOptions.After asks after: above every seq, so that the page
// has no entries, only Head and Epoch.
const positionAfter = math.MaxUint64

// errEpochFlapping fails a catch-up whose source changed epochs more than
// maxResetsPerFetch times.
var errEpochFlapping = errors.New("tokens: catch-up: the source's epoch changed on every page")

// held is a numbered message waiting for its turn in seq order.
type held struct {
	msg Message
	// hidden marks a message of a name the token does not cover: it fills
	// its seq, and nothing is delivered.
	hidden bool
	// repaired marks a message a catch-up brought.
	repaired bool
}

// cmpHeld orders held messages by epoch, then seq.
func cmpHeld(a, b held) int {
	if c := cmp.Compare(a.msg.Epoch, b.msg.Epoch); c != 0 {
		return c
	}
	return cmp.Compare(a.msg.Seq, b.msg.Seq)
}

// idSet remembers the last dedupeWindow ids added.
type idSet struct {
	ring []string
	next int
	ids  map[string]struct{}
}

func (s *idSet) has(id string) bool {
	_, ok := s.ids[id]
	return ok
}

func (s *idSet) add(id string) {
	if id == "" || s.has(id) {
		return
	}
	if s.ids == nil {
		s.ids = make(map[string]struct{}, dedupeWindow)
		s.ring = make([]string, dedupeWindow)
	}
	delete(s.ids, s.ring[s.next])
	s.ring[s.next] = id
	s.ids[id] = struct{}{}
	s.next = (s.next + 1) % len(s.ring)
}

// newMessageLocked is the Message of an envelope received outside the websocket
// (a catch-up page, Offer), on the channel of the newest token, and
// whether the token covers its name. Data is a copy of envelope.
func (s *Subscriber) newMessageLocked(envelope []byte, env realtime.Message) (Message, bool) {
	m := Message{
		Channel: s.tok.Channel,
		Data:    append([]byte(nil), envelope...),
		ID:      env.ID, Seq: env.Seq, Epoch: env.Epoch,
	}
	topic, err := s.topicFor(env.Name)
	if err != nil {
		return m, false
	}
	m.Topic = topic
	return m, slices.Contains(s.tok.Topics, topic)
}

// topicFor maps a name with SubscriberOptions.Topic, or to itself.
func (s *Subscriber) topicFor(name string) (topic string, err error) {
	if s.topic == nil {
		return name, nil
	}
	defer func() {
		if p := recover(); p != nil {
			topic, err = "", fmt.Errorf("tokens: the Topic function panicked")
		}
	}()
	return s.topic(name)
}

// Offer delivers an envelope that arrived by another transport, such as
// the PartyKit websocket of the same room during shadow mode, through the
// same ordering and deduplication as the websocket's messages: each id,
// and each seq, is delivered once, whichever transport brought it first.
// Its Message has the channel of the subscriber's token, the topic of its
// name (see SubscriberOptions.Topic) and no CreatedAt or RunID. An
// envelope of a name the token does not cover is not delivered (with
// CatchUp set, its seq still counts as seen). Offer never blocks on the
// handler; after Close it does nothing. It fails only when envelope is not
// an envelope (realtime.DecodeEnvelope's error).
func (s *Subscriber) Offer(envelope []byte) error {
	env, err := realtime.DecodeEnvelope(envelope)
	if err != nil {
		return fmt.Errorf("tokens: offer: %w", err)
	}
	if s.ctx.Err() != nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	m, visible := s.newMessageLocked(envelope, env)
	switch {
	case s.catchUp != nil && numbered(m):
		s.admitLocked(held{msg: m, hidden: !visible})
	case visible:
		s.deliverNowLocked(m)
	}
	return nil
}

// take handles a data message of the websocket.
func (s *Subscriber) take(m Message) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.catchUp != nil && numbered(m) {
		s.admitLocked(held{msg: m})
		return
	}
	s.deliverNowLocked(m)
}

// numbered reports whether a replay log numbered m; a log's epochs are
// never 0.
func numbered(m Message) bool { return m.Seq != 0 && m.Epoch != 0 }

// deliverNowLocked queues a message outside seq order (CatchUp is nil, or
// it has no seq) unless its id was delivered already or the queue is full.
func (s *Subscriber) deliverNowLocked(m Message) {
	if m.ID != "" && s.seen.has(m.ID) {
		s.duplicates.Add(1)
		return
	}
	if len(s.queue) >= s.queueSize {
		n := s.dropped.Add(1)
		if n&(n-1) == 0 { // 1, 2, 4, 8, …: a trail without a flood
			s.log.Warn("tokens: the handler is too slow; message dropped",
				zap.Uint64("dropped_total", n), zap.Int("queue_size", s.queueSize))
		}
		return
	}
	s.pushLocked(queued{msg: m})
}

// pushLocked appends to the handler's queue.
func (s *Subscriber) pushLocked(q queued) {
	s.queue = append(s.queue, q)
	s.seen.add(q.msg.ID)
	select {
	case s.qnotify <- struct{}{}:
	default:
	}
}

// admitLocked takes a numbered message into seq order: it is dropped if
// its seq was passed, held otherwise, and delivered as soon as it is next.
// A full hold forgets its highest seq (a catch-up brings it back).
func (s *Subscriber) admitLocked(h held) {
	if s.epoch == 0 {
		s.epoch = h.msg.Epoch // the room had no history when the cursor was set
	}
	if h.msg.Epoch == s.epoch && h.msg.Seq <= s.last {
		s.dropDuplicateLocked(h)
		return
	}
	i, found := slices.BinarySearchFunc(s.held, h, cmpHeld)
	if found {
		if !h.repaired { // a catch-up bringing what is held is how a gap closes
			s.dropDuplicateLocked(h)
		}
		return
	}
	s.held = slices.Insert(s.held, i, h)
	s.drainLocked(s.queueSize)
	if len(s.held) > s.queueSize {
		s.held[len(s.held)-1] = held{}
		s.held = s.held[:len(s.held)-1]
		s.wantFetchLocked()
	}
}

func (s *Subscriber) dropDuplicateLocked(h held) {
	if !h.hidden {
		s.duplicates.Add(1)
	}
}

// frontLocked returns the index of the lowest held seq of the cursor's
// epoch, or -1.
func (s *Subscriber) frontLocked() int {
	i, _ := slices.BinarySearchFunc(s.held, held{msg: Message{Epoch: s.epoch}}, cmpHeld)
	if i < len(s.held) && s.held[i].msg.Epoch == s.epoch {
		return i
	}
	return -1
}

// drainLocked delivers the held messages that are next in seq order while
// the queue holds fewer than limit, and asks for a catch-up when what is
// held cannot be delivered for want of an earlier seq.
func (s *Subscriber) drainLocked(limit int) {
	for {
		i := s.frontLocked()
		if i < 0 {
			break
		}
		h := s.held[i]
		if h.msg.Seq > s.last+1 {
			break
		}
		deliver := h.msg.Seq == s.last+1 && !h.hidden && !(h.msg.ID != "" && s.seen.has(h.msg.ID))
		if deliver && len(s.queue) >= limit {
			return // the handler is behind: dispatch drains as it catches up
		}
		s.held = slices.Delete(s.held, i, i+1)
		if h.msg.Seq <= s.last || (!h.hidden && !deliver) {
			s.dropDuplicateLocked(h)
		}
		s.last = max(s.last, h.msg.Seq)
		if deliver {
			if h.repaired {
				s.repaired.Add(1)
			}
			s.pushLocked(queued{msg: h.msg})
		}
	}
	if s.gapLocked() {
		s.wantFetchLocked()
	}
}

// gapLocked reports whether a held message waits for a seq not held, or
// is of another epoch than the cursor's.
func (s *Subscriber) gapLocked() bool {
	i := s.frontLocked()
	switch {
	case i < 0:
		return len(s.held) > 0 // only other epochs
	case i > 0 || s.held[len(s.held)-1].msg.Epoch != s.epoch:
		return true // held is sorted by epoch: others before or after
	}
	return s.held[i].msg.Seq > s.last+1
}

// skipLocked moves the cursor to target over seqs the source left out
// (names the subscriber does not see), delivering any held message on the
// way.
func (s *Subscriber) skipLocked(target uint64) {
	for s.last < target {
		if i := s.frontLocked(); i >= 0 && s.held[i].msg.Seq <= target {
			s.last = max(s.last, s.held[i].msg.Seq-1)
			s.drainLocked(math.MaxInt)
			continue
		}
		s.last = target
	}
}

// wantFetchLocked asks the repair goroutine for a catch-up.
func (s *Subscriber) wantFetchLocked() {
	s.fetchWanted = true
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// requestFetch asks for a catch-up: a connection opened or read its first
// frame.
func (s *Subscriber) requestFetch() {
	if s.catchUp == nil {
		return
	}
	s.mu.Lock()
	s.wantFetchLocked()
	s.mu.Unlock()
}

// resetLocked records that history was lost: counted, logged, and told to
// the handler (OnReset) before the next message.
func (s *Subscriber) resetLocked(reason string) {
	n := s.resets.Add(1)
	s.log.Warn("tokens: messages of the channel were lost and cannot be repaired; delivery goes on after them",
		zap.String("reason", reason), zap.String("channel", s.tok.Channel),
		zap.Uint64("epoch", s.epoch), zap.Uint64("seq", s.last), zap.Uint64("resets_total", n))
	if s.onReset != nil {
		s.queue = append(s.queue, queued{reset: true})
		select {
		case s.qnotify <- struct{}{}:
		default:
		}
	}
}

// giveUpLocked declares the seqs missing before the held messages lost and
// delivers what is held, in order; a message of another epoch is delivered
// unless its id was.
func (s *Subscriber) giveUpLocked(reason string) {
	s.resetLocked(reason)
	s.fetchWanted = false
	for {
		i := s.frontLocked()
		if i < 0 {
			break
		}
		s.last = max(s.last, s.held[i].msg.Seq-1)
		n := len(s.held)
		s.drainLocked(s.queueSize)
		if len(s.held) == n {
			break // the queue is full; dispatch drains the rest
		}
	}
	s.settleForeignLocked()
	s.fetchWanted = false
}

// settleForeignLocked delivers the held messages of another epoch than the
// cursor's, after a catch-up that did not bring their epoch: the log no
// longer numbers them, so they are delivered like messages without seq.
func (s *Subscriber) settleForeignLocked() {
	s.held = slices.DeleteFunc(s.held, func(h held) bool {
		if h.msg.Epoch == s.epoch {
			return false
		}
		if !h.hidden {
			s.deliverNowLocked(h.msg)
		}
		return true
	})
}

// repair runs catch-ups when asked, until Close.
func (s *Subscriber) repair() {
	defer s.wg.Done()
	for {
		select {
		case <-s.kick:
		case <-s.ctx.Done():
			return
		}
		s.mu.Lock()
		s.busy = true
		s.mu.Unlock()
		s.repairAll()
		s.mu.Lock()
		s.busy = false
		s.mu.Unlock()
	}
}

// repairAll fetches until nothing more is wanted: after a failure with
// backoff, giving a held gap up after maxRepairFailures failures or
// maxIdleRounds catch-ups that do not move the cursor.
func (s *Subscriber) repairAll() {
	failures, idle := 0, 0
	for {
		s.mu.Lock()
		want := s.fetchWanted
		s.fetchWanted = false
		s.mu.Unlock()
		if !want || s.ctx.Err() != nil {
			return
		}
		moved, err := s.fetch()
		if s.ctx.Err() != nil {
			return
		}
		s.mu.Lock()
		wait := 0
		switch {
		case err != nil:
			failures++
			if s.gapLocked() && failures >= maxRepairFailures {
				s.giveUpLocked("catch-up keeps failing: " + err.Error())
			} else {
				s.fetchWanted = true
				wait = failures
			}
			s.log.Warn("tokens: catch-up failed", zap.Int("attempt", failures), zap.Error(err))
		default:
			failures = 0
			s.drainLocked(s.queueSize)
			s.settleForeignLocked()
			if !s.gapLocked() {
				idle = 0
				break
			}
			if moved {
				idle = 0
			} else if idle++; idle >= maxIdleRounds {
				s.giveUpLocked("the catch-up source does not have the missing messages")
				idle = 0
				break
			}
			s.fetchWanted, wait = true, idle
		}
		s.mu.Unlock()
		if sleep(s.ctx, s.backoff(wait)) != nil {
			return
		}
	}
}

// fetch asks CatchUp for what follows the cursor, page after page, until
// it reaches the room's head, and reports whether the cursor moved.
func (s *Subscriber) fetch() (moved bool, err error) {
	s.mu.Lock()
	startEpoch, startLast := s.epoch, s.last
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		moved = s.epoch != startEpoch || s.last != startLast
		s.mu.Unlock()
	}()
	resets := 0
	for {
		s.mu.Lock()
		epoch, after := s.epoch, s.last
		s.mu.Unlock()
		page, err := s.callCatchUp(s.ctx, after)
		if err != nil {
			return false, err
		}
		more, reset := s.applyPage(page, epoch, after)
		if reset {
			if resets++; resets > maxResetsPerFetch {
				return false, errEpochFlapping
			}
		}
		if !more || s.ctx.Err() != nil {
			return false, nil
		}
	}
}

// applyPage delivers a page asked for after seq after of epoch, and
// reports whether to ask for the next page, and whether history was lost.
func (s *Subscriber) applyPage(p replay.Page, epoch, after uint64) (more, reset bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.epoch != epoch {
		return true, false // a live message set the epoch meanwhile: ask again
	}
	switch {
	case p.Head == 0 || p.Epoch == 0:
		if s.last > 0 {
			s.resetLocked("the replay log has no history of the channel")
			s.epoch, s.last = 0, 0
			return false, true
		}
		return false, false
	case s.epoch == 0:
		s.epoch = p.Epoch
		if s.last > p.Head {
			s.resetLocked("the replay log's head is below the seq to start after")
			s.last = 0
			return true, true
		}
	case p.Epoch != s.epoch:
		s.resetLocked("the replay log's epoch changed")
		s.epoch, s.last = p.Epoch, 0
		return true, true
	case s.last > p.Head:
		return false, false // a source behind the live messages: nothing to add
	}
	epoch = s.epoch
	if p.Truncated {
		s.resetLocked("the replay log no longer holds the messages after the cursor")
		reset = true
	}
	var lastSeq uint64
	for _, e := range p.Entries {
		if e.Seq <= after {
			continue // a source that does not honour after
		}
		lastSeq = e.Seq
		for e.Seq > s.last && len(s.queue) >= s.queueSize {
			s.mu.Unlock()
			select {
			case <-s.qspace:
			case <-s.ctx.Done():
			}
			s.mu.Lock()
			if s.ctx.Err() != nil || s.epoch != epoch {
				return false, reset
			}
		}
		if e.Seq <= s.last {
			if h, ok := s.entryLocked(e, epoch); ok && !h.hidden && h.msg.ID != "" && s.seen.has(h.msg.ID) {
				s.duplicates.Add(1) // delivered live while the page was on its way
			}
			continue
		}
		h, _ := s.entryLocked(e, epoch)
		s.skipLocked(e.Seq - 1) // seqs the source left out: names this subscriber does not see
		s.admitLocked(h)
	}
	switch {
	case len(p.Entries) == 0:
		s.skipLocked(p.Head) // nothing after the cursor that this subscriber sees
		return false, reset
	case lastSeq == 0:
		return false, reset // a source that does not honour after: nothing learnt
	}
	return lastSeq < p.Head, reset
}

// entryLocked turns a page entry into a held message; an entry that is
// not an envelope is hidden, so that its seq is passed.
func (s *Subscriber) entryLocked(e replay.Entry, epoch uint64) (held, bool) {
	env, err := realtime.DecodeEnvelope(e.Envelope)
	if err != nil {
		s.log.Debug("tokens: skipping a catch-up entry that is not an envelope", zap.Uint64("seq", e.Seq))
		return held{msg: Message{Seq: e.Seq, Epoch: epoch}, hidden: true, repaired: true}, false
	}
	m, visible := s.newMessageLocked(e.Envelope, env)
	m.Seq, m.Epoch, m.CreatedAt = e.Seq, epoch, e.Time
	if e.ID != "" {
		m.ID = e.ID
	}
	return held{msg: m, hidden: !visible, repaired: true}, true
}

// callCatchUp calls CatchUp under ctx and CatchUpTimeout, turning a panic
// into an error.
func (s *Subscriber) callCatchUp(ctx context.Context, after uint64) (p replay.Page, err error) {
	ctx, cancel := context.WithTimeout(ctx, s.catchUpTO)
	defer cancel()
	defer func() {
		if r := recover(); r != nil {
			p, err = replay.Page{}, fmt.Errorf("tokens: catch-up: panic: %v", r)
		}
	}()
	p, err = s.catchUp(ctx, after)
	if err != nil {
		return replay.Page{}, fmt.Errorf("tokens: catch-up: %w", err)
	}
	return p, nil
}

// position sets the cursor of a subscriber that starts from now: where the
// room stands, from a catch-up after positionAfter, retried with backoff
// until ctx ends.
func (s *Subscriber) position(ctx context.Context) error {
	var last error
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			if err := sleep(ctx, s.backoff(attempt)); err != nil {
				return fmt.Errorf("tokens: subscribe: %w", errors.Join(last, err))
			}
		}
		p, err := s.callCatchUp(ctx, positionAfter)
		if err == nil {
			s.mu.Lock()
			s.epoch, s.last = p.Epoch, p.Head
			s.mu.Unlock()
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("tokens: subscribe: %w", errors.Join(err, ctx.Err()))
		}
		last = err
		s.log.Info("tokens: the first catch-up failed; retrying", zap.Int("attempt", attempt+1), zap.Error(err))
	}
}
