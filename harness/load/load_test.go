package load_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.uber.org/goleak"

	"github.com/coursebuilder/realtime-go/broadcast"
	"github.com/coursebuilder/realtime-go/flags"
	"github.com/coursebuilder/realtime-go/harness/inngestrt"
	"github.com/coursebuilder/realtime-go/harness/partykit"
	"github.com/coursebuilder/realtime-go/legacyparty"
	"github.com/coursebuilder/realtime-go/realtime"
	"github.com/coursebuilder/realtime-go/realtime/inngest"
)

var (
	publishers = flag.Int("load.publishers", 8, "concurrent publishers (one room each)")
	messages   = flag.Int("load.messages", 50, "messages per publisher")
)

func TestMain(m *testing.M) {
	// The providers read INNGEST_*, REALTIME_CHANNEL_SECRET and
	// NEXT_PUBLIC_PARTY_KIT_URL from the environment for every option left
	// empty: keep a developer's or CI's values out of the tests.
	for _, k := range []string{"INNGEST_BASE_URL", "INNGEST_API_BASE_URL", "INNGEST_DEV", "INNGEST_SIGNING_KEY",
		"INNGEST_SIGNING_KEY_FALLBACK", "INNGEST_ENV", "REALTIME_CHANNEL_SECRET", "NEXT_PUBLIC_PARTY_KIT_URL"} {
		_ = os.Unsetenv(k)
	}
	opts := inngestrt.LeakOptions()
	goleak.VerifyTestMain(m, opts...)
}

// failEveryOther answers 503 to every second publish and records the request
// ids of the publishes it let through.
type failEveryOther struct {
	n        atomic.Int64
	mu       sync.Mutex
	accepted map[string]int
}

func (f *failEveryOther) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/realtime/publish" {
			next.ServeHTTP(w, r)
			return
		}
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		if f.n.Add(1)%2 == 0 {
			http.Error(w, "injected outage", http.StatusServiceUnavailable)
			return
		}
		var env struct {
			RequestID string `json:"requestId"`
		}
		_ = json.Unmarshal(body, &env)
		f.mu.Lock()
		f.accepted[env.RequestID]++
		f.mu.Unlock()
		next.ServeHTTP(w, r)
	})
}

func TestShadowLoad(t *testing.T) {
	for _, failing := range []bool{false, true} {
		name := "healthy"
		if failing {
			name = "realtime-fails-half-the-time"
		}
		t.Run(name, func(t *testing.T) { runLoad(t, failing) })
	}
}

func runLoad(t *testing.T, failing bool) {
	// Everything from here on, servers included, must be gone at the end.
	baseline := goleak.IgnoreCurrent()
	_, baseHeap := settle()

	party := partykit.NewTest(t, partykit.Options{})
	fault := &failEveryOther{accepted: map[string]int{}}
	opts := inngestrt.Options{SigningKeys: []string{inngestrt.NewSigningKey()}}
	if failing {
		opts.Wrap = fault.wrap
	}
	inn := inngestrt.NewTest(t, opts)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	lp, err := legacyparty.New(&legacyparty.Options{BaseURL: party.URL()})
	if err != nil {
		t.Fatal(err)
	}
	rt, err := inngest.New(&inngest.Options{
		BaseURL: inn.URL(), SigningKey: opts.SigningKeys[0],
		ChannelSecret: "load-test-channel-secret-0123456789abcdef",
		Retry:         &realtime.RetryPolicy{Attempts: 1}, // failures stay failures
	})
	if err != nil {
		t.Fatal(err)
	}
	b, err := broadcast.New(lp, rt, &broadcast.Options{Resolver: flags.Fixed(flags.Shadow), ShadowBudget: 250 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}

	type roomSubs struct {
		room  string
		party *partykit.Subscription
		inn   *inngestrt.Subscription
	}
	rooms := make([]roomSubs, *publishers)
	for i := range rooms {
		room := "load-" + uuid.NewString()
		ps, err := party.Subscribe(ctx, room)
		if err != nil {
			t.Fatal(err)
		}
		channel, err := rt.Channel(room) // keyed, as the app's tokens grant
		if err != nil {
			t.Fatal(err)
		}
		token, err := inn.Token(ctx, channel, "video.asset.ready")
		if err != nil {
			t.Fatal(err)
		}
		is, err := inn.Subscribe(ctx, token)
		if err != nil {
			t.Fatal(err)
		}
		rooms[i] = roomSubs{room: room, party: ps, inn: is}
	}

	// Publish concurrently, one publisher per room.
	var wg sync.WaitGroup
	latencies := make([][]time.Duration, len(rooms))
	errs := make(chan error, len(rooms))
	for i, rs := range rooms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range *messages {
				msg := realtime.Message{Room: rs.room, Name: "video.asset.ready", RequestID: fmt.Sprintf("%s/%d", rs.room, j), Body: map[string]int{"seq": j}}
				start := time.Now()
				if err := b.Publish(ctx, msg); err != nil {
					errs <- fmt.Errorf("publish %s: %w", msg.RequestID, err)
					return
				}
				latencies[i] = append(latencies[i], time.Since(start))
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err, "(in shadow mode only a PartyKit failure may fail a publish)")
	}
	if err := b.Close(ctx); err != nil {
		t.Fatal(err)
	}

	// Every room's PartyKit subscriber got every message exactly once, in
	// order; the Inngest subscriber got exactly what Inngest accepted.
	for _, rs := range rooms {
		got := receive(t, ctx, *messages, func(ctx context.Context) ([]byte, error) { return rs.party.Next(ctx) })
		want := make([]string, *messages)
		for j := range want {
			want[j] = fmt.Sprintf("%s/%d", rs.room, j)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("PartyKit room %s: got %d messages %v…, want all %d in order", rs.room, len(got), head(got), len(want))
		}
		if err := rs.party.ExpectNone(200 * time.Millisecond); err != nil {
			t.Fatalf("PartyKit room %s: a duplicate arrived: %v", rs.room, err)
		}

		wantInn := want
		if failing {
			wantInn = nil
			fault.mu.Lock()
			for _, id := range want {
				if fault.accepted[id] > 1 {
					t.Fatalf("Inngest accepted %s %d times", id, fault.accepted[id])
				}
				if fault.accepted[id] == 1 {
					wantInn = append(wantInn, id)
				}
			}
			fault.mu.Unlock()
		}
		gotInn := receive(t, ctx, len(wantInn), func(ctx context.Context) ([]byte, error) {
			m, err := rs.inn.NextData(ctx)
			return m.Data, err
		})
		slices.Sort(gotInn)
		slices.Sort(wantInn)
		if !slices.Equal(gotInn, wantInn) {
			t.Fatalf("Inngest room %s: got %d messages, want the %d Inngest accepted", rs.room, len(gotInn), len(wantInn))
		}
		if err := rs.inn.ExpectNoData(200 * time.Millisecond); err != nil {
			t.Fatalf("Inngest room %s: an extra message arrived: %v", rs.room, err)
		}
	}
	if failing {
		fault.mu.Lock()
		n := len(fault.accepted)
		fault.mu.Unlock()
		t.Logf("Inngest accepted %d of %d publishes", n, *publishers**messages)
	}

	var all []time.Duration
	for _, l := range latencies {
		all = append(all, l...)
	}
	slices.Sort(all)
	t.Logf("%d publishes through Broadcast (shadow): p50 %v, p99 %v, max %v", len(all), all[len(all)/2], all[len(all)*99/100], all[len(all)-1])

	for _, rs := range rooms {
		_ = rs.party.Close()
		_ = rs.inn.Close()
	}
	_ = lp.Close()
	_ = rt.Close()
	_ = party.Close()
	_ = inn.Close()

	// Goroutines and memory return to where they started: nothing the
	// library or the servers started outlives Close (the Inngest server's
	// own lingering keepalives aside, see inngestrt.IgnoredGoroutines).
	leakOpts := inngestrt.LeakOptions(baseline)
	var leakErr error
	for range 10 { // goleak retries for about a second; closing sockets may take longer
		if leakErr = goleak.Find(leakOpts...); leakErr == nil {
			break
		}
	}
	if leakErr != nil {
		t.Fatalf("goroutines left after the load: %v", leakErr)
	}
	_, heap := settle()
	t.Logf("heap %d KiB after, %d KiB before", heap>>10, baseHeap>>10)
	if heap > baseHeap+32<<20 {
		t.Fatalf("heap grew by %d KiB", (heap-baseHeap)>>10)
	}
}

func receive(t *testing.T, ctx context.Context, n int, next func(context.Context) ([]byte, error)) []string {
	t.Helper()
	var ids []string
	for range n {
		wctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		b, err := next(wctx)
		cancel()
		if err != nil {
			t.Fatalf("after %d of %d messages: %v", len(ids), n, err)
		}
		m, err := realtime.DecodeEnvelope(b)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, m.RequestID)
	}
	return ids
}

func head(s []string) []string { return s[:min(len(s), 3)] }

func settle() (goroutines int, heap uint64) {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return runtime.NumGoroutine(), ms.HeapAlloc
}
