package e2e_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/coursebuilder/realtime-go/chunkstream"
	"github.com/coursebuilder/realtime-go/harness/inngestrt"
	"github.com/coursebuilder/realtime-go/internal/transport"
	"github.com/coursebuilder/realtime-go/legacyparty"
	"github.com/coursebuilder/realtime-go/realtime"
	"github.com/coursebuilder/realtime-go/realtime/inngest"
)

// Streamed responses (package chunkstream) end to end: a subscriber on each
// real transport reassembles exactly the text that was streamed.

// completion returns a long, seeded pseudo-completion with everything that
// is easy to damage: quotes, backslashes, HTML, control characters, U+2028,
// multi-byte characters and the end marker itself inside the text.
func completion(seed uint64, n int) string {
	palette := []string{
		"The ", "video ", "is ", "ready", ". ", "\n", "\t", `"quoted"`, `C:\path\`, "<b>", "&amp;", "\x01",
		"\u2028", "é", "ß", "字幕", "😀", "👍🏽", `\ok`, "`code`", "—",
	}
	rng := rand.New(rand.NewPCG(seed, 1))
	var sb strings.Builder
	for sb.Len() < n {
		sb.WriteString(palette[rng.IntN(len(palette))])
	}
	return sb.String()
}

// streamDeltas publishes text to s in deltas of random sizes cut at any
// byte, as a model would deliver them (minus the timing), then closes s.
func streamDeltas(t testing.TB, s *chunkstream.Stream, text string) {
	t.Helper()
	rng := rand.New(rand.NewPCG(uint64(len(text)), 2))
	for len(text) > 0 {
		n := min(len(text), 1+rng.IntN(16))
		if err := s.PublishChunk(text[:n]); err != nil {
			t.Fatalf("PublishChunk: %v", err)
		}
		text = text[n:]
	}
	if err := s.Close(ctxT(t)); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// newChunkStream starts a stream for room over p with a short interval and
// small messages, so that the text spans many messages.
func newChunkStream(t testing.TB, p realtime.Provider, room string, opts chunkstream.Options) *chunkstream.Stream {
	t.Helper()
	if opts.Interval == 0 {
		opts.Interval = 2 * time.Millisecond
	}
	s, err := chunkstream.New(ctxT(t), p, room, &opts)
	if err != nil {
		t.Fatalf("chunkstream.New: %v", err)
	}
	return s
}

// chunkNumber splits the id of a chunk message, "<stream uuid>.<n>", into
// the stream's id and n, or fails t.
func chunkNumber(t testing.TB, id string) (stream string, n uint64) {
	t.Helper()
	stream, num, ok := strings.Cut(id, ".")
	if _, err := uuid.Parse(stream); !ok || err != nil {
		t.Fatalf("chunk message id %q is not <stream uuid>.<n>", id)
	}
	n, err := strconv.ParseUint(num, 10, 64)
	if err != nil || strconv.FormatUint(n, 10) != num {
		t.Fatalf("chunk message id %q does not end in a number", id)
	}
	return stream, n
}

// reassembleEnvelopes reads envelopes from sub until the end marker and
// returns the text and the number of messages, checking what a client
// checks: the ids of one stream numbered from 1 in order, and no seq (no
// replay log between the stream and its provider).
func reassembleEnvelopes(t testing.TB, what string, sub subscriber, room string, maxEnvelope int) (string, int) {
	t.Helper()
	var sb strings.Builder
	var stream string
	for n := uint64(1); ; n++ {
		raw, err := sub.Next(ctxT(t))
		if err != nil {
			t.Fatalf("%s: waiting for message %d: %v", what, n, err)
		}
		if maxEnvelope > 0 && len(raw) > maxEnvelope+maxEnvelope/2 {
			t.Fatalf("%s: message %d: frame of %d bytes", what, n, len(raw))
		}
		env, err := realtime.DecodeEnvelope(raw)
		if err != nil {
			t.Fatalf("%s: %v: %s", what, err, raw)
		}
		s, got := chunkNumber(t, env.ID)
		if n == 1 {
			stream = s
		}
		if s != stream || got != n || env.Seq != 0 || env.RequestID != room || env.Name != "ai.message" {
			t.Fatalf("%s: got id %s, seq %d, requestId %q, name %q; want id %s.%d, no seq: %s", what, env.ID, env.Seq, env.RequestID, env.Name, stream, n, raw)
		}
		var body string
		if err := json.Unmarshal(env.Body.(json.RawMessage), &body); err != nil {
			t.Fatalf("%s: message %d: body is not a string: %s", what, n, raw)
		}
		if body == chunkstream.EndMarker {
			return sb.String(), int(n)
		}
		sb.WriteString(body)
	}
}

func TestChunkstreamPartyKit(t *testing.T) {
	party := sharedParty(t)
	rm := room("chunkstream-party")
	sub := mustSubscribeParty(t, party, rm)
	text := completion(1, 20_000)
	s := newChunkStream(t, newParty(t, legacyparty.Options{BaseURL: party.URL()}), rm, chunkstream.Options{MaxMessageBytes: 1024})
	streamDeltas(t, s, text)

	got, n := reassembleEnvelopes(t, "partykit subscriber", sub, rm, 1024)
	if got != text {
		t.Fatalf("partykit subscriber reassembled %d bytes that differ from the %d streamed", len(got), len(text))
	}
	t.Logf("%d bytes in %d messages", len(text), n)
	expectQuiet(t, map[string]subscriber{"partykit subscriber": sub})
}

func TestChunkstreamInngest(t *testing.T) {
	irt, key := sharedInngest(t)
	rm := room("chunkstream-inngest")
	sub := mustSubscribeInngest(t, irt, rm, "ai.message")
	text := completion(2, 20_000)
	s := newChunkStream(t, newInngest(t, inngest.Options{BaseURL: irt.URL(), SigningKey: key}), rm, chunkstream.Options{MaxMessageBytes: 1024})
	streamDeltas(t, s, text)

	got, n := reassembleEnvelopes(t, "inngest subscriber", sub, rm, 1024)
	if got != text {
		t.Fatalf("inngest subscriber reassembled %d bytes that differ from the %d streamed", len(got), len(text))
	}
	t.Logf("%d bytes in %d messages", len(text), n)
	expectQuiet(t, map[string]subscriber{"inngest subscriber": sub})
}

// datastreams collects the datastream messages of one subscription.
type datastreams struct {
	order  []string // stream ids, in the order the streams started
	data   map[string]*strings.Builder
	ended  map[string]bool
	chunks int
}

// add takes one message and reports whether it was a datastream message.
func (d *datastreams) add(t testing.TB, m inngestrt.Message, channel, topic string) bool {
	t.Helper()
	if d.data == nil {
		d.data, d.ended = map[string]*strings.Builder{}, map[string]bool{}
	}
	switch m.Kind {
	case inngestrt.KindDataStreamStart, inngestrt.KindDataStreamEnd:
		if m.Channel != channel || m.Topic != topic {
			t.Fatalf("%s for %s/%s, want %s/%s: %s", m.Kind, m.Channel, m.Topic, channel, topic, m.Raw)
		}
		var id string
		if err := json.Unmarshal(m.Data, &id); err != nil || id == "" {
			t.Fatalf("%s without a stream id: %s", m.Kind, m.Raw)
		}
		if m.Kind == inngestrt.KindDataStreamStart {
			if _, dup := d.data[id]; dup {
				t.Fatalf("stream %s started twice", id)
			}
			d.order = append(d.order, id)
			d.data[id] = &strings.Builder{}
		} else {
			if d.data[id] == nil {
				t.Fatalf("stream %s ended before it started", id)
			}
			d.ended[id] = true
		}
	case inngestrt.KindChunk:
		b, ok := d.data[m.StreamID]
		if !ok || d.ended[m.StreamID] {
			t.Fatalf("chunk outside its stream: %s", m.Raw)
		}
		var s string
		if err := json.Unmarshal(m.Data, &s); err != nil {
			t.Fatalf("chunk data is not a string: %s", m.Raw)
		}
		if len(s) > transport.StreamChunkBytes {
			t.Fatalf("chunk of %d bytes", len(s))
		}
		b.WriteString(s)
		d.chunks++
	default:
		return false
	}
	return true
}

// done reports whether every stream that started has ended.
func (d *datastreams) done() bool { return len(d.order) > 0 && len(d.ended) == len(d.order) }

// text is the chunks of every stream, the streams in the order they started.
func (d *datastreams) text() string {
	var sb strings.Builder
	for _, id := range d.order {
		sb.WriteString(d.data[id].String())
	}
	return sb.String()
}

// TestInngestPublishStream: Inngest's streaming publish with a text longer
// than one stream may carry (1,000 reads of at most 1 KiB) arrives whole, as
// several datastreams. The text is ASCII: the server cuts at its own read
// boundaries and would damage a multi-byte character cut in two (see
// TestChunkstreamInngestTextStream for text that is not).
func TestInngestPublishStream(t *testing.T) {
	irt, key := sharedInngest(t)
	rm := room("publish-stream")
	sub := mustSubscribeInngest(t, irt, rm, "ai.message")
	p := newInngest(t, inngest.Options{BaseURL: irt.URL(), SigningKey: key})
	var sb strings.Builder
	for i := 0; sb.Len() < 1100<<10; i++ {
		fmt.Fprintf(&sb, "line %d: the quick brown fox jumps over the lazy dog.\n", i)
	}
	text := sb.String()
	if err := p.PublishStream(ctxT(t), rm, "ai.message", strings.NewReader(text)); err != nil {
		t.Fatalf("PublishStream: %v", err)
	}

	var d datastreams
	for !d.done() || len(d.text()) < len(text) {
		m, err := sub.sub.NextKind(ctxT(t), inngestrt.KindDataStreamStart, inngestrt.KindChunk, inngestrt.KindDataStreamEnd, inngestrt.KindData)
		if err != nil {
			t.Fatalf("waiting for the stream (%d of %d bytes, %d streams): %v", len(d.text()), len(text), len(d.order), err)
		}
		if !d.add(t, m, rm, "ai.message") {
			t.Fatalf("unexpected message: %s", m.Raw)
		}
	}
	if got := d.text(); got != text {
		t.Fatalf("reassembled %d bytes that differ from the %d published", len(got), len(text))
	}
	if len(d.order) < 3 {
		t.Fatalf("%d streams; 1.1 MiB takes at least 3 of %d writes", len(d.order), transport.StreamChunkBudget)
	}
	t.Logf("%d bytes in %d streams, %d chunks", len(text), len(d.order), d.chunks)
}

// TestChunkstreamInngestTextStream: a chunkstream in text-stream mode over
// Inngest; the subscriber decodes the chunks of every datastream, then sees
// the end marker as an ordinary message.
func TestChunkstreamInngestTextStream(t *testing.T) {
	irt, key := sharedInngest(t)
	rm := room("chunkstream-textstream")
	sub := mustSubscribeInngest(t, irt, rm, "ai.message")
	// Escaped, this takes more than one stream's budget of writes.
	text := completion(3, 400_000)
	s := newChunkStream(t, newInngest(t, inngest.Options{BaseURL: irt.URL(), SigningKey: key}), rm, chunkstream.Options{TextStream: true})
	streamDeltas(t, s, text)

	var d datastreams
	for {
		m, err := sub.sub.NextKind(ctxT(t), inngestrt.KindDataStreamStart, inngestrt.KindChunk, inngestrt.KindDataStreamEnd, inngestrt.KindData)
		if err != nil {
			t.Fatalf("waiting for the stream (%d streams, %d chunks so far): %v", len(d.order), d.chunks, err)
		}
		if d.add(t, m, rm, "ai.message") {
			continue
		}
		env, err := realtime.DecodeEnvelope(m.Data)
		if err != nil {
			t.Fatalf("%v: %s", err, m.Raw)
		}
		if _, n := chunkNumber(t, env.ID); string(env.Body.(json.RawMessage)) != `"\\ok"` || n != 1 || env.Seq != 0 {
			t.Fatalf("the only message should be the end marker, the stream's message 1: %s", m.Data)
		}
		break
	}
	if !d.done() {
		t.Fatalf("end marker before the end of the streams")
	}
	var got string // decoded as chunkstream's doc says for text-stream mode
	if err := json.Unmarshal([]byte(`"`+d.text()+`"`), &got); err != nil {
		t.Fatal(err)
	}
	if got != text {
		t.Fatalf("reassembled %d bytes that differ from the %d streamed", len(got), len(text))
	}
	if len(d.order) < 2 {
		t.Fatalf("%d stream; the text was meant to take several", len(d.order))
	}
	t.Logf("%d bytes in %d streams, %d chunks", len(text), len(d.order), d.chunks)
}
