package bench_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/coursebuilder/realtime-go/broadcast"
	"github.com/coursebuilder/realtime-go/flags"
	"github.com/coursebuilder/realtime-go/harness/inngestrt"
	"github.com/coursebuilder/realtime-go/harness/partykit"
	"github.com/coursebuilder/realtime-go/legacyparty"
	"github.com/coursebuilder/realtime-go/realtime"
	"github.com/coursebuilder/realtime-go/realtime/inngest"
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
	// The providers read INNGEST_*, REALTIME_CHANNEL_SECRET and
	// NEXT_PUBLIC_PARTY_KIT_URL from the environment for every option left
	// empty: keep a developer's or CI's values out of the tests.
	for _, k := range []string{"INNGEST_BASE_URL", "INNGEST_API_BASE_URL", "INNGEST_DEV", "INNGEST_SIGNING_KEY",
		"INNGEST_SIGNING_KEY_FALLBACK", "INNGEST_ENV", "REALTIME_CHANNEL_SECRET", "NEXT_PUBLIC_PARTY_KIT_URL"} {
		_ = os.Unsetenv(k)
	}
	code := m.Run()
	if party != nil {
		_ = party.Close()
	}
	if inn != nil {
		_ = inn.Close()
	}
	os.Exit(code)
}

// message is the benchmarks' message number i to room. Its ID is given, so
// that the provider sends the same bytes as the bare clients that post its
// Encode.
func message(room string, i int) realtime.Message {
	return realtime.Message{Room: room, Name: "video.asset.ready", RequestID: fmt.Sprint("req_", i),
		Body: map[string]any{"id": room, "status": "ready", "muxPlaybackId": "pb_123", "seq": i}, ID: fmt.Sprint("msg_", i)}
}

func inngestProvider(b *testing.B) *inngest.Provider {
	p, err := inngest.New(&inngest.Options{BaseURL: inn.URL(), SigningKey: innKey,
		// Readable channels, so that subscriptions by room (inn.Token)
		// and the bare client's publishes meet the provider's.
		Mapping: inngest.Mapping{Unkeyed: true}})
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

// publisher is one way of publishing a message, compared with the others.
type publisher struct {
	name    string
	publish func(room string, i int) error
}

// median returns the middle of xs, which it sorts.
func median(xs []float64) float64 {
	slices.Sort(xs)
	return xs[len(xs)/2]
}

// concurrently makes n publishes from workers goroutines and returns the
// rate in publishes per second.
func concurrently(b *testing.B, n, workers int, room string, publish func(room string, i int) error) float64 {
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range workers {
		wg.Go(func() {
			for i := next.Add(1); i <= int64(n); i = next.Add(1) {
				if err := publish(room, int(i)); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	return float64(n) / time.Since(start).Seconds()
}

// throughputRounds is how many turns each client takes in
// BenchmarkThroughput; its figures are the medians of the rounds.
const throughputRounds = 9

// BenchmarkThroughput publishes from 8 concurrent goroutines to the real
// Inngest endpoint with three clients posting the same bytes: the provider,
// a bare keep-alive http.Client, and a bare client that opens a connection
// for every publish. The clients take turns, in throughputRounds rounds of
// b.N/throughputRounds publishes each after a warm-up round, so that drift
// in the machine's speed touches them alike. It reports each client's
// median rate and the median over the rounds of the provider's rate
// relative to each bare client in the same round.
func BenchmarkThroughput(b *testing.B) {
	servers(b, false)
	room := "bench-" + uuid.NewString()
	msg := message(room, 0)
	body, _ := msg.Encode() // the provider encodes msg on every publish; the bare clients post these bytes
	p := inngestProvider(b)
	keepAlive, newConn := bareInngest(true), bareInngest(false)
	defer keepAlive.client.CloseIdleConnections()
	clients := []publisher{
		{"provider", func(string, int) error { return p.Publish(context.Background(), msg) }},
		{"keepalive", func(room string, _ int) error { return keepAlive.post(room, body) }},
		{"newconn", func(room string, _ int) error { return newConn.post(room, body) }},
	}
	per := max(b.N/throughputRounds, 50)
	rates := make([][]float64, len(clients))
	var vsKeepAlive, vsNewConn []float64
	b.ResetTimer()
	for round := -1; round < throughputRounds; round++ {
		rate := make([]float64, len(clients))
		for k := range clients {
			c := (round + 1 + k) % len(clients) // a different client goes first each round
			rate[c] = concurrently(b, per, 8, room, clients[c].publish)
		}
		if round < 0 {
			continue // warm-up
		}
		for c := range clients {
			rates[c] = append(rates[c], rate[c])
		}
		vsKeepAlive = append(vsKeepAlive, rate[0]/rate[1])
		vsNewConn = append(vsNewConn, rate[0]/rate[2])
	}
	for c, cl := range clients {
		b.ReportMetric(median(rates[c]), cl.name+"-pub/s")
	}
	b.ReportMetric(median(vsKeepAlive), "provider/keepalive")
	b.ReportMetric(median(vsNewConn), "provider/newconn")
	b.ReportMetric(0, "ns/op")
}

// latency records publish-to-delivery times.
type latency []time.Duration

func (l latency) quantile(q float64) float64 {
	s := slices.Clone(l)
	slices.Sort(s)
	return float64(s[min(int(float64(len(s))*q), len(s)-1)].Microseconds())
}

// path is one way from a publisher to a subscriber, measured in
// BenchmarkDeliveryLatency.
type path struct {
	name    string
	room    string
	publish func(room string, i int) error
	next    func(context.Context) error // the next delivery to the subscriber
	lat     latency
}

// warmUpMessages go through every path before BenchmarkDeliveryLatency
// starts to measure.
const warmUpMessages = 100

// BenchmarkDeliveryLatency publishes one message at a time and waits for a
// websocket subscriber to receive it, on four paths: the library's provider
// and a bare client posting the same bytes, on Inngest Realtime and on
// PartyKit. On each transport the provider and the bare client take turns
// message by message, so that they share the machine's state. Each path
// gets b.N messages (-benchtime 2000x for 2,000) after a warm-up; it
// reports p50 and p99 per path, the provider's relative to the bare
// client's, and PartyKit's relative to Inngest's.
func BenchmarkDeliveryLatency(b *testing.B) {
	servers(b, false)
	ctx := context.Background()

	var paths []*path
	inngestPath := func(name string, publish func(room string, i int) error) {
		room := "lat-" + uuid.NewString()
		token, err := inn.Token(ctx, room, "video.asset.ready")
		if err != nil {
			b.Fatal(err)
		}
		sub, err := inn.Subscribe(ctx, token)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = sub.Close() })
		paths = append(paths, &path{name: name, room: room, publish: publish,
			next: func(ctx context.Context) error { _, err := sub.NextData(ctx); return err }})
	}
	partyPath := func(name string, publish func(room string, i int) error) {
		room := "lat-" + uuid.NewString()
		sub, err := party.Subscribe(ctx, room)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = sub.Close() })
		paths = append(paths, &path{name: name, room: room, publish: publish,
			next: func(ctx context.Context) error { _, err := sub.Next(ctx); return err }})
	}

	p := inngestProvider(b)
	inngestPath("inngest-provider", func(room string, i int) error { return p.Publish(ctx, message(room, i)) })
	c := bareInngest(true)
	inngestPath("inngest-bare", func(room string, i int) error {
		body, _ := message(room, i).Encode()
		return c.post(room, body)
	})
	if party != nil {
		lp, err := legacyparty.New(&legacyparty.Options{BaseURL: party.URL()})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = lp.Close() })
		partyPath("partykit-provider", func(room string, i int) error { return lp.Publish(ctx, message(room, i)) })
		pc := bareParty()
		partyPath("partykit-bare", func(room string, i int) error {
			body, _ := message(room, i).Encode()
			return pc.post(room, body)
		})
	} else {
		b.Log("PartyKit dev server not installed (npm ci --prefix harness/partykit/server): Inngest paths only")
	}

	send := func(pa *path, i int) time.Duration {
		start := time.Now()
		if err := pa.publish(pa.room, i); err != nil {
			b.Fatal(err)
		}
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if err := pa.next(wctx); err != nil {
			b.Fatalf("%s: %v", pa.name, err)
		}
		return time.Since(start)
	}
	// The provider and the bare client of a transport take turns message by
	// message, each going first every other turn; the transports run one
	// after the other, since on a small machine the PartyKit dev server's
	// work after a message slows whatever runs next.
	b.ResetTimer()
	for t := 0; t < len(paths); t += 2 {
		pair := paths[t : t+2]
		b.StopTimer()
		for i := range warmUpMessages {
			for _, pa := range pair {
				send(pa, i)
			}
		}
		b.StartTimer()
		for i := range b.N {
			for k := range pair {
				pa := pair[(i+k)%2]
				pa.lat = append(pa.lat, send(pa, i))
			}
		}
	}
	b.StopTimer()

	for _, pa := range paths {
		b.ReportMetric(pa.lat.quantile(0.50), pa.name+"-p50-µs")
		b.ReportMetric(pa.lat.quantile(0.99), pa.name+"-p99-µs")
	}
	for k := 0; k+1 < len(paths); k += 2 {
		prov, bare := paths[k], paths[k+1]
		transport := strings.TrimSuffix(prov.name, "-provider")
		b.ReportMetric(prov.lat.quantile(0.50)/bare.lat.quantile(0.50), transport+"-provider/bare-p50")
		b.ReportMetric(prov.lat.quantile(0.99)/bare.lat.quantile(0.99), transport+"-provider/bare-p99")
	}
	if len(paths) == 4 {
		b.ReportMetric(paths[2].lat.quantile(0.50)/paths[0].lat.quantile(0.50), "partykit/inngest-p50")
		b.ReportMetric(paths[2].lat.quantile(0.99)/paths[0].lat.quantile(0.99), "partykit/inngest-p99")
	}
	b.ReportMetric(0, "ns/op")
}

// shadowCase is one way of publishing in BenchmarkShadowEndToEnd.
type shadowCase struct {
	name  string
	pub   realtime.Provider
	party bool // a PartyKit subscriber measures delivery
	limit int  // messages at most; 0 for b.N
	room  string
	sub   *partykit.Subscription
	call  latency // until Publish returns
	deliv latency // until the PartyKit subscriber has the message
}

// hangLimit caps the messages of the case whose calls each take the whole
// budget.
const hangLimit = 200

// BenchmarkShadowEndToEnd publishes through Broadcast in shadow mode to the
// real servers and compares, message by message in turns, with each
// transport alone: Inngest healthy, Inngest answering 503 to every other
// publish, and Inngest never answering (a 50ms budget). It reports each
// case's call latency, the PartyKit subscriber's delivery latency where
// there is one, what shadow mode adds to the slower transport's call, and
// the PartyKit delivery latency with Inngest failing against with Inngest
// healthy.
func BenchmarkShadowEndToEnd(b *testing.B) {
	servers(b, true)
	ctx := context.Background()
	lp, err := legacyparty.New(&legacyparty.Options{BaseURL: party.URL()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = lp.Close() })
	shadow := func(rt realtime.Provider) realtime.Provider {
		br, err := broadcast.New(lp, rt, &broadcast.Options{
			Resolver: flags.Fixed(flags.Shadow), ShadowBudget: 50 * time.Millisecond, ShadowTimeout: 200 * time.Millisecond,
		})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = br.Close(ctx) })
		return br
	}
	healthy := inngestProvider(b)
	cases := []*shadowCase{
		{name: "partykit-alone", pub: lp, party: true},
		{name: "inngest-alone", pub: healthy},
		{name: "shadow-healthy", pub: shadow(healthy), party: true},
		{name: "shadow-inngest-fails-half", pub: shadow(halfFailingInngest(b)), party: true},
		{name: "shadow-inngest-hangs", pub: shadow(hangingInngest(b)), party: true, limit: hangLimit},
	}
	for _, c := range cases {
		c.room = "shadow-" + uuid.NewString()
		if c.party {
			if c.sub, err = party.Subscribe(ctx, c.room); err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = c.sub.Close() })
		}
	}

	send := func(c *shadowCase, i int) (call, deliv time.Duration) {
		received := make(chan time.Time, 1)
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		start := time.Now()
		if c.party {
			go func() {
				if _, err := c.sub.Next(wctx); err == nil {
					received <- time.Now()
				}
				close(received)
			}()
		}
		if err := c.pub.Publish(ctx, message(c.room, i)); err != nil {
			b.Fatalf("%s: %v", c.name, err)
		}
		call = time.Since(start)
		if c.party {
			at, ok := <-received
			if !ok {
				b.Fatalf("%s: the PartyKit subscriber got nothing", c.name)
			}
			deliv = at.Sub(start)
		}
		return call, deliv
	}
	for i := range warmUpMessages / 10 {
		for _, c := range cases {
			send(c, i)
		}
	}
	b.ResetTimer()
	for i := range b.N {
		for k := range cases {
			c := cases[(i+k)%len(cases)]
			if c.limit > 0 && len(c.call) >= c.limit {
				continue
			}
			call, deliv := send(c, i)
			c.call = append(c.call, call)
			if c.party {
				c.deliv = append(c.deliv, deliv)
			}
		}
	}
	b.StopTimer()

	for _, c := range cases {
		b.ReportMetric(c.call.quantile(0.50), c.name+"-call-p50-µs")
		b.ReportMetric(c.call.quantile(0.99), c.name+"-call-p99-µs")
		if c.party {
			b.ReportMetric(c.deliv.quantile(0.50), c.name+"-partykit-p50-µs")
			b.ReportMetric(c.deliv.quantile(0.99), c.name+"-partykit-p99-µs")
		}
	}
	slower := max(cases[0].call.quantile(0.50), cases[1].call.quantile(0.50))
	b.ReportMetric(cases[2].call.quantile(0.50)-slower, "shadow-added-p50-µs")
	b.ReportMetric(cases[3].deliv.quantile(0.50)/cases[2].deliv.quantile(0.50), "partykit-p50-fails-half/healthy")
	b.ReportMetric(cases[3].deliv.quantile(0.99)/cases[2].deliv.quantile(0.99), "partykit-p99-fails-half/healthy")
	b.ReportMetric(0, "ns/op")
}

// halfFailingInngest is a provider, without retries, for a real Inngest
// endpoint of its own that answers 503 to every other publish.
func halfFailingInngest(b *testing.B) realtime.Provider {
	var n atomic.Int64
	key := inngestrt.NewSigningKey()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	srv, err := inngestrt.Start(ctx, inngestrt.Options{SigningKeys: []string{key}, Wrap: func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/v1/realtime/publish" && n.Add(1)%2 == 0 {
				http.Error(w, "injected outage", http.StatusServiceUnavailable)
				return
			}
			next.ServeHTTP(w, r)
		})
	}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = srv.Close() })
	p, err := inngest.New(&inngest.Options{BaseURL: srv.URL(), SigningKey: key, Retry: &realtime.RetryPolicy{Attempts: 1},
		// Readable channels, so that subscriptions by room (inn.Token)
		// and the bare client's publishes meet the provider's.
		Mapping: inngest.Mapping{Unkeyed: true}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = p.Close() })
	return p
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
	p, err := inngest.New(&inngest.Options{BaseURL: "http://" + ln.Addr().String(), SigningKey: innKey,
		// Readable channels, so that subscriptions by room (inn.Token)
		// and the bare client's publishes meet the provider's.
		Mapping: inngest.Mapping{Unkeyed: true}})
	if err != nil {
		b.Fatal(err)
	}
	return p
}
