package e2e_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	rtserver "github.com/inngest/inngest/pkg/execution/realtime"
	"github.com/inngest/inngest/pkg/execution/realtime/streamingtypes"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/coursebuilder/realtime-go/broadcast"
	"github.com/coursebuilder/realtime-go/flags"
	"github.com/coursebuilder/realtime-go/harness/inngestrt"
	"github.com/coursebuilder/realtime-go/realtime"
	"github.com/coursebuilder/realtime-go/realtime/inngest"
	"github.com/coursebuilder/realtime-go/replay"
)

// deliveryWait bounds each wait of the delivery tests for the subscriber
// to have what was published: generous, for a loaded machine.
const deliveryWait = 30 * time.Second

// catchUpPage is how many messages one catch-up asks for.
const catchUpPage = 100

// Phases of a delivery test: what is published before the fault (the
// healthy deliveries), while it lasts, and the fence published once it is
// over, whose delivery shows that everything before it is in.
const (
	phaseHealthy = "healthy"
	phaseFault   = "fault"
	phaseFence   = "fence"
)

// flow is one delivery test: messages published to one room through
// Broadcasts, and an inngest.Subscriber with gap repair that receives them
// through a wsProxy. It records when each Publish returned, what the
// subscriber delivered and when; the proxy, which messages reached it live.
// A message delivered before (or without) its live copy reaching the
// subscriber was repaired: a catch-up brought it.
type flow struct {
	t    *testing.T
	room string
	// history answers the subscriber's catch-ups: a Broadcast's History.
	history func(ctx context.Context, after uint64, limit int) (replay.Page, error)

	mu        sync.Mutex
	published map[string]*publication
	order     []string // ids in the order first published
	got       []delivery
	catchUps  int
	changed   chan struct{} // closed and replaced on every delivery
	sub       *inngest.Subscriber
	closed    bool
	// proxy carries the subscriber's websocket: it tells which messages
	// arrived live.
	proxy *wsProxy
	// offered is when each id first reached Subscriber.Offer from
	// PartyKit: live too, by the other transport.
	offered map[string]time.Time
}

// publication is one message as published.
type publication struct {
	msg      realtime.Message
	phase    string
	called   time.Time // when its first Publish started
	returned time.Time // when its first Publish returned
	err      error     // of its last Publish
}

// delivery is one message the subscriber's handler received.
type delivery struct {
	inngest.Message
	at time.Time
}

// newFlow returns a flow for a fresh room whose catch-ups read b's History.
func newFlow(t *testing.T, prefix string, b *broadcast.Broadcast) *flow {
	f := &flow{
		t:         t,
		room:      room(prefix),
		published: map[string]*publication{},
		changed:   make(chan struct{}),
		offered:   map[string]time.Time{},
	}
	f.history = func(ctx context.Context, after uint64, limit int) (replay.Page, error) {
		return b.History(ctx, f.room, after, limit)
	}
	return f
}

// deliveryBroadcast returns a Broadcast in realtime mode over p, with log as
// its replay log (nil: the embedded one); warnings and errors go to t's
// log.
func deliveryBroadcast(t testing.TB, p *inngest.Provider, log replay.Log) *broadcast.Broadcast {
	t.Helper()
	b, err := broadcast.New(realtime.NewNoop(nil), p, &broadcast.Options{
		Resolver: flags.Fixed(flags.Realtime),
		Log:      log,
		Logger:   zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)),
	})
	if err != nil {
		t.Fatalf("broadcast.New: %v", err)
	}
	t.Cleanup(func() { _ = b.Close(context.Background()) })
	return b
}

// subscribe starts the subscriber, through proxy, with tokens from token,
// catching up through the flow's history, and waits until it is live.
// tune, if set, changes the options first.
func (f *flow) subscribe(proxy *wsProxy, token func(context.Context) (inngest.Token, error), tune func(*inngest.SubscriberOptions)) {
	f.t.Helper()
	opts := &inngest.SubscriberOptions{
		MinBackoff: 10 * time.Millisecond,
		MaxBackoff: 200 * time.Millisecond,
		Logger:     zaptest.NewLogger(f.t, zaptest.Level(zap.InfoLevel)),
		CatchUp:    f.catchUp,
	}
	if tune != nil {
		tune(opts)
	}
	ctx, cancel := context.WithTimeout(context.Background(), deliveryWait)
	defer cancel()
	f.proxy = proxy
	sub, err := inngest.Subscribe(ctx, proxy.URL(), token, f.handle, opts)
	if err != nil {
		f.t.Fatalf("inngest.Subscribe: %v", err)
	}
	f.mu.Lock()
	f.sub = sub
	f.mu.Unlock()
	f.t.Cleanup(f.closeSub)
}

func (f *flow) closeSub() {
	f.mu.Lock()
	sub, done := f.sub, f.closed
	f.closed = true
	f.mu.Unlock()
	if sub != nil && !done {
		_ = sub.Close()
	}
}

// catchUp is the subscriber's CatchUp: the flow's history, counted.
func (f *flow) catchUp(ctx context.Context, after uint64) (replay.Page, error) {
	f.mu.Lock()
	f.catchUps++
	f.mu.Unlock()
	return f.history(ctx, after, catchUpPage)
}

// handle is the subscriber's handler.
func (f *flow) handle(m inngest.Message) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.got = append(f.got, delivery{Message: m, at: time.Now()})
	close(f.changed)
	f.changed = make(chan struct{})
}

// offerFrom hands every frame party delivers to the subscriber's Offer,
// as a program listening on both transports during shadow mode does,
// until t ends.
func (f *flow) offerFrom(party *partySub) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			frame, err := party.Next(ctx)
			if err != nil {
				return
			}
			f.mu.Lock()
			sub := f.sub
			if env, err := realtime.DecodeEnvelope(frame); err == nil {
				if _, ok := f.offered[env.ID]; !ok {
					f.offered[env.ID] = time.Now()
				}
			}
			f.mu.Unlock()
			if err := sub.Offer(frame); err != nil {
				f.t.Errorf("Offer of a PartyKit frame: %v: %s", err, frame)
			}
		}
	})
	f.t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
}

// message returns the i-th message of a phase, with an id that says so.
func (f *flow) message(phase string, i int) realtime.Message {
	id := fmt.Sprintf("%s-%03d", phase, i)
	return realtime.Message{Room: f.room, Name: topic, RequestID: f.room, ID: id,
		Body: map[string]any{"phase": phase, "i": i}}
}

// publish publishes msg through b and records it; a second publish of the
// same id (a retried step) keeps the times of the first. It returns
// Publish's error.
func (f *flow) publish(b *broadcast.Broadcast, phase string, msg realtime.Message) error {
	called := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	err := b.Publish(ctx, msg)
	returned := time.Now()
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.published[msg.ID]
	if !ok {
		p = &publication{msg: msg, phase: phase, called: called, returned: returned}
		f.published[msg.ID] = p
		f.order = append(f.order, msg.ID)
	}
	p.err = err
	return err
}

// publishN publishes messages from to to-1 of phase through b, one after
// the other, and returns how many Publish calls failed.
func (f *flow) publishN(b *broadcast.Broadcast, phase string, from, to int) int {
	failed := 0
	for i := from; i < to; i++ {
		if f.publish(b, phase, f.message(phase, i)) != nil {
			failed++
		}
	}
	return failed
}

// failed returns the messages whose last Publish failed.
func (f *flow) failed() []realtime.Message {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []realtime.Message
	for _, id := range f.order {
		if p := f.published[id]; p.err != nil {
			out = append(out, p.msg)
		}
	}
	return out
}

// ids returns the ids published so far.
func (f *flow) ids() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.order)
}

// waitDelivered waits until every id published so far was delivered, or
// fails the test after deliveryWait.
func (f *flow) waitDelivered() {
	f.t.Helper()
	want := f.ids()
	deadline := time.NewTimer(deliveryWait)
	defer deadline.Stop()
	for {
		f.mu.Lock()
		have := map[string]bool{}
		for _, d := range f.got {
			have[d.ID] = true
		}
		var missing []string
		for _, id := range want {
			if !have[id] {
				missing = append(missing, id)
			}
		}
		ch := f.changed
		f.mu.Unlock()
		if len(missing) == 0 {
			return
		}
		select {
		case <-ch:
		case <-deadline.C:
			f.t.Fatalf("after %s, %d of %d messages not delivered (first: %s); %s",
				deliveryWait, len(missing), len(want), strings.Join(missing[:min(len(missing), 10)], ", "), f.counters())
		}
	}
}

// fence publishes the fence through b, waits until everything published is
// delivered, and closes the subscriber: what it delivered is final.
func (f *flow) fence(b *broadcast.Broadcast) {
	f.t.Helper()
	if err := f.publish(b, phaseFence, f.message(phaseFence, 0)); err != nil {
		f.t.Fatalf("publishing the fence: %v", err)
	}
	f.waitDelivered()
	f.closeSub()
}

// counters describes the subscriber's counters.
func (f *flow) counters() string {
	f.mu.Lock()
	sub, n := f.sub, f.catchUps
	f.mu.Unlock()
	if sub == nil {
		return "no subscriber"
	}
	return fmt.Sprintf("duplicates %d, repaired %d, resets %d, dropped %d, misrouted %d, catch-ups %d",
		sub.Duplicates(), sub.Repaired(), sub.Resets(), sub.Dropped(), sub.Misrouted(), n)
}

// logEntries returns every entry the room's log holds, in seq order.
func (f *flow) logEntries() []replay.Entry {
	f.t.Helper()
	var all []replay.Entry
	var after uint64
	for {
		page, err := f.history(ctxT(f.t), after, catchUpPage)
		if err != nil {
			f.t.Fatalf("reading the replay log: %v", err)
		}
		all = append(all, page.Entries...)
		if len(page.Entries) == 0 || page.Entries[len(page.Entries)-1].Seq >= page.Head {
			return all
		}
		after = page.Entries[len(page.Entries)-1].Seq
	}
}

// check asserts what every delivery test relies on, once the subscriber is
// closed: every published message delivered exactly once; the numbered
// ones in seq order, one epoch, seqs 1, 2, 3, … with none missing but those
// whose id was delivered already without seq, each exactly as the log holds
// it; nothing lost for good (no reset) and nothing dropped. It returns the
// row of the delivery table.
func (f *flow) check(fault string) deliveryRow {
	f.t.Helper()
	f.mu.Lock()
	got := slices.Clone(f.got)
	published := f.published
	order := slices.Clone(f.order)
	catchUps := f.catchUps
	sub := f.sub
	f.mu.Unlock()
	entries := f.logEntries()
	live := f.proxy.Live()
	f.mu.Lock()
	for id, at := range f.offered {
		if l, ok := live[id]; !ok || at.Before(l) {
			live[id] = at
		}
	}
	f.mu.Unlock()

	seen := map[string]int{}
	for _, d := range got {
		seen[d.ID]++
		if _, ok := published[d.ID]; !ok {
			f.t.Errorf("delivered %q, which was never published: %s", d.ID, d.Data)
		}
	}
	for _, id := range order {
		switch n := seen[id]; {
		case n == 0:
			f.t.Errorf("%s was published and never delivered (its last publish: %v)", id, published[id].err)
		case n > 1:
			f.t.Errorf("%s was delivered %d times", id, n)
		}
	}

	// Seq order, and agreement with the log.
	bySeq := map[uint64]replay.Entry{}
	var epoch uint64
	for i, e := range entries {
		bySeq[e.Seq] = e
		if e.Seq != uint64(i+1) {
			f.t.Errorf("the log's %d-th entry has seq %d", i+1, e.Seq)
		}
		if i == 0 {
			epoch = e.Epoch
		} else if e.Epoch != epoch {
			f.t.Errorf("the log's entry %d is of epoch %d, the first of %d", e.Seq, e.Epoch, epoch)
		}
	}
	unnumbered := map[string]bool{}
	var last uint64
	for _, d := range got {
		if d.Seq == 0 {
			unnumbered[d.ID] = true
			continue
		}
		if d.Epoch != epoch {
			f.t.Errorf("%s delivered with epoch %d, the log's is %d", d.ID, d.Epoch, epoch)
		}
		if d.Seq <= last {
			f.t.Errorf("%s delivered with seq %d after seq %d", d.ID, d.Seq, last)
		}
		for s := last + 1; s < d.Seq; s++ {
			if e, ok := bySeq[s]; !ok || !unnumbered[e.ID] {
				f.t.Errorf("seq %d (%s) was skipped: %s came next with seq %d", s, e.ID, d.ID, d.Seq)
			}
		}
		last = d.Seq
		e, ok := bySeq[d.Seq]
		switch {
		case !ok:
			f.t.Errorf("%s delivered with seq %d, which the log does not hold", d.ID, d.Seq)
		case e.ID != d.ID:
			f.t.Errorf("seq %d delivered as %s, the log holds %s", d.Seq, d.ID, e.ID)
		case !bytes.Equal(e.Envelope, d.Data):
			f.t.Errorf("seq %d delivered as\n  %s\nthe log holds\n  %s", d.Seq, d.Data, e.Envelope)
		}
	}
	for s := last + 1; s <= uint64(len(entries)); s++ {
		if e := bySeq[s]; !unnumbered[e.ID] {
			f.t.Errorf("seq %d (%s) was never delivered: the last delivered is %d", s, e.ID, last)
		}
	}
	for _, d := range got {
		if d.Seq == 0 {
			if env, err := realtime.DecodeEnvelope(d.Data); err != nil || env.ID != d.ID {
				f.t.Errorf("%s delivered without seq as %s (%v)", d.ID, d.Data, err)
			}
		}
	}
	if sub.Resets() != 0 || sub.Dropped() != 0 || sub.Misrouted() != 0 {
		f.t.Errorf("the subscriber lost messages: %s", f.counters())
	}

	row := deliveryRow{
		Fault:      fault,
		Published:  len(order),
		Delivered:  len(seen),
		Duplicates: sub.Duplicates(),
		Repaired:   sub.Repaired(),
		CatchUps:   catchUps,
	}
	var healthy, healthyCall, fault_, repaired []time.Duration
	for _, d := range got {
		p, ok := published[d.ID]
		if !ok {
			continue
		}
		lat := max(d.at.Sub(p.returned), 0)
		switch p.phase {
		case phaseHealthy:
			healthy = append(healthy, lat)
			healthyCall = append(healthyCall, d.at.Sub(p.called))
		case phaseFault:
			fault_ = append(fault_, lat)
		}
		if at, ok := live[d.ID]; !ok || at.After(d.at) {
			repaired = append(repaired, lat)
		}
	}
	row.NotLive = len(repaired)
	row.HealthyP50, row.HealthyCallP50 = percentile(healthy, 50), percentile(healthyCall, 50)
	row.FaultP50, row.FaultP99 = percentile(fault_, 50), percentile(fault_, 99)
	row.RepairedP50, row.RepairedP99 = percentile(repaired, 50), percentile(repaired, 99)
	return row
}

// percentile returns the p-th percentile of ds (nearest rank), 0 for none.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[min(max(i, 0), len(s)-1)]
}

// deliveryRow is one line of the delivery table.
type deliveryRow struct {
	Fault                    string
	Published, Delivered     int
	Duplicates, Repaired     uint64
	NotLive, CatchUps        int
	HealthyP50               time.Duration
	HealthyCallP50           time.Duration // from Publish being called
	FaultP50, FaultP99       time.Duration
	RepairedP50, RepairedP99 time.Duration
	Note                     string
}

// deliveryTable collects the rows of TestDelivery's subtests.
type deliveryTable struct {
	mu   sync.Mutex
	rows []deliveryRow
}

func (d *deliveryTable) add(r deliveryRow) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.rows = append(d.rows, r)
}

// String renders the table in Markdown.
func (d *deliveryTable) String() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var b strings.Builder
	b.WriteString("| fault | delivered/published | duplicates dropped | repaired (subscriber's count) | not received live | repaired p50 | repaired p99 | fault-phase p50 | fault-phase p99 | healthy p50 | healthy p50 from the call | catch-up calls | notes |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range d.rows {
		fmt.Fprintf(&b, "| %s | %d/%d | %d | %d | %d | %s | %s | %s | %s | %s | %s | %d | %s |\n",
			r.Fault, r.Delivered, r.Published, r.Duplicates, r.Repaired, r.NotLive,
			ms(r.RepairedP50), ms(r.RepairedP99), ms(r.FaultP50), ms(r.FaultP99), ms(r.HealthyP50), ms(r.HealthyCallP50), r.CatchUps, r.Note)
	}
	return b.String()
}

func ms(d time.Duration) string {
	return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
}

// publishTimes returns the p50 and the longest time Publish took for the
// messages of phase with index from to to-1.
func (f *flow) publishTimes(phase string, from, to int) (p50, longest time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var ds []time.Duration
	for i := from; i < to; i++ {
		if p, ok := f.published[f.message(phase, i).ID]; ok {
			ds = append(ds, p.returned.Sub(p.called))
		}
	}
	return percentile(ds, 50), percentile(ds, 100)
}

// ---------------------------------------------------------------------------
// Tokens and servers

// shortTokens returns a token function that mints, on srv's secret, tokens
// for channel and topics that live for life (JWT exp has whole seconds:
// a token lives between life-1s and life), and a function listing what it
// minted.
func shortTokens(srv *inngestrt.Server, channel string, life time.Duration, topics ...string) (func(context.Context) (inngest.Token, error), func() []inngest.Token) {
	var (
		mu     sync.Mutex
		minted []inngest.Token
	)
	fetch := func(ctx context.Context) (inngest.Token, error) {
		ts := make([]rtserver.Topic, 0, len(topics))
		for _, name := range topics {
			ts = append(ts, rtserver.Topic{Kind: streamingtypes.TopicKindRun, EnvID: inngestrt.EnvID, Channel: channel, Name: name})
		}
		jwt, err := rtserver.NewJWT(ctx, srv.JWTSecret(), inngestrt.AccountID, inngestrt.EnvID, ts, rtserver.NewJWTOpts{Expiry: &life})
		if err != nil {
			return inngest.Token{}, err
		}
		exp, err := expOf(jwt)
		if err != nil {
			return inngest.Token{}, err
		}
		tok := inngest.Token{JWT: jwt, Channel: channel, Topics: slices.Clone(topics), Expires: exp}
		mu.Lock()
		minted = append(minted, tok)
		mu.Unlock()
		return tok, nil
	}
	list := func() []inngest.Token {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(minted)
	}
	return fetch, list
}

// expOf reads a JWT's exp claim.
func expOf(jwt string) (time.Time, error) {
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return time.Time{}, errors.New("not a JWT")
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return time.Time{}, err
	}
	var claims struct {
		Exp int64 `json:"exp"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil {
		return time.Time{}, err
	}
	return time.Unix(claims.Exp, 0), nil
}

// restartInngest starts a server where old listened, with its options: the
// same address, JWT secret and signing keys, as a restarted Inngest
// keeps. It waits for the address while a connection of the old server
// still holds it.
func restartInngest(t testing.TB, old *inngestrt.Server, opts inngestrt.Options) *inngestrt.Server {
	t.Helper()
	opts.Addr = strings.TrimPrefix(old.URL(), "http://")
	opts.JWTSecret = old.JWTSecret()
	if opts.Logf == nil {
		opts.Logf = t.Logf
	}
	s, err := inngestrt.Start(context.Background(), opts) // waits while the address is still in use
	if err != nil {
		t.Fatalf("restarting the Inngest server on %s: %v", opts.Addr, err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	return s
}
