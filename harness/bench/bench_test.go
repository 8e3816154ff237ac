package bench_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/coursebuilder/realtime-go/broadcast"
	"github.com/coursebuilder/realtime-go/flags"
	"github.com/coursebuilder/realtime-go/harness/inngestrt"
	"github.com/coursebuilder/realtime-go/harness/partykit"
	"github.com/coursebuilder/realtime-go/legacyparty"
	"github.com/coursebuilder/realtime-go/realtime"
)

// shared servers, started once per benchmark binary.
var (
	once    sync.Once
	inn     *inngestrt.Server
	innKey  string
	party   *partykit.Server
	initErr error
)

func servers(b *testing.B, needParty bool) {
	b.Helper()
	once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		innKey = inngestrt.NewSigningKey()
		inn, initErr = inngestrt.Start(ctx, inngestrt.Options{SigningKeys: []string{innKey}})
		if initErr != nil || partykit.Available("") != nil {
			return
		}
		party, initErr = partykit.Start(ctx, partykit.Options{})
	})
	if initErr != nil {
		b.Fatal(initErr)
	}
	if needParty && party == nil {
		b.Skip("PartyKit dev server not installed: npm ci --prefix harness/partykit/server")
	}
}

func TestMain(m *testing.M) {
	code := m.Run()
	if party != nil {
		_ = party.Close()
	}
	if inn != nil {
		_ = inn.Close()
	}
	os.Exit(code)
}

func message(room string, i int) realtime.Message {
	return realtime.Message{Room: room, Name: "video.asset.ready", RequestID: fmt.Sprint("req_", i),
		Body: map[string]any{"id": room, "status": "ready", "muxPlaybackId": "pb_123", "seq": i}}
}

func inngestProvider(b *testing.B) *realtime.Inngest {
	p, err := realtime.NewInngest(&realtime.InngestOptions{BaseURL: inn.URL(), SigningKey: innKey,
		LookupEnv: func(string) (string, bool) { return "", false }})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = p.Close() })
	return p
}

// bare posts pre-encoded bytes with nothing but an http.Client.
type bare struct {
	client *http.Client
	url    func(room string) string
	header http.Header
}

func (c bare) post(room string, body []byte) error {
	req, err := http.NewRequest(http.MethodPost, c.url(room), bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header = c.header
	resp, err := c.client.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode >= 300 {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}

func bareInngest(keepAlive bool) bare {
	hashed, _ := inngestrt.HashSigningKey(innKey)
	tr := &http.Transport{MaxIdleConnsPerHost: 64, DisableKeepAlives: !keepAlive}
	return bare{
		client: &http.Client{Transport: tr},
		url: func(room string) string {
			return inn.URL() + "/v1/realtime/publish?channel=" + room + "&topic=video.asset.ready"
		},
		header: http.Header{"Authorization": {"Bearer " + hashed}, "Content-Type": {"application/json"}},
	}
}

func bareParty() bare {
	return bare{
		client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}},
		url:    func(room string) string { return party.URL() + "/party/" + room },
		header: http.Header{"Content-Type": {"application/json"}},
	}
}

// BenchmarkThroughput publishes from 8 concurrent goroutines to the real
// Inngest endpoint: the provider against a bare keep-alive client and a bare
// client that opens a connection per publish, posting the same bytes.
func BenchmarkThroughput(b *testing.B) {
	servers(b, false)
	room := "bench-" + uuid.NewString()
	body, _ := message(room, 0).Encode()
	run := func(b *testing.B, publish func() error) {
		b.SetParallelism(max(1, 8/testingGOMAXPROCS()))
		b.ReportAllocs()
		start := time.Now()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := publish(); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "publishes/s")
	}
	b.Run("provider", func(b *testing.B) {
		p := inngestProvider(b)
		msg := message(room, 0)
		run(b, func() error { return p.Publish(context.Background(), msg) })
	})
	b.Run("bare-keepalive", func(b *testing.B) {
		c := bareInngest(true)
		run(b, func() error { return c.post(room, body) })
	})
	b.Run("bare-newconn", func(b *testing.B) {
		c := bareInngest(false)
		run(b, func() error { return c.post(room, body) })
	})
}

// latency records publish-to-delivery times and reports p50 and p99.
type latency []time.Duration

func (l latency) report(b *testing.B) {
	if len(l) == 0 {
		return
	}
	slices.Sort(l)
	b.ReportMetric(float64(l[len(l)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(l[len(l)*99/100].Microseconds()), "p99-µs")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkDeliveryLatency publishes one message at a time and waits for a
// websocket subscriber of that transport to receive it: through the library's
// providers and through bare clients posting the same bytes, on Inngest
// Realtime and on PartyKit. Run with -benchtime 2000x for 2000 messages.
func BenchmarkDeliveryLatency(b *testing.B) {
	servers(b, false)
	ctx := context.Background()

	// measure publishes one message at a time to room and waits for next
	// to return its delivery.
	measure := func(b *testing.B, room string, next func(context.Context) error, publish func(room string, i int) error) {
		var lat latency
		i := 0
		for b.Loop() {
			start := time.Now()
			if err := publish(room, i); err != nil {
				b.Fatal(err)
			}
			wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			err := next(wctx)
			cancel()
			if err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(start))
			i++
		}
		lat.report(b)
	}
	inngestCase := func(b *testing.B, publish func(room string, i int) error) {
		room := "lat-" + uuid.NewString()
		token, err := inn.Token(ctx, room, "video.asset.ready")
		if err != nil {
			b.Fatal(err)
		}
		sub, err := inn.Subscribe(ctx, token)
		if err != nil {
			b.Fatal(err)
		}
		defer sub.Close()
		measure(b, room, func(ctx context.Context) error { _, err := sub.NextData(ctx); return err }, publish)
	}
	partyCase := func(b *testing.B, publish func(room string, i int) error) {
		servers(b, true)
		room := "lat-" + uuid.NewString()
		sub, err := party.Subscribe(ctx, room)
		if err != nil {
			b.Fatal(err)
		}
		defer sub.Close()
		measure(b, room, func(ctx context.Context) error { _, err := sub.Next(ctx); return err }, publish)
	}

	b.Run("inngest/provider", func(b *testing.B) {
		p := inngestProvider(b)
		inngestCase(b, func(room string, i int) error { return p.Publish(ctx, message(room, i)) })
	})
	b.Run("inngest/bare", func(b *testing.B) {
		c := bareInngest(true)
		inngestCase(b, func(room string, i int) error {
			body, _ := message(room, i).Encode()
			return c.post(room, body)
		})
	})
	b.Run("partykit/provider", func(b *testing.B) {
		servers(b, true)
		p, err := legacyparty.New(&legacyparty.Options{BaseURL: party.URL(), LookupEnv: func(string) (string, bool) { return "", false }})
		if err != nil {
			b.Fatal(err)
		}
		defer p.Close()
		partyCase(b, func(room string, i int) error { return p.Publish(ctx, message(room, i)) })
	})
	b.Run("partykit/bare", func(b *testing.B) {
		servers(b, true)
		c := bareParty()
		partyCase(b, func(room string, i int) error {
			body, _ := message(room, i).Encode()
			return c.post(room, body)
		})
	})
}

// BenchmarkShadowEndToEnd publishes through Broadcast in shadow mode to both
// real servers and reports the call's latency; compare with the single
// transports of BenchmarkDeliveryLatency's publish legs. The hang case
// points the realtime side at a server that never answers: every call is
// then bounded by the 50ms shadow budget.
func BenchmarkShadowEndToEnd(b *testing.B) {
	servers(b, true)
	ctx := context.Background()
	party, err := legacyparty.New(&legacyparty.Options{BaseURL: party.URL(), LookupEnv: func(string) (string, bool) { return "", false }})
	if err != nil {
		b.Fatal(err)
	}
	defer party.Close()
	cases := map[string]realtime.Provider{"healthy": inngestProvider(b), "inngest-hangs": hangingInngest(b)}
	for _, name := range []string{"healthy", "inngest-hangs"} {
		b.Run(name, func(b *testing.B) {
			br := broadcast.New(party, cases[name], &broadcast.Options{
				Resolver: flags.Fixed(flags.Shadow), ShadowBudget: 50 * time.Millisecond, ShadowTimeout: 200 * time.Millisecond,
			})
			defer br.Close(ctx)
			room := "shadow-" + uuid.NewString()
			var lat latency
			i := 0
			for b.Loop() {
				start := time.Now()
				if err := br.Publish(ctx, message(room, i)); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(start))
				i++
			}
			lat.report(b)
		})
	}
}

func hangingInngest(b *testing.B) realtime.Provider {
	done := make(chan struct{})
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case <-r.Context().Done():
		case <-done:
		}
	})}
	ln, err := newLoopbackListener()
	if err != nil {
		b.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	b.Cleanup(func() { close(done); _ = srv.Close() })
	p, err := realtime.NewInngest(&realtime.InngestOptions{BaseURL: "http://" + ln.Addr().String(), SigningKey: innKey,
		LookupEnv: func(string) (string, bool) { return "", false }})
	if err != nil {
		b.Fatal(err)
	}
	return p
}
