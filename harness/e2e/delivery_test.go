package e2e_test

// Reliable delivery against the real servers: a Broadcast with a replay
// log publishes to one room while a fault happens, and an
// inngest.Subscriber with gap repair (CatchUp reading the Broadcast's
// History, as a Go program beside the app would) must deliver every
// message exactly once, in seq order. Each subtest publishes a healthy
// run first (the latency to compare with), then the faulted run, then a
// fence, and records a row of the delivery table, which
// `go test -v -run TestDelivery` prints.

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/coursebuilder/realtime-go/broadcast"
	"github.com/coursebuilder/realtime-go/flags"
	"github.com/coursebuilder/realtime-go/harness/inngestrt"
	"github.com/coursebuilder/realtime-go/internal/replaytest"
	"github.com/coursebuilder/realtime-go/legacyparty"
	"github.com/coursebuilder/realtime-go/realtime/inngest"
	"github.com/coursebuilder/realtime-go/replay/redislog"
)

// Sizes of each delivery test: healthyN messages before the fault,
// faultN while it lasts.
const (
	healthyN = 50
	faultN   = 200
)

func TestDelivery(t *testing.T) {
	var table deliveryTable
	for _, tc := range []struct {
		name string
		run  func(t *testing.T) deliveryRow
	}{
		{"ConnectionCut", deliveryConnectionCut},
		{"ServerRestart", deliveryServerRestart},
		{"DroppedFrames", deliveryDroppedFrames},
		{"ShadowServerRestart", deliveryShadowRestart},
		{"Closing", deliveryClosing},
		{"TokenExpiry", deliveryTokenExpiry},
		{"RedisRestart", deliveryRedisRestart},
		{"SharedRedisLog", deliverySharedRedisLog},
	} {
		t.Run(tc.name, func(t *testing.T) { table.add(tc.run(t)) })
	}
	t.Logf("delivery table: latencies from Publish returning to the handler (0 when it came first), percentiles by nearest rank; repaired: not received live (neither on the websocket nor, in shadow mode, offered from PartyKit) before it was delivered, so a catch-up brought it:\n%s", &table)
}

// waitRedis waits until client reaches its server and returns how long
// that took.
func waitRedis(t *testing.T, client *redis.Client) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := client.Ping(ctx).Err()
		cancel()
		if err == nil {
			return time.Since(start)
		}
		if time.Since(start) > deliveryWait {
			t.Fatalf("the client did not reach the restarted Redis within %s: %v", deliveryWait, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// deliveryProvider is an Inngest provider for srv that retries little, so
// that a publish to a server that is down fails fast.
func deliveryProvider(t *testing.T, srv *inngestrt.Server, key string) *inngest.Provider {
	return newInngest(t, inngest.Options{BaseURL: srv.URL(), SigningKey: key, Retry: fastRetry(2)})
}

// A proxy resets the subscriber's connection (TCP RST) at every 40th data
// message it carries; the publishes go to the server directly.
// throughProxy runs the healthy and the fault phase with the subscriber
// behind a websocket proxy that configure sets up and that plays its fault
// during the fault phase only, and returns the checked row and the proxy.
func throughProxy(t *testing.T, room, fault string, configure func(*wsProxy)) (deliveryRow, *wsProxy) {
	srv, key := sharedInngest(t)
	p := deliveryProvider(t, srv, key)
	b := deliveryBroadcast(t, p, nil)
	f := newFlow(t, room, b)
	proxy := newWSProxy(t, srv.URL())
	configure(proxy)
	f.subscribe(proxy, p.TokenFunc(f.room, topic), nil)

	f.publishN(b, phaseHealthy, 0, healthyN)
	f.waitDelivered()
	proxy.arm(true)
	if n := f.publishN(b, phaseFault, 0, faultN); n > 0 {
		t.Fatalf("%d publishes failed", n)
	}
	proxy.arm(false)
	f.fence(b)
	return f.check(fault), proxy
}

func deliveryConnectionCut(t *testing.T) deliveryRow {
	row, proxy := throughProxy(t, "delivery-cut", "connection reset every 40 data frames", func(p *wsProxy) { p.cutAt = 40 })
	if proxy.resets.Load() == 0 {
		t.Fatal("the proxy never cut the connection")
	}
	accepted := 0
	for _, c := range proxy.Conns() {
		if c.Status == 101 {
			accepted++
		}
	}
	if accepted < 2 {
		t.Fatalf("%d connections opened: the subscriber never reconnected", accepted)
	}
	row.Note = fmt.Sprintf("%d resets, %d connections", proxy.resets.Load(), accepted)
	return row
}

// The Inngest server is stopped (it sends "closing", then goes) while
// messages are published, and started again on the same address. In
// realtime mode a publish to the stopped server fails, after the replay
// log took it: the subscriber must still deliver it, once; the failed
// publishes are then retried under the same ids, as a retried Inngest step
// would, and must not be delivered again.
func deliveryServerRestart(t *testing.T) deliveryRow {
	key := inngestrt.NewSigningKey()
	opts := inngestrt.Options{SigningKeys: []string{key}}
	first, err := inngestrt.Start(context.Background(), inngestrt.Options{SigningKeys: []string{key}, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = first.Close() })
	p := deliveryProvider(t, first, key)
	b := deliveryBroadcast(t, p, nil)
	f := newFlow(t, "delivery-restart", b)
	proxy := newWSProxy(t, first.URL()) // not armed: it watches, and dials the restarted server
	f.subscribe(proxy, p.TokenFunc(f.room, topic), nil)

	f.publishN(b, phaseHealthy, 0, healthyN)
	f.waitDelivered()
	third := faultN / 3
	if n := f.publishN(b, phaseFault, 0, third); n > 0 {
		t.Fatalf("%d publishes failed before the restart", n)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	down := f.publishN(b, phaseFault, third, 2*third)
	if down != third {
		t.Fatalf("%d of %d publishes to the stopped server failed, want all", down, third)
	}
	second := restartInngest(t, first, opts)
	f.publishN(b, phaseFault, 2*third, faultN) // some may fail while the provider reconnects
	// The Inngest step whose publish failed is retried: same message,
	// same id.
	retried := f.failed()
	for _, msg := range retried {
		if err := f.publish(b, phaseFault, msg); err != nil {
			t.Fatalf("retrying %s after the restart: %v", msg.ID, err)
		}
	}
	f.fence(b)

	row := f.check("Inngest server restarted")
	if second.Subscriptions(f.room, topic) == 0 {
		t.Fatal("the subscriber never subscribed to the restarted server")
	}
	row.Note = fmt.Sprintf("%d publishes failed while it was down, retried under the same id", len(retried))
	return row
}

// A proxy drops every 5th data message without closing anything: the
// subscriber sees the next seq jump and repairs the gap without a
// reconnection.
func deliveryDroppedFrames(t *testing.T) deliveryRow {
	row, proxy := throughProxy(t, "delivery-drop", "every 5th data frame dropped", func(p *wsProxy) { p.dropEvery = 5 })
	dropped := proxy.dropped.Load()
	if dropped == 0 {
		t.Fatal("the proxy dropped nothing")
	}
	// A dropped message can only have come from a catch-up.
	if row.Repaired < uint64(dropped) {
		t.Errorf("the subscriber counts %d messages repaired; %d were dropped on the way", row.Repaired, dropped)
	}
	row.Note = fmt.Sprintf("%d frames dropped, %d connections", dropped, len(proxy.Conns()))
	return row
}

// Shadow mode, PartyKit and Inngest both carrying the room, and a Go
// program listening on both: the subscriber's Inngest connection, plus
// Subscriber.Offer of every PartyKit frame. The Inngest server restarts
// meanwhile; PartyKit's outcome is the one that counts, so no publish
// fails, and the subscriber must deliver each id once, in seq order,
// whichever transport brought it first.
func deliveryShadowRestart(t *testing.T) deliveryRow {
	party := sharedParty(t)
	key := inngestrt.NewSigningKey()
	opts := inngestrt.Options{SigningKeys: []string{key}}
	first, err := inngestrt.Start(context.Background(), inngestrt.Options{SigningKeys: []string{key}, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = first.Close() })
	p := deliveryProvider(t, first, key)
	b, err := broadcast.New(newParty(t, legacyparty.Options{BaseURL: party.URL()}), p, &broadcast.Options{
		Resolver: flags.Fixed(flags.Shadow),
		Logger:   zaptest.NewLogger(t, zaptest.Level(zap.ErrorLevel)), // the Inngest leg's failures are expected
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeBroadcast(t, b) })
	f := newFlow(t, "delivery-shadow", b)
	partySub := mustSubscribeParty(t, party, f.room)
	proxy := newWSProxy(t, first.URL())
	f.subscribe(proxy, p.TokenFunc(f.room, topic), nil)
	f.offerFrom(partySub)

	f.publishN(b, phaseHealthy, 0, healthyN)
	f.waitDelivered()
	third := faultN / 3
	f.publishN(b, phaseFault, 0, third)
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	if n := f.publishN(b, phaseFault, third, 2*third); n > 0 {
		t.Fatalf("%d publishes failed in shadow mode while Inngest was down: PartyKit's outcome counts", n)
	}
	second := restartInngest(t, first, opts)
	if n := f.publishN(b, phaseFault, 2*third, faultN); n > 0 {
		t.Fatalf("%d publishes failed", n)
	}
	f.fence(b)

	row := f.check("shadow mode, Inngest restarted, PartyKit offered")
	if second.Subscriptions(f.room, topic) == 0 {
		t.Fatal("the subscriber never subscribed to the restarted server")
	}
	f.mu.Lock()
	offered := len(f.offered)
	f.mu.Unlock()
	row.Note = fmt.Sprintf("%d ids offered from PartyKit", offered)
	return row
}

// A deploy of Inngest: a new instance takes the new connections and the
// old one sends "closing" to its subscribers (inngestrt's Redeploy; the
// old instance serves its connections until their clients leave). The
// subscriber must open its new connection before it leaves the old one,
// and drop what both deliver.
func deliveryClosing(t *testing.T) deliveryRow {
	key := inngestrt.NewSigningKey()
	srv := inngestrt.NewTest(t, inngestrt.Options{SigningKeys: []string{key}})
	p := deliveryProvider(t, srv, key)
	b := deliveryBroadcast(t, p, nil)
	f := newFlow(t, "delivery-closing", b)
	proxy := newWSProxy(t, srv.URL()) // not armed: it watches the connections
	f.subscribe(proxy, p.TokenFunc(f.room, topic), nil)

	f.publishN(b, phaseHealthy, 0, healthyN)
	f.waitDelivered()
	channel, err := p.Channel(f.room)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.WaitSubscribed(ctxT(t), channel, topic, 1); err != nil {
		t.Fatal(err)
	}
	half := faultN / 2
	f.publishN(b, phaseFault, 0, half)
	told, err := srv.Redeploy(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if told == 0 {
		t.Fatal("Redeploy told no subscription that the server is closing")
	}
	if n := f.publishN(b, phaseFault, half, faultN); n > 0 {
		t.Fatalf("%d publishes failed", n)
	}
	f.fence(b)

	row := f.check(`"closing" (a deploy)`)
	conns := proxy.Conns()
	if len(conns) < 2 {
		t.Fatalf("%d connections: the subscriber did not reconnect on closing", len(conns))
	}
	if old, next := conns[0], conns[1]; !next.Start.Before(old.End) {
		t.Errorf("the new connection opened %s after the old one ended: it should open before", next.Start.Sub(old.End))
	}
	if srv.Subscriptions(f.room, topic) < 2 {
		t.Error("the new instance never subscribed the subscriber")
	}
	row.Note = fmt.Sprintf("%d connections; overlap %s", len(conns), conns[0].End.Sub(conns[1].Start).Round(time.Millisecond))
	return row
}

// Subscription tokens that live 3 s (2 to 3 s: JWT exp has whole
// seconds), and a proxy that resets the connection at every 25th data
// message: the reconnections after a token expired must renew it.
func deliveryTokenExpiry(t *testing.T) deliveryRow {
	srv, key := sharedInngest(t)
	p := deliveryProvider(t, srv, key)
	b := deliveryBroadcast(t, p, nil)
	f := newFlow(t, "delivery-tokens", b)
	channel, err := p.Channel(f.room)
	if err != nil {
		t.Fatal(err)
	}
	tokens, minted := shortTokens(srv, channel, 3*time.Second, topic)
	proxy := newWSProxy(t, srv.URL())
	proxy.cutAt = 25
	f.subscribe(proxy, tokens, func(o *inngest.SubscriberOptions) { o.TokenMargin = time.Second })

	f.publishN(b, phaseHealthy, 0, healthyN)
	f.waitDelivered()
	proxy.arm(true)
	half := faultN / 2
	if n := f.publishN(b, phaseFault, 0, half); n > 0 {
		t.Fatalf("%d publishes failed", n)
	}
	// Every token minted so far expires: the reconnections that follow
	// need a new one.
	all := minted()
	expired := all[len(all)-1].Expires
	time.Sleep(time.Until(expired) + 50*time.Millisecond)
	if n := f.publishN(b, phaseFault, half, faultN); n > 0 {
		t.Fatalf("%d publishes failed", n)
	}
	proxy.arm(false)
	f.fence(b)

	row := f.check("tokens expiring (3 s life)")
	late, refused := 0, 0
	for _, c := range proxy.Conns() {
		switch {
		case c.Status == 101 && c.Start.After(expired):
			late++
		case c.Status == 401 || c.Status == 403:
			refused++
		}
	}
	if late == 0 {
		t.Fatal("no connection opened after the tokens expired")
	}
	if n := len(minted()); n < 2 {
		t.Fatalf("%d tokens minted: the subscriber never renewed its token", n)
	}
	row.Note = fmt.Sprintf("%d tokens minted, %d connections after the first ones expired, %d handshakes refused", len(minted()), late, refused)
	return row
}

// The replay log is in Redis (appendonly), and Redis restarts while
// messages are published: the appends during the outage fail, so those
// messages go out without seq (the documented behaviour) and must be
// delivered once; half of them are then published again under the same
// id once Redis is back (a retried step): now appended with a seq, they
// must not be delivered again.
func deliveryRedisRestart(t *testing.T) deliveryRow {
	rds := replaytest.StartRedis(t, &replaytest.RedisOptions{AppendOnly: true})
	// The client options redislog's doc shows.
	client := rds.Client(&redis.Options{ContextTimeoutEnabled: true})
	log := redislog.New(client, nil)
	srv, key := sharedInngest(t)
	p := deliveryProvider(t, srv, key)
	b := deliveryBroadcast(t, p, log)
	f := newFlow(t, "delivery-redis", b)
	proxy := newWSProxy(t, srv.URL()) // not armed: it watches
	f.subscribe(proxy, p.TokenFunc(f.room, topic), nil)

	f.publishN(b, phaseHealthy, 0, healthyN)
	f.waitDelivered()
	const before, outage = faultN / 2, 20
	f.publishN(b, phaseFault, 0, before)
	rds.Stop()
	stopped := time.Now()
	if n := f.publishN(b, phaseFault, before, before+outage); n > 0 {
		t.Fatalf("%d publishes failed while Redis was down: the log must not hold a publish back", n)
	}
	outageTook := time.Since(stopped)
	p50, longest := f.publishTimes(phaseFault, before, before+outage)
	rds.Start()
	// Redis is back once the app's client reaches it: go-redis keeps
	// failing for up to a second after a run of failed dials.
	back := waitRedis(t, client)
	f.publishN(b, phaseFault, before+outage, faultN)
	for i := before; i < before+outage; i += 2 {
		if err := f.publish(b, phaseFault, f.message(phaseFault, i)); err != nil {
			t.Fatal(err)
		}
	}
	f.fence(b)

	row := f.check("Redis restarted (appendonly)")
	f.mu.Lock()
	for _, d := range f.got {
		var i int
		if _, err := fmt.Sscanf(d.ID, phaseFault+"-%d", &i); err != nil {
			continue
		}
		if during := i >= before && i < before+outage; during != (d.Seq == 0) {
			t.Errorf("%s delivered with seq %d: want no seq exactly for the messages published while Redis was down", d.ID, d.Seq)
		}
	}
	f.mu.Unlock()
	row.Note = fmt.Sprintf("%d published without seq while Redis was down, in %s (Publish p50 %s, longest %s), half of them again after; the client reached Redis %s after its restart",
		outage, outageTook.Round(time.Millisecond), p50.Round(time.Millisecond), longest.Round(time.Millisecond), back.Round(time.Millisecond))
	return row
}

// Three app instances, each with a Broadcast over its own Redis client and
// Inngest provider, share one Redis log and publish to one room at once:
// the subscriber must see seqs 1..N with no gap and no repeat, whatever
// order Inngest fans them out in.
func deliverySharedRedisLog(t *testing.T) deliveryRow {
	const instances = 3
	rds := replaytest.StartRedis(t, nil)
	srv, key := sharedInngest(t)
	bs := make([]*broadcast.Broadcast, instances)
	for i := range bs {
		log := redislog.New(rds.Client(&redis.Options{ContextTimeoutEnabled: true}), nil)
		bs[i] = deliveryBroadcast(t, deliveryProvider(t, srv, key), log)
	}
	f := newFlow(t, "delivery-shared", bs[0])
	p := deliveryProvider(t, srv, key)
	f.subscribe(newWSProxy(t, srv.URL()), p.TokenFunc(f.room, topic), nil)

	f.publishN(bs[0], phaseHealthy, 0, healthyN)
	f.waitDelivered()
	per := faultN / instances
	var wg sync.WaitGroup
	failed := make([]int, instances)
	for i, b := range bs {
		wg.Go(func() { failed[i] = f.publishN(b, phaseFault, i*per, (i+1)*per) })
	}
	wg.Wait()
	for i, n := range failed {
		if n > 0 {
			t.Fatalf("instance %d: %d publishes failed", i, n)
		}
	}
	f.fence(bs[1])

	row := f.check(fmt.Sprintf("%d instances, one Redis log, concurrent", instances))
	f.mu.Lock()
	numbered := 0
	for _, d := range f.got {
		if d.Seq == 0 {
			t.Errorf("%s delivered without seq", d.ID)
		}
		numbered++
	}
	f.mu.Unlock()
	if want := healthyN + per*instances + 1; numbered != want {
		t.Errorf("%d messages delivered, want %d", numbered, want)
	}
	return row
}
