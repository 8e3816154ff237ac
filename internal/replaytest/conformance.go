// Package replaytest is the conformance suite every backend of package
// replay passes, and a redis-server of a test's own for the Redis backend.
package replaytest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coursebuilder/realtime-go/replay"
)

// Target is a backend under test.
type Target struct {
	// Open returns a function that opens logs with retention r over a new,
	// empty store: every log it returns shares that store, as app instances
	// sharing one Redis do (separate clients), while logs of different Open
	// calls share nothing. The memory backend returns the same log each
	// time. Open closes what it opened when t ends.
	Open func(t *testing.T, r *replay.Retention) func() replay.Log
	// Clock runs body with until, which returns once the clock the log
	// times its entries by has reached at: time.Sleep inside a
	// testing/synctest bubble for the memory backend, a poll of the
	// server's clock for Redis.
	Clock func(t *testing.T, body func(t *testing.T, until func(at time.Time)))
}

// Run runs the suite against target: seq from 1 by one, the stored
// envelope, duplicates, isolated rooms, pagination, retention by count and
// by age, quiet rooms forgotten under a new epoch, concurrent publishers on
// several instances, invalid arguments, Close and a canceled context.
func Run(t *testing.T, target Target) {
	tests := []struct {
		name string
		fn   func(*testing.T, Target)
	}{
		{"SeqStartsAtOneAndRises", testSeq},
		{"StoredEnvelope", testStoredEnvelope},
		{"Duplicate", testDuplicate},
		{"RoomsIsolated", testRoomsIsolated},
		{"Pagination", testPagination},
		{"RetentionByCount", testRetentionByCount},
		{"RetentionByAge", testRetentionByAge},
		{"QuietRoomForgotten", testQuietRoomForgotten},
		{"ConcurrentPublishers", testConcurrent},
		{"InvalidArguments", testInvalid},
		{"Close", testClose},
		{"CanceledContext", testCanceled},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, target) })
	}
}

func open(t *testing.T, target Target, r *replay.Retention) replay.Log {
	return target.Open(t, r)()
}

func mustAppend(t *testing.T, l replay.Log, room, id, envelope string) replay.Entry {
	t.Helper()
	e, err := l.Append(context.Background(), room, id, []byte(envelope))
	if err != nil {
		t.Fatalf("Append(%q, %q, %s): %v", room, id, envelope, err)
	}
	return e
}

func mustAfter(t *testing.T, l replay.Log, room string, after uint64, limit int) replay.Page {
	t.Helper()
	p, err := l.After(context.Background(), room, after, limit)
	if err != nil {
		t.Fatalf("After(%q, %d, %d): %v", room, after, limit, err)
	}
	return p
}

// envelope is a message like the ones realtime encodes.
func envelope(room, id string) string {
	return `{"body":{"room":` + jsonString(room) + `,"id":` + jsonString(id) + `},"requestId":` + jsonString(id) + `,"name":"test"}`
}

func jsonString(s string) string {
	b, _ := json.Marshal(s) // a string always encodes
	return string(b)
}

// stored is what the log stores for envelope(room, id) at seq of epoch.
func stored(room, id string, seq, epoch uint64) string {
	e := envelope(room, id)
	return e[:len(e)-1] + `,"seq":` + strconv.FormatUint(seq, 10) + `,"epoch":` + strconv.FormatUint(epoch, 10) + "}"
}

func sameEntry(a, b replay.Entry) bool {
	return a.ID == b.ID && a.Seq == b.Seq && a.Epoch == b.Epoch && bytes.Equal(a.Envelope, b.Envelope) && a.Time.Equal(b.Time)
}

func describe(e replay.Entry) string {
	return fmt.Sprintf("{ID %q Seq %d Epoch %d Time %s Duplicate %v Envelope %s}", e.ID, e.Seq, e.Epoch, e.Time.Format(time.RFC3339Nano), e.Duplicate, e.Envelope)
}

// checkPage fails unless p holds exactly want, in order.
func checkPage(t *testing.T, p replay.Page, want []replay.Entry) {
	t.Helper()
	if len(p.Entries) != len(want) {
		t.Fatalf("page has %d entries (seqs %v), want %d (seqs %v)", len(p.Entries), seqs(p.Entries), len(want), seqs(want))
	}
	for i := range want {
		if p.Entries[i].Duplicate || !sameEntry(p.Entries[i], want[i]) {
			t.Fatalf("entry %d of the page is %s, want %s", i, describe(p.Entries[i]), describe(want[i]))
		}
	}
}

func seqs(es []replay.Entry) []uint64 {
	var s []uint64
	for _, e := range es {
		s = append(s, e.Seq)
	}
	return s
}

func testSeq(t *testing.T, target Target) {
	l := open(t, target, nil)
	p := mustAfter(t, l, "room", 0, 10)
	if p.Head != 0 || p.Epoch != 0 || len(p.Entries) != 0 || p.Truncated {
		t.Fatalf("After on a room never appended to = %+v, want the zero Page", p)
	}
	var want []replay.Entry
	for i := range 5 {
		id := "id-" + strconv.Itoa(i)
		e := mustAppend(t, l, "room", id, envelope("room", id))
		if e.Seq != uint64(i+1) || e.ID != id || e.Duplicate || string(e.Envelope) != stored("room", id, e.Seq, e.Epoch) {
			t.Fatalf("Append #%d = %s, want seq %d, id %q, envelope %s", i+1, describe(e), i+1, id, stored("room", id, uint64(i+1), e.Epoch))
		}
		if e.Epoch == 0 || i > 0 && e.Epoch != want[0].Epoch {
			t.Fatalf("Append #%d: epoch %d; want non-zero and the first entry's (%v)", i+1, e.Epoch, seqs(want))
		}
		if e.Time.IsZero() || i > 0 && e.Time.Before(want[i-1].Time) {
			t.Fatalf("Append #%d: time %s is zero or before the previous entry's", i+1, e.Time)
		}
		want = append(want, e)
	}
	p = mustAfter(t, l, "room", 0, 10)
	checkPage(t, p, want)
	if p.Head != 5 || p.Epoch != want[0].Epoch || p.Truncated {
		t.Fatalf("After(0): Head %d Epoch %d Truncated %v; want 5, %d, false", p.Head, p.Epoch, p.Truncated, want[0].Epoch)
	}
}

// testStoredEnvelope: seq and epoch go in before the final '}', whatever
// the object looks like, and the stored bytes are the ones Append returned.
func testStoredEnvelope(t *testing.T, target Target) {
	l := open(t, target, nil)
	cases := []struct{ in, want string }{ // EPOCH stands for the room's epoch
		{`{}`, `{"seq":1,"epoch":EPOCH}`},
		{`{ }`, `{ "seq":2,"epoch":EPOCH}`},
		{`{"a":{"seq":0,"epoch":0},"b":"\"seq\":9"}`, `{"a":{"seq":0,"epoch":0},"b":"\"seq\":9","seq":3,"epoch":EPOCH}`},
		// Bytes that are not UTF-8 pass through as they are (encoding/json
		// accepts them too); a NUL must be escaped in JSON.
		{"{\"bin\":\"\\u0000\xff\xfe\u00e9\"}", "{\"bin\":\"\\u0000\xff\xfe\u00e9\",\"seq\":4,\"epoch\":EPOCH}"},
	}
	big := `{"body":"` + strings.Repeat("x", 512<<10) + `"}`
	cases = append(cases, struct{ in, want string }{big, big[:len(big)-1] + `,"seq":5,"epoch":EPOCH}`})
	var want []replay.Entry
	for i, c := range cases {
		e := mustAppend(t, l, "room", "id-"+strconv.Itoa(i), c.in)
		if w := strings.Replace(c.want, "EPOCH", strconv.FormatUint(e.Epoch, 10), 1); string(e.Envelope) != w {
			t.Fatalf("Append(%.60q): envelope %.80q, want %.80q", c.in, e.Envelope, w)
		}
		want = append(want, e)
	}
	checkPage(t, mustAfter(t, l, "room", 0, 10), want)
}

func testDuplicate(t *testing.T, target Target) {
	l := open(t, target, nil)
	first := mustAppend(t, l, "room", "a", `{"n":1}`)
	dup := mustAppend(t, l, "room", "a", `{"n":2}`)
	if !dup.Duplicate || !sameEntry(dup, first) {
		t.Fatalf("Append of id a again = %s, want the first entry %s with Duplicate set", describe(dup), describe(first))
	}
	if first.Duplicate {
		t.Fatalf("the first Append has Duplicate set")
	}
	next := mustAppend(t, l, "room", "b", `{"n":3}`)
	if next.Seq != 2 || next.Duplicate {
		t.Fatalf("Append after a duplicate = %s, want seq 2: a duplicate takes no seq", describe(next))
	}
	checkPage(t, mustAfter(t, l, "room", 0, 10), []replay.Entry{first, next})
	// An id is per room.
	other := mustAppend(t, l, "other", "a", `{"n":4}`)
	if other.Duplicate || other.Seq != 1 {
		t.Fatalf("id a in another room = %s, want a new entry at seq 1", describe(other))
	}
}

// testRoomsIsolated uses rooms that a naive key encoding would merge:
// separators, hash-tag braces, NUL, case, Unicode normalisation, the
// longest room.
func testRoomsIsolated(t *testing.T, target Target) {
	l := open(t, target, nil)
	rooms := []string{
		"r", "r:l", "r:m", "r:log", "r:seq", "r}", "{r}", "r{", "{r", "r\x00", "r\x00x", "R", "r ", " r",
		"\u00e9", "e\u0301", "a:b:c", "a:b", "a", "{}", ":", "\xff\xfe", strings.Repeat("\u00e9", 128),
		strings.Repeat("z", 256),
	}
	entries := map[string][]replay.Entry{}
	for round := range 2 {
		for _, room := range rooms {
			id := "id-" + strconv.Itoa(round) // the same ids in every room
			e := mustAppend(t, l, room, id, envelope(room, id))
			if e.Seq != uint64(round+1) || e.Duplicate {
				t.Fatalf("room %q round %d: %s, want seq %d: another room's appends leaked in", room, round, describe(e), round+1)
			}
			entries[room] = append(entries[room], e)
		}
	}
	for _, room := range rooms {
		p := mustAfter(t, l, room, 0, 100)
		checkPage(t, p, entries[room])
		if p.Head != 2 {
			t.Fatalf("room %q: Head %d, want 2", room, p.Head)
		}
		for _, e := range p.Entries {
			if !strings.Contains(string(e.Envelope), `"room":`+jsonString(room)+",") {
				t.Fatalf("room %q holds %s", room, e.Envelope)
			}
		}
	}
}

func testPagination(t *testing.T, target Target) {
	l := open(t, target, nil)
	var all []replay.Entry
	for i := range 25 {
		id := "id-" + strconv.Itoa(i)
		all = append(all, mustAppend(t, l, "room", id, envelope("room", id)))
	}
	for _, c := range []struct {
		after      uint64
		limit      int
		start, end int // want all[start:end]
	}{
		{0, 10, 0, 10}, {10, 10, 10, 20}, {20, 10, 20, 25}, {25, 10, 25, 25},
		{3, 1, 3, 4}, {24, 5, 24, 25}, {0, 1 << 30, 0, 25}, {100, 10, 25, 25},
		{^uint64(0), 10, 25, 25},
	} {
		p := mustAfter(t, l, "room", c.after, c.limit)
		checkPage(t, p, all[c.start:c.end])
		if p.Head != 25 || p.Truncated || p.Epoch != all[0].Epoch {
			t.Fatalf("After(%d, %d): Head %d Truncated %v Epoch %d; want 25, false, %d", c.after, c.limit, p.Head, p.Truncated, p.Epoch, all[0].Epoch)
		}
	}
}

func testRetentionByCount(t *testing.T, target Target) {
	l := open(t, target, &replay.Retention{MaxMessages: 5})
	var all []replay.Entry
	for i := range 12 {
		id := "id-" + strconv.Itoa(i)
		all = append(all, mustAppend(t, l, "room", id, envelope("room", id)))
	}
	kept := all[7:] // seqs 8..12
	for _, c := range []struct {
		after     uint64
		want      []replay.Entry
		truncated bool
	}{
		{0, kept, true}, {6, kept, true}, {7, kept, false}, {9, all[9:], false}, {12, nil, false},
	} {
		p := mustAfter(t, l, "room", c.after, 100)
		checkPage(t, p, c.want)
		if p.Head != 12 || p.Truncated != c.truncated {
			t.Fatalf("After(%d): Head %d Truncated %v; want 12, %v", c.after, p.Head, p.Truncated, c.truncated)
		}
	}
	// A retained id is a duplicate; a dropped one is appended anew.
	if e := mustAppend(t, l, "room", "id-9", `{}`); !e.Duplicate || !sameEntry(e, all[9]) {
		t.Fatalf("retained id again = %s, want the duplicate of %s", describe(e), describe(all[9]))
	}
	e := mustAppend(t, l, "room", "id-0", envelope("room", "id-0"))
	if e.Duplicate || e.Seq != 13 {
		t.Fatalf("dropped id again = %s, want a new entry at seq 13", describe(e))
	}
	checkPage(t, mustAfter(t, l, "room", 0, 100), append(all[8:], e))
}

// testRetentionByAge: an entry MaxAge old is dropped while the room lives
// on. Against a real clock the second entry may age out too before the
// check; that run proves nothing and is repeated with a longer MaxAge.
func testRetentionByAge(t *testing.T, target Target) {
	target.Clock(t, func(t *testing.T, until func(time.Time)) {
		for age := 500 * time.Millisecond; age <= 16*time.Second; age *= 2 {
			if ageOnce(t, target, age, until) {
				return
			}
			t.Logf("MaxAge %s: the room aged out before it was read; trying a longer MaxAge", age)
		}
		t.Fatalf("the log never kept an entry younger than MaxAge")
	})
}

func ageOnce(t *testing.T, target Target, age time.Duration, until func(time.Time)) (conclusive bool) {
	l := open(t, target, &replay.Retention{MaxAge: age})
	e1 := mustAppend(t, l, "room", "e1", envelope("room", "e1"))
	until(e1.Time.Add(age / 2))
	e2 := mustAppend(t, l, "room", "e2", envelope("room", "e2"))
	until(e1.Time.Add(age))
	p := mustAfter(t, l, "room", 0, 10)
	if p.Head == 0 {
		return false // e2 aged out as well
	}
	checkPage(t, p, []replay.Entry{e2})
	if p.Head != 2 || !p.Truncated || p.Epoch != e1.Epoch {
		t.Fatalf("After(0) once e1 is MaxAge old: Head %d Truncated %v Epoch %d; want 2, true, %d", p.Head, p.Truncated, p.Epoch, e1.Epoch)
	}
	e := mustAppend(t, l, "room", "e1", envelope("room", "e1"))
	if e.Duplicate {
		t.Fatalf("the id of an entry dropped by age was taken for a duplicate: %s", describe(e))
	}
	if e.Seq != 3 && (e.Seq != 1 || e.Epoch == e1.Epoch) {
		t.Fatalf("Append after age trim = %s, want seq 3 (or seq 1 of a new epoch if e2 aged out meanwhile)", describe(e))
	}
	return true
}

// testQuietRoomForgotten: once a room's newest entry is MaxAge old the
// room is gone, and its next message starts a new epoch at seq 1.
func testQuietRoomForgotten(t *testing.T, target Target) {
	target.Clock(t, func(t *testing.T, until func(time.Time)) {
		const age = 300 * time.Millisecond
		l := open(t, target, &replay.Retention{MaxAge: age})
		mustAppend(t, l, "room", "e1", envelope("room", "e1"))
		e2 := mustAppend(t, l, "room", "e2", envelope("room", "e2"))
		until(e2.Time.Add(age))
		p := mustAfter(t, l, "room", 1, 10)
		if p.Head != 0 || p.Epoch != 0 || len(p.Entries) != 0 || p.Truncated {
			t.Fatalf("After on a room quiet for MaxAge = Head %d Epoch %d %d entries Truncated %v; want the zero Page", p.Head, p.Epoch, len(p.Entries), p.Truncated)
		}
		e := mustAppend(t, l, "room", "e2", envelope("room", "e2"))
		if e.Duplicate || e.Seq != 1 || e.Epoch == e2.Epoch || e.Epoch == 0 {
			t.Fatalf("Append to a forgotten room = %s, want seq 1 of a new epoch (old %d)", describe(e), e2.Epoch)
		}
		checkPage(t, mustAfter(t, l, "room", 0, 10), []replay.Entry{e})
	})
}

// testConcurrent: several instances append to one room at once, some under
// the same ids: no seq twice, none skipped, every id once.
func testConcurrent(t *testing.T, target Target) {
	const instances, each = 4, 50
	instance := target.Open(t, nil)
	logs := make([]replay.Log, instances)
	for i := range logs {
		logs[i] = instance()
	}
	var (
		mu  sync.Mutex
		got = map[string][]replay.Entry{} // id → what each Append returned
		wg  sync.WaitGroup
		// start makes the instances contend rather than run one after another.
		start = make(chan struct{})
	)
	errs := make(chan error, instances)
	for i, l := range logs {
		wg.Go(func() {
			<-start
			for j := range each {
				// Even ids are shared by two instances, as a retried step's.
				id := fmt.Sprintf("i%d-%d", i, j)
				if j%2 == 0 {
					id = fmt.Sprintf("shared%d-%d", i/2, j)
				}
				e, err := l.Append(context.Background(), "room", id, []byte(envelope("room", id)))
				if err != nil {
					errs <- fmt.Errorf("instance %d: %w", i, err)
					return
				}
				mu.Lock()
				got[id] = append(got[id], e)
				mu.Unlock()
			}
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	bySeq := map[uint64]replay.Entry{}
	for id, es := range got {
		fresh := 0
		for _, e := range es {
			if !e.Duplicate {
				fresh++
			}
			if e.ID != id || e.Seq != es[0].Seq || !sameEntry(e, es[0]) {
				t.Fatalf("id %q: Appends returned different entries: %s and %s", id, describe(es[0]), describe(e))
			}
		}
		if fresh != 1 {
			t.Fatalf("id %q was appended %d times, want once (%d calls)", id, fresh, len(es))
		}
		if prev, ok := bySeq[es[0].Seq]; ok {
			t.Fatalf("seq %d handed out twice: ids %q and %q", es[0].Seq, prev.ID, id)
		}
		bySeq[es[0].Seq] = es[0]
	}
	n := len(got) // distinct ids
	want := make([]replay.Entry, n)
	for seq := 1; seq <= n; seq++ {
		e, ok := bySeq[uint64(seq)]
		if !ok {
			t.Fatalf("seq %d skipped (%d ids appended)", seq, n)
		}
		want[seq-1] = e
	}
	for i, l := range logs {
		p := mustAfter(t, l, "room", 0, 1000)
		if p.Head != uint64(n) {
			t.Fatalf("instance %d: Head %d, want %d", i, p.Head, n)
		}
		checkPage(t, p, want)
	}
}

func testInvalid(t *testing.T, target Target) {
	l := open(t, target, nil)
	ctx := context.Background()
	for _, c := range []struct {
		room, id, envelope, what string
	}{
		{"", "id", `{}`, "room"},
		{"room", "", `{}`, "id"},
		{strings.Repeat("r", 257), "id", `{}`, "room"},
		{"room", strings.Repeat("i", 257), `{}`, "id"},
		{"room", "id", ``, "envelope"},
		{"room", "id", `[]`, "envelope"},
		{"room", "id", `{"a":1`, "envelope"},
		{"room", "id", `{"a":1} `, "envelope"},
		{"room", "id", `{"a":1,"seq":2}`, "envelope"},
		{"room", "id", `{"\u0073eq":2}`, "envelope"},
		{"room", "id", `{"epoch":2}`, "envelope"},
		{"room", "id", `{"a":1,"\u0065poch":2}`, "envelope"},
		{"room", "id", `{"a":nul}`, "envelope"},
	} {
		_, err := l.Append(ctx, c.room, c.id, []byte(c.envelope))
		if !errors.Is(err, replay.ErrInvalid) || !strings.Contains(err.Error(), c.what) {
			t.Errorf("Append(%.12q, %.12q, %s) = %v; want ErrInvalid naming the %s", c.room, c.id, c.envelope, err, c.what)
		}
	}
	for _, c := range []struct {
		room  string
		limit int
	}{{"", 10}, {"room", 0}, {"room", -1}, {strings.Repeat("r", 257), 1}} {
		if _, err := l.After(ctx, c.room, 0, c.limit); !errors.Is(err, replay.ErrInvalid) {
			t.Errorf("After(%.12q, 0, %d) = %v; want ErrInvalid", c.room, c.limit, err)
		}
	}
	if p := mustAfter(t, l, "room", 0, 10); p.Head != 0 {
		t.Fatalf("an invalid Append appended: Head %d", p.Head)
	}
}

func testClose(t *testing.T, target Target) {
	l := open(t, target, nil)
	mustAppend(t, l, "room", "a", `{}`)
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := l.Append(context.Background(), "room", "b", []byte(`{}`)); !errors.Is(err, replay.ErrClosed) {
		t.Errorf("Append after Close = %v, want ErrClosed", err)
	}
	if _, err := l.After(context.Background(), "room", 0, 10); !errors.Is(err, replay.ErrClosed) {
		t.Errorf("After after Close = %v, want ErrClosed", err)
	}
	if err := l.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func testCanceled(t *testing.T, target Target) {
	l := open(t, target, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := l.Append(ctx, "room", "a", []byte(`{}`)); !errors.Is(err, context.Canceled) {
		t.Errorf("Append with a canceled context = %v, want context.Canceled", err)
	}
	if _, err := l.After(ctx, "room", 0, 10); !errors.Is(err, context.Canceled) {
		t.Errorf("After with a canceled context = %v, want context.Canceled", err)
	}
	if p := mustAfter(t, l, "room", 0, 10); p.Head != 0 {
		t.Fatalf("a canceled Append appended: Head %d", p.Head)
	}
}
