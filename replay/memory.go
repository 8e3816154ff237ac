package replay

import (
	"container/list"
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/coursebuilder/realtime-go/replay/internal/core"
)

// Memory is the embedded log: every room's history in this process's
// memory, lost when it exits. Use it when one process publishes to a room;
// apps on several instances need a shared log (package redislog). It is
// safe for concurrent use.
type Memory struct {
	maxMessages int
	maxAge      time.Duration

	mu     sync.Mutex
	closed bool
	rooms  map[string]*history
	// byNewest lists the rooms by their newest entry, oldest first, so that
	// rooms gone quiet for MaxAge are forgotten without a scan.
	byNewest list.List
	// lastEpoch is the last epoch handed out, so that each is new.
	lastEpoch uint64
}

// history is one room's: entries in seq order, entries[i].Seq ==
// entries[0].Seq+i, never empty while the room is in the map.
type history struct {
	room    string
	epoch   uint64
	head    uint64
	entries []Entry
	ids     map[string]uint64 // id → seq of the retained entries
	elem    *list.Element
}

// NewMemory returns an empty in-memory log; r nil, and each zero field of
// it, means the defaults of [Retention].
func NewMemory(r *Retention) *Memory {
	var ret Retention
	if r != nil {
		ret = *r
	}
	m := &Memory{rooms: map[string]*history{}}
	m.maxMessages, m.maxAge = core.Retention(ret.MaxMessages, ret.MaxAge)
	return m
}

// Append implements [Log.Append].
func (m *Memory) Append(ctx context.Context, room, id string, envelope []byte) (Entry, error) {
	empty, err := core.CheckAppend(room, id, envelope)
	if err != nil {
		return Entry{}, err
	}
	if err := ctx.Err(); err != nil {
		return Entry{}, fmt.Errorf("replay: append: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return Entry{}, ErrClosed
	}
	now := time.Now()
	r := m.history(room, now)
	if r == nil {
		r = &history{room: room, epoch: m.newEpoch(now), ids: map[string]uint64{}}
		r.elem = m.byNewest.PushBack(r)
		m.rooms[room] = r
	} else if seq, ok := r.ids[id]; ok {
		e := r.entries[seq-r.entries[0].Seq]
		e.Duplicate = true
		return e, nil
	}
	r.head++
	e := Entry{ID: id, Seq: r.head, Epoch: r.epoch, Envelope: core.Sequenced(envelope, empty, r.head, r.epoch), Time: now}
	r.entries = append(r.entries, e)
	r.ids[id] = e.Seq
	if len(r.entries) > m.maxMessages {
		r.drop(len(r.entries) - m.maxMessages)
	}
	m.byNewest.MoveToBack(r.elem)
	return e, nil
}

// After implements [Log.After].
func (m *Memory) After(ctx context.Context, room string, after uint64, limit int) (Page, error) {
	if err := core.CheckAfter(room, limit); err != nil {
		return Page{}, err
	}
	if err := ctx.Err(); err != nil {
		return Page{}, fmt.Errorf("replay: after: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return Page{}, ErrClosed
	}
	r := m.history(room, time.Now())
	if r == nil {
		return Page{}, nil
	}
	p := Page{Head: r.head, Epoch: r.epoch}
	if after < r.head {
		first := r.entries[0].Seq
		i := uint64(0)
		if after >= first {
			i = after + 1 - first
		}
		n := min(uint64(limit), uint64(len(r.entries))-i)
		p.Entries = append([]Entry(nil), r.entries[i:i+n]...)
	}
	var first uint64
	if len(p.Entries) > 0 {
		first = p.Entries[0].Seq
	}
	p.Truncated = core.Truncated(p.Head, after, first)
	return p, nil
}

// Close implements [Log.Close]: it drops every room's history.
func (m *Memory) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	m.rooms = nil
	m.byNewest.Init()
	return nil
}

// history returns room's history without the entries MaxAge old, or nil
// when it has none left. On the way it forgets every room whose newest
// entry is MaxAge old.
func (m *Memory) history(room string, now time.Time) *history {
	for e := m.byNewest.Front(); e != nil; e = m.byNewest.Front() {
		r := e.Value.(*history)
		if now.Sub(r.entries[len(r.entries)-1].Time) < m.maxAge {
			break
		}
		m.byNewest.Remove(e)
		delete(m.rooms, r.room)
	}
	r := m.rooms[room]
	if r == nil {
		return nil
	}
	old := 0
	for old < len(r.entries) && now.Sub(r.entries[old].Time) >= m.maxAge {
		old++
	}
	r.drop(old)
	return r
}

// drop removes the n oldest entries.
func (r *history) drop(n int) {
	for i := range n {
		delete(r.ids, r.entries[i].ID)
		r.entries[i] = Entry{} // let the envelope be collected
	}
	r.entries = r.entries[n:]
}

// newEpoch returns an epoch above every one handed out: the time in
// microseconds, so that a restarted process does not repeat one either.
func (m *Memory) newEpoch(now time.Time) uint64 {
	m.lastEpoch = max(uint64(now.UnixMicro()), m.lastEpoch+1)
	return m.lastEpoch
}

var _ Log = (*Memory)(nil)
