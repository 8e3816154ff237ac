package redislog

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/coursebuilder/realtime-go/internal/replaytest"
	"github.com/coursebuilder/realtime-go/realtime"
	"github.com/coursebuilder/realtime-go/replay"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var prefixes atomic.Int64

// freshPrefix gives each store of a test keys of its own on a shared server.
func freshPrefix() string { return "test" + strconv.FormatInt(prefixes.Add(1), 10) + ":" }

// target runs the suite against srv: each instance is a Log over a client
// of its own, as separate app instances are.
func target(srv *replaytest.Redis, clientOpts *redis.Options) replaytest.Target {
	return replaytest.Target{
		Open: func(t *testing.T, r *replay.Retention) func() replay.Log {
			prefix := freshPrefix()
			return func() replay.Log {
				l := New(srv.Client(clientOpts), &Options{Retention: r, Prefix: prefix})
				t.Cleanup(func() { l.Close() })
				return l
			}
		},
		Clock: func(t *testing.T, body func(*testing.T, func(time.Time))) {
			body(t, replaytest.ServerClock(t, srv.Client(nil)))
		},
	}
}

func TestConformance(t *testing.T) {
	srv := replaytest.StartRedis(t, nil)
	replaytest.Run(t, target(srv, nil))
}

// TestConformanceContextClient: the same with a client that bounds its I/O
// by the context itself, where Log calls it directly.
func TestConformanceContextClient(t *testing.T) {
	srv := replaytest.StartRedis(t, nil)
	replaytest.Run(t, target(srv, &redis.Options{ContextTimeoutEnabled: true}))
}

func appendN(t *testing.T, l *Log, room string, from, to int) []replay.Entry {
	t.Helper()
	var es []replay.Entry
	for i := from; i <= to; i++ {
		e, err := l.Append(context.Background(), room, "id-"+strconv.Itoa(i), []byte(`{"n":`+strconv.Itoa(i)+`}`))
		if err != nil {
			t.Fatalf("Append #%d: %v", i, err)
		}
		if e.Seq != uint64(i) {
			t.Fatalf("Append #%d: seq %d", i, e.Seq)
		}
		es = append(es, e)
	}
	return es
}

// TestRestartAppendOnly: with persistence, a restart loses nothing: the
// history, the counter and the epoch come back.
func TestRestartAppendOnly(t *testing.T) {
	srv := replaytest.StartRedis(t, &replaytest.RedisOptions{AppendOnly: true})
	l := New(srv.Client(nil), nil)
	before := appendN(t, l, "room", 1, 3)
	srv.Restart()
	p, err := l.After(context.Background(), "room", 0, 10)
	if err != nil {
		t.Fatalf("After after the restart: %v", err)
	}
	if p.Head != 3 || p.Epoch != before[0].Epoch || len(p.Entries) != 3 || string(p.Entries[2].Envelope) != fmt.Sprintf(`{"n":3,"seq":3,"epoch":%d}`, before[0].Epoch) {
		t.Fatalf("after the restart: Head %d Epoch %d (was %d), %d entries; want everything back", p.Head, p.Epoch, before[0].Epoch, len(p.Entries))
	}
	next := appendN(t, l, "room", 4, 4)[0]
	if next.Epoch != before[0].Epoch {
		t.Fatalf("the epoch changed across a restart with persistence: %d, was %d", next.Epoch, before[0].Epoch)
	}
	if e, err := l.Append(context.Background(), "room", "id-2", []byte(`{}`)); err != nil || !e.Duplicate || e.Seq != 2 {
		t.Fatalf("an id appended before the restart: %+v, %v; want its duplicate", e, err)
	}
}

// TestRestartWithoutPersistence: an empty Redis numbers the room from 1
// again, under a new epoch, so a client that saw the old seqs can tell.
func TestRestartWithoutPersistence(t *testing.T) {
	srv := replaytest.StartRedis(t, nil)
	l := New(srv.Client(nil), nil)
	before := appendN(t, l, "room", 1, 3)
	srv.Restart()
	p, err := l.After(context.Background(), "room", 3, 10)
	if err != nil {
		t.Fatalf("After after the restart: %v", err)
	}
	if p.Head != 0 || p.Epoch != 0 {
		t.Fatalf("after the restart: Head %d Epoch %d; want an empty room", p.Head, p.Epoch)
	}
	again := appendN(t, l, "room", 1, 1)[0]
	if again.Epoch == before[0].Epoch || again.Epoch == 0 {
		t.Fatalf("seq 1 handed out again under the old epoch %d", before[0].Epoch)
	}
}

// TestServerTime: entry times are the server's clock, read to the
// microsecond, whatever the instance's own clock says.
func TestServerTime(t *testing.T) {
	srv := replaytest.StartRedis(t, nil)
	client := srv.Client(nil)
	l := New(client, nil)
	before, err := client.Time(context.Background()).Result()
	if err != nil {
		t.Fatal(err)
	}
	e := appendN(t, l, "room", 1, 1)[0]
	after, err := client.Time(context.Background()).Result()
	if err != nil {
		t.Fatal(err)
	}
	if e.Time.Before(before.Truncate(time.Microsecond)) || e.Time.After(after) {
		t.Fatalf("entry time %s is not between the server's %s and %s", e.Time, before, after)
	}
}

// TestRedisStopped: with Redis down, a call fails within its context's
// deadline with ErrUnavailable; once Redis is back, retrying under the same
// id appends the message once.
func TestRedisStopped(t *testing.T) {
	srv := replaytest.StartRedis(t, nil)
	l := New(srv.Client(nil), nil)
	appendN(t, l, "room", 1, 1)
	srv.Kill()
	for _, call := range []func(context.Context) error{
		func(ctx context.Context) error {
			_, err := l.Append(ctx, "room", "id-2", []byte(`{}`))
			return err
		},
		func(ctx context.Context) error {
			_, err := l.After(ctx, "room", 0, 10)
			return err
		},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err := call(ctx)
		cancel()
		if !errors.Is(err, realtime.ErrUnavailable) || !strings.Contains(err.Error(), ": redis unavailable: ") {
			t.Fatalf("call with Redis stopped = %v, want ErrUnavailable", err)
		}
	}
	srv.Start()
	// go-redis may keep failing fast for a second after dial errors; the
	// publisher retries under the same id until Redis answers.
	deadline := time.Now().Add(30 * time.Second)
	for {
		e, err := l.Append(context.Background(), "room", "id-2", []byte(`{}`))
		if err == nil {
			if e.Seq != 1 {
				t.Fatalf("Append once Redis is back = seq %d, want 1 (nothing was persisted)", e.Seq)
			}
			break
		}
		if !errors.Is(err, realtime.ErrUnavailable) || time.Now().After(deadline) {
			t.Fatalf("Append once Redis is back: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if p, err := l.After(context.Background(), "room", 0, 10); err != nil || p.Head != 1 || len(p.Entries) != 1 {
		t.Fatalf("After once Redis is back = %+v, %v; want the one message", p, err)
	}
}

// TestRedisSlow: a server that accepts connections and never answers
// (paused) does not hold a call past its context, whether the context has
// a deadline or is canceled, and whether or not the client watches
// contexts itself; the client's own timeout is far longer.
func TestRedisSlow(t *testing.T) {
	for _, watches := range []bool{false, true} {
		for _, ending := range []string{"deadline", "cancel"} {
			t.Run("ContextTimeoutEnabled="+strconv.FormatBool(watches)+"/"+ending, func(t *testing.T) {
				srv := replaytest.StartRedis(t, nil)
				client := srv.Client(&redis.Options{ReadTimeout: 5 * time.Minute, WriteTimeout: 5 * time.Minute, ContextTimeoutEnabled: watches})
				l := New(client, nil)
				srv.Pause()
				defer srv.Resume() // lets the abandoned command end
				ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
				want := context.DeadlineExceeded
				if ending == "cancel" {
					ctx, cancel = context.WithCancel(context.Background())
					want = context.Canceled
					// Cancel once the command is on its way to the server.
					client.AddHook(cancelHook{func() { time.AfterFunc(100*time.Millisecond, cancel) }})
				}
				defer cancel()
				start := time.Now()
				_, err := l.Append(ctx, "room", "id", []byte(`{}`))
				if !errors.Is(err, want) || !errors.Is(err, realtime.ErrUnavailable) {
					t.Fatalf("Append to a paused Redis = %v, want ErrUnavailable and %v", err, want)
				}
				// Far below the client's 5-minute timeout, far above the
				// context's end: no race with the clock.
				if elapsed := time.Since(start); elapsed > time.Minute {
					t.Fatalf("Append returned after %s, not when its context ended", elapsed)
				}
			})
		}
	}
}

// cancelHook calls before before every command the client sends.
type cancelHook struct{ before func() }

func (h cancelHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h cancelHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.before()
		return next(ctx, cmd)
	}
}

func (h cancelHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// TestScriptCacheFlushed: a server that lost its script cache (a restart,
// SCRIPT FLUSH) is sent the script again.
func TestScriptCacheFlushed(t *testing.T) {
	srv := replaytest.StartRedis(t, nil)
	client := srv.Client(nil)
	l := New(client, nil)
	appendN(t, l, "room", 1, 1)
	if err := client.ScriptFlush(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	appendN(t, l, "room", 2, 2)
	if _, err := l.After(context.Background(), "room", 0, 10); err != nil {
		t.Fatal(err)
	}
}

// TestForeignKey: a key of another program where the log keeps a room is
// an error, but not one that says "retry later".
func TestForeignKey(t *testing.T) {
	srv := replaytest.StartRedis(t, nil)
	client := srv.Client(nil)
	l := New(client, nil)
	if err := client.Set(context.Background(), l.keys("room")[1], "x", 0).Err(); err != nil {
		t.Fatal(err)
	}
	_, err := l.Append(context.Background(), "room", "id", []byte(`{}`))
	if err == nil || errors.Is(err, realtime.ErrUnavailable) || !strings.Contains(err.Error(), "WRONGTYPE") {
		t.Fatalf("Append over a foreign key = %v, want a WRONGTYPE error that is not ErrUnavailable", err)
	}
}

// TestClientClosed: a client closed by its owner makes the log closed.
func TestClientClosed(t *testing.T) {
	srv := replaytest.StartRedis(t, nil)
	client := srv.Client(nil)
	l := New(client, nil)
	client.Close()
	if _, err := l.Append(context.Background(), "room", "id", []byte(`{}`)); !errors.Is(err, replay.ErrClosed) || errors.Is(err, realtime.ErrUnavailable) {
		t.Fatalf("Append with a closed client = %v, want ErrClosed", err)
	}
}

// TestKeys: every key of a room carries the room's hash tag, which no
// other room has, whatever bytes the room contains.
func TestKeys(t *testing.T) {
	client := redis.NewClient(&redis.Options{}) // never connects
	defer client.Close()
	l := New(client, nil)
	seen := map[string]string{}
	for _, room := range []string{"r", "r}", "{r}", "r:l", "r:m", "}{", "a{b}c", "\x00", "\xff"} {
		keys := l.keys(room)
		tag := keys[0][strings.IndexByte(keys[0], '{')+1 : strings.IndexByte(keys[0], '}')]
		if !strings.HasPrefix(keys[0], "realtime:{") || keys[0] != "realtime:{"+tag+"}:m" || keys[1] != "realtime:{"+tag+"}:l" {
			t.Fatalf("keys(%q) = %q: not one hash tag", room, keys)
		}
		if other, ok := seen[tag]; ok {
			t.Fatalf("rooms %q and %q share the hash tag %q", room, other, tag)
		}
		seen[tag] = room
	}
}

func TestParseMember(t *testing.T) {
	e, ok := parseMember("12 1700000000123456 3 a b{\"seq\":12,\"epoch\":5}")
	if !ok || e.Seq != 12 || e.ID != "a b" || string(e.Envelope) != `{"seq":12,"epoch":5}` || e.Time.UnixMicro() != 1700000000123456 {
		t.Fatalf("parseMember = %+v, %v", e, ok)
	}
	for _, bad := range []string{"", "12", "12 1 ", "12 1 9 short", "x 1 1 a{}", "0 1 1 a{}", "1 1 -1 a{}"} {
		if _, ok := parseMember(bad); ok {
			t.Errorf("parseMember(%q) accepted", bad)
		}
	}
}
