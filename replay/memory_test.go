package replay_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/coursebuilder/realtime-go/internal/replaytest"
	"github.com/coursebuilder/realtime-go/replay"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// memoryTarget runs the suite on the memory log; instances share one log,
// and time is testing/synctest's fake clock.
var memoryTarget = replaytest.Target{
	Open: func(t *testing.T, r *replay.Retention) func() replay.Log {
		l := replay.NewMemory(r)
		t.Cleanup(func() { l.Close() })
		return func() replay.Log { return l }
	},
	Clock: func(t *testing.T, body func(*testing.T, func(time.Time))) {
		synctest.Test(t, func(t *testing.T) {
			body(t, func(at time.Time) { time.Sleep(time.Until(at)) })
		})
	},
}

func TestMemoryConformance(t *testing.T) { replaytest.Run(t, memoryTarget) }

// TestMemoryRestartIsNewEpoch: a new process's log (a new Memory) numbers
// a room from 1 again, under an epoch a client can tell from the old one.
func TestMemoryRestartIsNewEpoch(t *testing.T) {
	ctx := context.Background()
	before, _ := replay.NewMemory(nil).Append(ctx, "room", "a", []byte(`{}`))
	time.Sleep(time.Microsecond) // the next process starts later
	after, _ := replay.NewMemory(nil).Append(ctx, "room", "a", []byte(`{}`))
	if after.Seq != 1 || after.Epoch <= before.Epoch {
		t.Fatalf("restarted log: seq %d epoch %d; want seq 1 and an epoch above %d", after.Seq, after.Epoch, before.Epoch)
	}
}

func ExampleNewMemory() {
	ctx := context.Background()
	log := replay.NewMemory(&replay.Retention{MaxMessages: 2})
	defer log.Close()
	for _, id := range []string{"a", "b", "c", "c"} {
		e, err := log.Append(ctx, "video-1", id, []byte(`{"name":"video.asset.ready"}`))
		if err != nil {
			fmt.Println(err)
			return
		}
		// The epoch is the time the room's numbering began.
		envelope := strings.Replace(string(e.Envelope), strconv.FormatUint(e.Epoch, 10), "<epoch>", 1)
		fmt.Printf("%s seq %d duplicate %v: %s\n", e.ID, e.Seq, e.Duplicate, envelope)
	}
	// A client that saw seq 0 catches up: seq 1 was dropped.
	page, err := log.After(ctx, "video-1", 0, 100)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("head", page.Head, "truncated", page.Truncated, "entries", len(page.Entries))
	// Output:
	// a seq 1 duplicate false: {"name":"video.asset.ready","seq":1,"epoch":<epoch>}
	// b seq 2 duplicate false: {"name":"video.asset.ready","seq":2,"epoch":<epoch>}
	// c seq 3 duplicate false: {"name":"video.asset.ready","seq":3,"epoch":<epoch>}
	// c seq 3 duplicate true: {"name":"video.asset.ready","seq":3,"epoch":<epoch>}
	// head 3 truncated true entries 2
}

// BenchmarkMemoryAppend appends to one room in steady state (retention
// trimming one message per append).
func BenchmarkMemoryAppend(b *testing.B) {
	l := replay.NewMemory(nil)
	defer l.Close()
	ctx := context.Background()
	envelope := []byte(`{"body":{"videoResourceId":"b5f7c1d2"},"requestId":"b5f7c1d2","name":"video.asset.ready"}`)
	ids := make([]string, 4096)
	for i := range ids {
		ids[i] = "id-" + strconv.Itoa(i)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		// ids repeat only after 4096 appends, long after retention (1000)
		// dropped them: every append is a new entry.
		if _, err := l.Append(ctx, "room", ids[i%len(ids)], envelope); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkMemoryAppendParallel appends from every core to rooms of its own.
func BenchmarkMemoryAppendParallel(b *testing.B) {
	l := replay.NewMemory(nil)
	defer l.Close()
	ctx := context.Background()
	envelope := []byte(`{"body":{"videoResourceId":"b5f7c1d2"},"requestId":"b5f7c1d2","name":"video.asset.ready"}`)
	b.ReportAllocs()
	var worker int64
	b.RunParallel(func(pb *testing.PB) {
		room := "room-" + strconv.FormatInt(worker, 10)
		worker++
		i := 0
		for pb.Next() {
			if _, err := l.Append(ctx, room, strconv.Itoa(i), envelope); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
}
