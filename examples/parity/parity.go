package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"go.uber.org/zap"

	"github.com/coursebuilder/realtime-go/broadcast"
	"github.com/coursebuilder/realtime-go/flags"
	"github.com/coursebuilder/realtime-go/harness/inngestrt"
	"github.com/coursebuilder/realtime-go/harness/partykit"
	"github.com/coursebuilder/realtime-go/legacyparty"
	"github.com/coursebuilder/realtime-go/realtime"
	"github.com/coursebuilder/realtime-go/realtime/inngest"
)

// Defaults of [Config].
const (
	DefaultLate  = time.Second
	DefaultQuiet = 300 * time.Millisecond
)

// transports in report order: the baseline first.
var transports = []string{broadcast.TransportPartyKit, broadcast.TransportInngest}

// Event is one recorded notification: a line of the fixture.
type Event struct {
	Room      string          `json:"room"`
	Name      string          `json:"name"`
	RequestID string          `json:"requestId"`
	Body      json.RawMessage `json:"body"`
}

// Message is the event as the pipeline publishes it, its request id (unique
// in a fixture) as its ID. The body goes out as it was recorded
// (encoding/json compacts it and escapes <, > and &).
func (e Event) Message() realtime.Message {
	body := e.Body
	if body == nil {
		body = json.RawMessage("null")
	}
	return realtime.Message{Room: e.Room, Name: e.Name, RequestID: e.RequestID, Body: body, ID: e.RequestID}
}

// LoadEvents reads a JSON Lines fixture: one {"room","name","requestId",
// "body"} object per line; blank lines and lines starting with # are
// skipped. Every event must encode (realtime.Message.Encode), and request
// ids must be unique, since they are what deliveries are matched by.
func LoadEvents(r io.Reader) ([]Event, error) {
	var events []Event
	seen := map[string]int{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), realtime.MaxEnvelopeBytes+1<<10)
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		var e Event
		dec := json.NewDecoder(bytes.NewReader(line))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&e); err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		if e.RequestID == "" {
			return nil, fmt.Errorf("line %d: no requestId (deliveries are matched by it)", n)
		}
		if prev, dup := seen[e.RequestID]; dup {
			return nil, fmt.Errorf("line %d: requestId %q already on line %d", n, e.RequestID, prev)
		}
		seen[e.RequestID] = n
		if _, err := e.Message().Encode(); err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		events = append(events, e)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(events) == 0 {
		return nil, errors.New("no events")
	}
	return events, nil
}

// Config is what [Replay] needs: the events and the two running servers.
type Config struct {
	Events []Event
	// Inngest is the Inngest realtime endpoint; SigningKey one of its keys.
	Inngest    *inngestrt.Server
	SigningKey string
	// PartyKit is the PartyKit dev server.
	PartyKit *partykit.Server
	// Late is the delivery latency, from the start of the event's
	// publish, above which a delivery is reported late. Defaults to
	// DefaultLate (1s).
	Late time.Duration
	// Wait is how long, after the last publish, deliveries still missing
	// are waited for; what comes later is missing. Defaults to 2×Late+1s.
	Wait time.Duration
	// Quiet is how long the subscribers keep listening once every delivery
	// arrived, to see duplicates. Defaults to DefaultQuiet (300ms).
	Quiet time.Duration
	// Interval separates the publishes; 0 publishes the next as soon as
	// Broadcast.Publish returned.
	Interval time.Duration
	// Logger receives the Broadcast's per-transport lines. Defaults to
	// zap.NewNop().
	Logger *zap.Logger
	// Resolver gives the mode of each event's scope, as the app's does
	// (the command passes a flags.Evaluator over the app's flags). Each
	// event is published in the mode it gives at the time, and each
	// transport is checked against that mode: it must deliver the event
	// when the mode publishes to it, and must not when it does not.
	// Defaults to flags.Fixed(flags.Shadow): both transports.
	Resolver flags.Resolver
}

// Kind is a kind of mismatch.
type Kind string

// The mismatches a replay reports.
const (
	// Missing: the transport did not deliver the event within Wait.
	Missing Kind = "missing"
	// Duplicated: the transport delivered it more than once.
	Duplicated Kind = "duplicated"
	// Late: the first copy arrived after Late.
	Late Kind = "late"
	// Differs: a copy does not parse to the envelope's JSON value.
	Differs Kind = "differs"
	// Unexpected: a delivery in a room that published no event with its
	// request id, or on a transport the event's mode does not publish to.
	Unexpected Kind = "unexpected"
)

// Mismatch is one difference between what was published and what a
// transport delivered.
type Mismatch struct {
	Kind      Kind
	Transport string
	Room      string
	RequestID string
	Name      string
	// Detail says more: the copies, the latency, the first difference, or
	// the provider's publish error behind a missing delivery.
	Detail string
}

func (m Mismatch) String() string {
	s := fmt.Sprintf("%-10s %-8s room=%s requestId=%s", strings.ToUpper(string(m.Kind)), m.Transport, m.Room, m.RequestID)
	if m.Name != "" {
		s += " name=" + m.Name
	}
	if m.Detail != "" {
		s += ": " + m.Detail
	}
	return s
}

// Stats summarizes one transport in one room.
type Stats struct {
	// Expected deliveries (the room's events) and Delivered ones (events
	// received at least once).
	Expected, Delivered int
	// SameBytes counts deliveries whose first copy is the envelope byte
	// for byte; the others were re-spelled (or differ).
	SameBytes int
	// P50 and Max of the first copies' latencies.
	P50, Max time.Duration
}

// RoomReport is the replay of one room (Inngest channel).
type RoomReport struct {
	Room, Channel string
	Events        int
	// Modes is the mode each scope of the room's events was published in,
	// in the order of first appearance (a flip during the replay shows as
	// "shadow,legacy").
	Modes      []ScopeModes
	Stats      map[string]*Stats
	Mismatches []Mismatch
}

// ScopeModes is the modes one scope was published in, in order.
type ScopeModes struct {
	Scope flags.Scope
	Modes []flags.Mode
}

func (sm ScopeModes) String() string {
	parts := make([]string, len(sm.Modes))
	for i, m := range sm.Modes {
		parts[i] = m.String()
	}
	return string(sm.Scope) + "=" + strings.Join(parts, ",")
}

// Report is the outcome of a replay.
type Report struct {
	Late   time.Duration
	Events int
	Rooms  []RoomReport
	// Duration is how long publishing all events took.
	Duration time.Duration
}

// Mismatches returns every room's mismatches, room by room.
func (r *Report) Mismatches() []Mismatch {
	var all []Mismatch
	for _, rr := range r.Rooms {
		all = append(all, rr.Mismatches...)
	}
	return all
}

// OK reports whether the transports delivered every event once, in time
// and intact, and nothing else.
func (r *Report) OK() bool { return len(r.Mismatches()) == 0 }

// Print writes the report per room, then a summary and PASS or FAIL.
func (r *Report) Print(w io.Writer) {
	count := map[Kind]int{}
	expected, delivered := 0, 0
	for _, rr := range r.Rooms {
		modes := make([]string, len(rr.Modes))
		for i, m := range rr.Modes {
			modes[i] = m.String()
		}
		fmt.Fprintf(w, "\nroom %s (channel %s): %d events; modes %s\n", rr.Room, rr.Channel, rr.Events, strings.Join(modes, " "))
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for _, t := range transports {
			s := rr.Stats[t]
			expected += s.Expected
			delivered += s.Delivered
			if s.Expected == 0 {
				fmt.Fprintf(tw, "  %s\tnot published to in these modes\t\t\n", t)
				continue
			}
			spelling := fmt.Sprintf("%d same bytes", s.SameBytes)
			if d := s.Delivered - s.SameBytes; d > 0 {
				spelling += fmt.Sprintf(", %d re-spelled", d)
			}
			fmt.Fprintf(tw, "  %s\t%d/%d delivered\t%s\tlatency p50 %v max %v\n", t, s.Delivered, s.Expected, spelling, roundLatency(s.P50), roundLatency(s.Max))
		}
		_ = tw.Flush()
		if len(rr.Mismatches) == 0 {
			fmt.Fprintln(w, "  ok")
		}
		for _, m := range rr.Mismatches {
			count[m.Kind]++
			fmt.Fprintf(w, "  %s\n", m)
		}
	}
	fmt.Fprintf(w, "\nsummary: %d events in %d rooms, %d/%d deliveries; %d missing, %d duplicated, %d late (> %v), %d differing, %d unexpected\n",
		r.Events, len(r.Rooms), delivered, expected, count[Missing], count[Duplicated], count[Late], r.Late, count[Differs], count[Unexpected])
	if r.OK() {
		fmt.Fprintln(w, "PASS: each transport delivered every event its scope's mode publishes to it, intact, once and nothing else")
	} else {
		fmt.Fprintln(w, "FAIL")
	}
}

func roundLatency(d time.Duration) time.Duration {
	if d >= time.Millisecond {
		return d.Round(100 * time.Microsecond)
	}
	return d.Round(time.Microsecond)
}

// receipt is one message a subscriber received.
type receipt struct {
	transport, room string
	requestID       string
	data            []byte
	at              time.Time
}

// collector gathers receipts without ever blocking a reader.
type collector struct {
	mu       sync.Mutex
	receipts []receipt
	notify   chan struct{}
}

func (c *collector) add(transport, room string, data []byte, at time.Time) {
	var env struct {
		RequestID string `json:"requestId"`
	}
	if json.Unmarshal(data, &env) != nil {
		return // not an envelope (PartyKit relays websocket chatter as "<id>: text")
	}
	c.mu.Lock()
	c.receipts = append(c.receipts, receipt{transport, room, env.RequestID, append([]byte(nil), data...), at})
	c.mu.Unlock()
	select {
	case c.notify <- struct{}{}:
	default:
	}
}

func (c *collector) snapshot() []receipt {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.receipts)
}

// recording is a provider that remembers the error of each request id.
type recording struct {
	p    realtime.Provider
	mu   sync.Mutex
	errs map[string]error
}

func (r *recording) Publish(ctx context.Context, msg realtime.Message) error {
	err := r.p.Publish(ctx, msg)
	if err != nil {
		r.mu.Lock()
		r.errs[msg.RequestID] = err
		r.mu.Unlock()
	}
	return err
}

func (r *recording) errOf(requestID string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.errs[requestID]
}

// room is the events of one room, in fixture order.
type room struct {
	name   string
	events []Event
}

func groupByRoom(events []Event) []*room {
	var rooms []*room
	idx := map[string]*room{}
	for _, e := range events {
		r, ok := idx[e.Room]
		if !ok {
			r = &room{name: e.Room}
			idx[e.Room] = r
			rooms = append(rooms, r)
		}
		r.events = append(r.events, e)
	}
	return rooms
}

// Replay subscribes to every room of cfg.Events on both transports, plays
// the events in order through a broadcast.Broadcast whose mode comes from
// cfg.Resolver, and reports per room what each transport delivered against
// what the mode of each event's scope publishes to it. It returns an error
// only when the replay could not run (providers, subscriptions);
// mismatches are in the Report.
func Replay(ctx context.Context, cfg Config) (*Report, error) {
	if len(cfg.Events) == 0 || cfg.Inngest == nil || cfg.PartyKit == nil {
		return nil, errors.New("parity: Replay needs events, an Inngest endpoint and a PartyKit server")
	}
	if cfg.Late <= 0 {
		cfg.Late = DefaultLate
	}
	if cfg.Wait <= 0 {
		cfg.Wait = 2*cfg.Late + time.Second
	}
	if cfg.Quiet <= 0 {
		cfg.Quiet = DefaultQuiet
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.Resolver == nil {
		cfg.Resolver = flags.Fixed(flags.Shadow)
	}

	p, err := inngest.New(&inngest.Options{BaseURL: cfg.Inngest.URL(), SigningKey: cfg.SigningKey, ChannelSecret: rand.Text() + rand.Text()})
	if err != nil {
		return nil, err
	}
	defer p.Close()
	party, err := legacyparty.New(&legacyparty.Options{BaseURL: cfg.PartyKit.URL()})
	if err != nil {
		return nil, err
	}
	defer party.Close()

	// Subscribe first: a browser per room on each transport. The harness's
	// inngestrt Subscribe returns once the server has subscribed the
	// connection (Inngest Realtime keeps no history); the party registers a
	// connection before its handshake completes.
	rooms := groupByRoom(cfg.Events)
	col := &collector{notify: make(chan struct{}, 1)}
	var readers sync.WaitGroup
	var closers []func() error
	defer func() {
		for _, c := range closers {
			_ = c()
		}
		readers.Wait()
	}()
	channels := map[string]string{}
	for _, r := range rooms {
		var names []string
		for _, e := range r.events {
			if !slices.Contains(names, e.Name) {
				names = append(names, e.Name)
			}
		}
		tok, err := p.SubscriptionToken(ctx, r.name, names)
		if err != nil {
			return nil, fmt.Errorf("parity: room %s: %w", r.name, err)
		}
		channels[r.name] = tok.Channel
		isub, err := cfg.Inngest.Subscribe(ctx, tok.JWT)
		if err != nil {
			return nil, fmt.Errorf("parity: room %s: %w", r.name, err)
		}
		closers = append(closers, isub.Close)
		psub, err := cfg.PartyKit.Subscribe(ctx, r.name)
		if err != nil {
			return nil, fmt.Errorf("parity: room %s: %w", r.name, err)
		}
		closers = append(closers, psub.Close)
		readers.Add(2)
		go func(room string) {
			defer readers.Done()
			for {
				m, err := isub.NextData(context.Background())
				if err != nil {
					return
				}
				col.add(broadcast.TransportInngest, room, m.Data, time.Now())
			}
		}(r.name)
		go func(room string) {
			defer readers.Done()
			for {
				b, err := psub.Next(context.Background())
				if err != nil {
					return
				}
				col.add(broadcast.TransportPartyKit, room, b, time.Now())
			}
		}(r.name)
	}

	// Play the events through the facade, each in the mode of its scope.
	rec := map[string]*recording{
		broadcast.TransportPartyKit: {p: party, errs: map[string]error{}},
		broadcast.TransportInngest:  {p: p, errs: map[string]error{}},
	}
	b, err := broadcast.New(rec[broadcast.TransportPartyKit], rec[broadcast.TransportInngest],
		&broadcast.Options{Resolver: cfg.Resolver, Logger: cfg.Logger})
	if err != nil {
		return nil, err
	}
	starts := make(map[string]time.Time, len(cfg.Events))
	modes := make(map[string]flags.Mode, len(cfg.Events))
	began := time.Now()
	var last time.Time
	for i, e := range cfg.Events {
		if i > 0 && cfg.Interval > 0 {
			select {
			case <-ctx.Done():
			case <-time.After(cfg.Interval):
			}
		}
		if err := ctx.Err(); err != nil {
			_ = b.Close(context.Background())
			return nil, err
		}
		// The mode Publish uses: Route is the one answer the Broadcast
		// gives Publish, the token endpoint and the logs.
		modes[e.RequestID] = b.Route(ctx, e.Room, e.Name).Mode
		last = time.Now()
		starts[e.RequestID] = last
		_ = b.Publish(ctx, e.Message()) // each transport's error is recorded
	}
	published := time.Since(began)

	// Wait for every delivery the modes call for, or Wait after the last
	// publish; then Quiet more for duplicates and unexpected ones.
	complete := func() bool {
		got := map[[2]string]bool{}
		for _, r := range col.snapshot() {
			got[[2]string{r.transport, r.requestID}] = true
		}
		for _, e := range cfg.Events {
			for _, t := range transports {
				if publishesTo(modes[e.RequestID], t) && !got[[2]string{t, e.RequestID}] {
					return false
				}
			}
		}
		return true
	}
	deadline := time.NewTimer(time.Until(last.Add(cfg.Wait)))
	defer deadline.Stop()
wait:
	for !complete() {
		select {
		case <-ctx.Done():
			break wait
		case <-deadline.C:
			break wait
		case <-col.notify:
		}
	}
	select {
	case <-ctx.Done():
	case <-time.After(cfg.Quiet):
	}
	closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 6*time.Second)
	_ = b.Close(closeCtx)
	cancel()
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	rep := analyze(rooms, channels, starts, modes, col.snapshot(), rec, cfg.Late)
	rep.Duration = published
	return rep, nil
}

// publishesTo reports whether mode publishes to transport.
func publishesTo(mode flags.Mode, transport string) bool {
	if transport == broadcast.TransportPartyKit {
		return mode.PublishesLegacy()
	}
	return mode.PublishesRealtime()
}

// analyze matches the receipts to the events, each against the mode it was
// published in (modes, by request id).
func analyze(rooms []*room, channels map[string]string, starts map[string]time.Time, modes map[string]flags.Mode, receipts []receipt, rec map[string]*recording, late time.Duration) *Report {
	rep := &Report{Late: late}
	byKey := map[[3]string][]receipt{} // transport, room, request id
	for _, r := range receipts {
		k := [3]string{r.transport, r.room, r.requestID}
		byKey[k] = append(byKey[k], r)
	}
	for _, r := range rooms {
		rr := RoomReport{Room: r.name, Channel: channels[r.name], Events: len(r.events), Stats: map[string]*Stats{}}
		for _, e := range r.events {
			rr.Modes = addMode(rr.Modes, flags.ScopeOf(e.Name), modes[e.RequestID])
		}
		ids := map[string]bool{}
		for _, t := range transports {
			s := &Stats{}
			rr.Stats[t] = s
			var lat []time.Duration
			for _, e := range r.events {
				ids[e.RequestID] = true
				envelope, _ := e.Message().Encode() // LoadEvents checked it encodes
				got := byKey[[3]string{t, r.name, e.RequestID}]
				mm := func(k Kind, detail string) {
					rr.Mismatches = append(rr.Mismatches, Mismatch{Kind: k, Transport: t, Room: r.name, RequestID: e.RequestID, Name: e.Name, Detail: detail})
				}
				if mode := modes[e.RequestID]; !publishesTo(mode, t) {
					if len(got) > 0 {
						mm(Unexpected, fmt.Sprintf("delivered %d times although %s mode does not publish to %s", len(got), mode, t))
					}
					continue
				}
				s.Expected++
				if len(got) == 0 {
					detail := ""
					if err := rec[t].errOf(e.RequestID); err != nil {
						detail = "publish failed: " + err.Error()
					}
					mm(Missing, detail)
					continue
				}
				s.Delivered++
				d := got[0].at.Sub(starts[e.RequestID])
				lat = append(lat, d)
				if bytes.Equal(got[0].data, envelope) {
					s.SameBytes++
				}
				if len(got) > 1 {
					mm(Duplicated, fmt.Sprintf("%d copies", len(got)))
				}
				if d > late {
					mm(Late, fmt.Sprintf("delivered after %v", roundLatency(d)))
				}
				for i, g := range got {
					if diff := jsonDiff(envelope, g.data); diff != "" {
						mm(Differs, fmt.Sprintf("copy %d: %s", i+1, diff))
					}
				}
			}
			if len(lat) > 0 {
				slices.Sort(lat)
				s.P50, s.Max = lat[(len(lat)-1)/2], lat[len(lat)-1]
			}
		}
		// Deliveries that belong to no event of this room.
		var extra []receipt
		for _, rc := range receipts {
			if rc.room == r.name && !ids[rc.requestID] {
				extra = append(extra, rc)
			}
		}
		for _, rc := range extra {
			name := ""
			if m, err := realtime.DecodeEnvelope(rc.data); err == nil {
				name = m.Name
			}
			rr.Mismatches = append(rr.Mismatches, Mismatch{Kind: Unexpected, Transport: rc.transport, Room: r.name, RequestID: rc.requestID, Name: name,
				Detail: "no event of this room has this request id"})
		}
		rep.Rooms = append(rep.Rooms, rr)
		rep.Events += len(r.events)
	}
	return rep
}

// addMode appends mode to scope's modes unless it is the last one there.
func addMode(ms []ScopeModes, scope flags.Scope, mode flags.Mode) []ScopeModes {
	for i := range ms {
		if ms[i].Scope == scope {
			if ms[i].Modes[len(ms[i].Modes)-1] != mode {
				ms[i].Modes = append(ms[i].Modes, mode)
			}
			return ms
		}
	}
	return append(ms, ScopeModes{Scope: scope, Modes: []flags.Mode{mode}})
}

// jsonDiff compares two JSON documents as values, numbers as float64 the
// way a browser's JSON.parse reads them, and describes the first
// difference ("" when they are equal).
func jsonDiff(want, got []byte) string {
	var w, g any
	if err := json.Unmarshal(want, &w); err != nil {
		return "the envelope does not parse: " + err.Error()
	}
	if err := json.Unmarshal(got, &g); err != nil {
		return fmt.Sprintf("not JSON: %q", clip(string(got)))
	}
	return diffValue("$", w, g)
}

func diffValue(path string, w, g any) string {
	switch wv := w.(type) {
	case map[string]any:
		gv, ok := g.(map[string]any)
		if !ok {
			return fmt.Sprintf("%s: want an object, got %s", path, show(g))
		}
		keys := make([]string, 0, len(wv)+len(gv))
		for k := range wv {
			keys = append(keys, k)
		}
		for k := range gv {
			if _, ok := wv[k]; !ok {
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		for _, k := range keys {
			p := path + "." + k
			wx, inW := wv[k]
			gx, inG := gv[k]
			switch {
			case !inG:
				return p + ": missing"
			case !inW:
				return fmt.Sprintf("%s: unexpected %s", p, show(gx))
			}
			if d := diffValue(p, wx, gx); d != "" {
				return d
			}
		}
		return ""
	case []any:
		gv, ok := g.([]any)
		if !ok {
			return fmt.Sprintf("%s: want an array, got %s", path, show(g))
		}
		for i := range min(len(wv), len(gv)) {
			if d := diffValue(path+"["+strconv.Itoa(i)+"]", wv[i], gv[i]); d != "" {
				return d
			}
		}
		if len(wv) != len(gv) {
			return fmt.Sprintf("%s: want %d elements, got %d", path, len(wv), len(gv))
		}
		return ""
	default:
		if !reflect.DeepEqual(w, g) {
			return fmt.Sprintf("%s: want %s, got %s", path, show(w), show(g))
		}
		return ""
	}
}

func show(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return clip(string(b))
}

func clip(s string) string {
	if len(s) <= 80 {
		return s
	}
	cut := 77
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}
