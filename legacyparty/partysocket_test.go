package legacyparty_test

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/coursebuilder/realtime-go/legacyparty"
	"github.com/coursebuilder/realtime-go/realtime"
)

// partysocketRooms is, for each room id, the path segment of the websocket
// URL partysocket builds for it ("" when that URL does not carry the room as
// one segment of its own, so the socket joins another room or none). It was
// produced by Node.js 20's WHATWG URL parser, the one browsers implement,
// from partysocket 1.3.0's template (dist/index.js, getPartyInfo):
//
//	new URL(`ws://127.0.0.1:1999/parties/main/${room}?_pk=x`)
//
// and checked against the real partykit dev server (harness/e2e
// TestPartyKitRooms).
var partysocketRooms = []struct{ room, segment string }{
	{"a b", "a%20b"},
	{"a!b", "a!b"},
	{"a\"b", "a%22b"},
	{"a#b", ""},
	{"a$b", "a$b"},
	{"a%b", "a%b"},
	{"a&b", "a&b"},
	{"a'b", "a'b"},
	{"a(b", "a(b"},
	{"a)b", "a)b"},
	{"a*b", "a*b"},
	{"a+b", "a+b"},
	{"a,b", "a,b"},
	{"a-b", "a-b"},
	{"a.b", "a.b"},
	{"a/b", ""},
	{"a0b", "a0b"},
	{"a1b", "a1b"},
	{"a2b", "a2b"},
	{"a3b", "a3b"},
	{"a4b", "a4b"},
	{"a5b", "a5b"},
	{"a6b", "a6b"},
	{"a7b", "a7b"},
	{"a8b", "a8b"},
	{"a9b", "a9b"},
	{"a:b", "a:b"},
	{"a;b", "a;b"},
	{"a<b", "a%3Cb"},
	{"a=b", "a=b"},
	{"a>b", "a%3Eb"},
	{"a?b", ""},
	{"a@b", "a@b"},
	{"aAb", "aAb"},
	{"aBb", "aBb"},
	{"aCb", "aCb"},
	{"aDb", "aDb"},
	{"aEb", "aEb"},
	{"aFb", "aFb"},
	{"aGb", "aGb"},
	{"aHb", "aHb"},
	{"aIb", "aIb"},
	{"aJb", "aJb"},
	{"aKb", "aKb"},
	{"aLb", "aLb"},
	{"aMb", "aMb"},
	{"aNb", "aNb"},
	{"aOb", "aOb"},
	{"aPb", "aPb"},
	{"aQb", "aQb"},
	{"aRb", "aRb"},
	{"aSb", "aSb"},
	{"aTb", "aTb"},
	{"aUb", "aUb"},
	{"aVb", "aVb"},
	{"aWb", "aWb"},
	{"aXb", "aXb"},
	{"aYb", "aYb"},
	{"aZb", "aZb"},
	{"a[b", "a[b"},
	{"a\\b", ""},
	{"a]b", "a]b"},
	{"a^b", "a^b"},
	{"a_b", "a_b"},
	{"a`b", "a%60b"},
	{"aab", "aab"},
	{"abb", "abb"},
	{"acb", "acb"},
	{"adb", "adb"},
	{"aeb", "aeb"},
	{"afb", "afb"},
	{"agb", "agb"},
	{"ahb", "ahb"},
	{"aib", "aib"},
	{"ajb", "ajb"},
	{"akb", "akb"},
	{"alb", "alb"},
	{"amb", "amb"},
	{"anb", "anb"},
	{"aob", "aob"},
	{"apb", "apb"},
	{"aqb", "aqb"},
	{"arb", "arb"},
	{"asb", "asb"},
	{"atb", "atb"},
	{"aub", "aub"},
	{"avb", "avb"},
	{"awb", "awb"},
	{"axb", "axb"},
	{"ayb", "ayb"},
	{"azb", "azb"},
	{"a{b", "a%7Bb"},
	{"a|b", "a|b"},
	{"a}b", "a%7Db"},
	{"a~b", "a~b"},
	{"é🎬", "%C3%A9%F0%9F%8E%AC"},
	{"%41", "%41"},
	{"a%2Fb", "a%2Fb"},
	{"a%zz", "a%zz"},
	{"a%", "a%"},
	{"a%4", "a%4"},
	{"..", ""},
	{".", ""},
	{"%2e", ""},
	{".%2E", ""},
	{"%2E%2e", ""},
	{"...", "..."},
	{"a..b", "a..b"},
	{"vid_123", "vid_123"},
	{"cm3xk2v1q0000abcd-EF~9.x", "cm3xk2v1q0000abcd-EF~9.x"},
	{" x", "%20x"},
	{"x ", "x%20"},
	{" ", "%E2%80%A8"},
	{"日本", "%E6%97%A5%E6%9C%AC"},
}

// notPostable are rooms partysocket joins under their own id but Go's HTTP
// client cannot post to byte for byte: it escapes | and ^, and cannot send a
// stray %.
var notPostable = map[string]bool{"a|b": true, "a^b": true, "a%b": true, "a%zz": true, "a%": true, "a%4": true}

// partysocketSegment is an independent spelling of what the WHATWG URL
// parser makes of a room in a path: false when it is not one segment of its
// own.
func partysocketSegment(room string) (string, bool) {
	if strings.ContainsAny(room, "/\\?#") {
		return "", false
	}
	var b strings.Builder
	for _, r := range room {
		if r <= 0x20 || r >= 0x7f || strings.ContainsRune("\"<>`{}", r) {
			var buf [utf8.UTFMax]byte
			for _, c := range buf[:utf8.EncodeRune(buf[:], r)] {
				fmt.Fprintf(&b, "%%%02X", c)
			}
			continue
		}
		b.WriteRune(r)
	}
	switch strings.ToLower(b.String()) {
	case ".", "%2e", "..", ".%2e", "%2e.", "%2e%2e":
		return "", false
	}
	return b.String(), true
}

// goCannotSend reports rooms Go's HTTP client cannot put on the wire as
// partysocket spells them.
func goCannotSend(room string) bool {
	if strings.ContainsAny(room, "|^") {
		return true
	}
	for i := 0; i < len(room); i++ {
		if room[i] == '%' && (i+2 >= len(room) || !isHex(room[i+1]) || !isHex(room[i+2])) {
			return true
		}
	}
	return false
}

func isHex(c byte) bool { return strings.IndexByte("0123456789abcdefABCDEF", c) >= 0 }

func TestReferenceSpellingMatchesWHATWG(t *testing.T) {
	for _, tc := range partysocketRooms {
		seg, ok := partysocketSegment(tc.room)
		if !ok {
			seg = ""
		}
		assert.Equal(t, tc.segment, seg, "room %q", tc.room)
	}
}

func TestPublishURLIsPartysocketRoom(t *testing.T) {
	p := newProvider(t, &legacyparty.Options{BaseURL: "http://127.0.0.1:1999"})
	for _, tc := range partysocketRooms {
		u, err := p.PublishURL(tc.room)
		switch {
		case tc.segment == "":
			var ve *realtime.ValidationError
			require.ErrorAs(t, err, &ve, "room %q", tc.room)
			assert.True(t, errors.Is(err, legacyparty.ErrRoomNotRoutable), "room %q: %v", tc.room, err)
			assert.ErrorIs(t, err, realtime.ErrInvalidMessage)
		case notPostable[tc.room]:
			assert.ErrorIs(t, err, legacyparty.ErrRoomNotRoutable, "room %q", tc.room)
		default:
			require.NoError(t, err, "room %q", tc.room)
			assert.Equal(t, "http://127.0.0.1:1999/party/"+tc.segment, u, "room %q", tc.room)
		}
	}
}

func TestPublishRefusesRoomsPartysocketCannotJoin(t *testing.T) {
	rec := newRecorder(t)
	p := newProvider(t, &legacyparty.Options{BaseURL: rec.srv.URL})
	for _, room := range []string{"a/b", "/", "a\\b", "a?b", "?", "a#b", "a|b", "a^b", "50%", "%zz", "%2e", ".%2E", "%2E%2e"} {
		err := publish(t, p, msg(room))
		var ve *realtime.ValidationError
		require.ErrorAs(t, err, &ve, "room %q", room)
		assert.Equal(t, "room", ve.Field)
		assert.True(t, errors.Is(err, legacyparty.ErrRoomNotRoutable), "room %q: %v", room, err)
	}
	assert.Empty(t, rec.requests())
	err := publish(t, p, msg("a/b"))
	assert.Equal(t, `realtime: invalid message: room: not routable to the partysocket room of the same id (a dot segment, or holds / \ ? # | ^ or a stray %)`, err.Error())
}

// A 600 KiB message, over Inngest's limit, went through the TypeScript
// provider and goes through this one.
func TestPublishSendsOverInngestLimit(t *testing.T) {
	party := newFakeParty(t)
	p := newProvider(t, &legacyparty.Options{BaseURL: party.srv.URL})
	sub := party.subscribe("big")
	m := realtime.Message{Room: "big", Name: "video.asset.ready", Body: strings.Repeat("x", 600<<10), ID: "big-1"}
	require.NoError(t, publish(t, p, m))
	want, err := encode(m)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got, err := sub.Next(ctx)
	require.NoError(t, err)
	assert.Equal(t, want, got)
}

// One byte over PartyKit's own limit (measured with the real partykit dev:
// above it the party answers 500 and broadcasts "undefined") is refused
// before anything is sent. It encodes one 512 MiB envelope.
func TestPublishRefusesOneByteOverPartyKitsLimit(t *testing.T) {
	if testing.Short() {
		t.Skip("encodes a 512 MiB envelope")
	}
	rec := newRecorder(t)
	p := newProvider(t, &legacyparty.Options{BaseURL: rec.srv.URL})
	m := realtime.Message{Room: "r", Name: "n", Body: "", ID: "m1"}
	empty, err := encode(m)
	require.NoError(t, err)
	m.Body = strings.Repeat("x", legacyparty.MaxEnvelopeBytes-len(empty)+1)
	err = publish(t, p, m)
	m.Body = nil
	debug.FreeOSMemory()
	var tl *realtime.TooLargeError
	require.ErrorAs(t, err, &tl)
	assert.Equal(t, realtime.TooLargeError{Size: legacyparty.MaxEnvelopeBytes + 1, Limit: legacyparty.MaxEnvelopeBytes}, *tl)
	assert.Empty(t, rec.requests())
}

func TestPublishSizeLimitOption(t *testing.T) {
	rec := newRecorder(t)
	p := newProvider(t, &legacyparty.Options{BaseURL: rec.srv.URL, MaxEnvelopeBytes: 1000})
	base := realtime.Message{Room: "r", Name: "n", Body: "", ID: "m1"}
	empty, _ := base.Encode()
	at := base
	at.Body = strings.Repeat("x", 1000-len(empty))
	require.NoError(t, publish(t, p, at))
	over := base
	over.Body = strings.Repeat("x", 1001-len(empty))
	err := publish(t, p, over)
	var tl *realtime.TooLargeError
	require.ErrorAs(t, err, &tl)
	assert.Equal(t, realtime.TooLargeError{Size: 1001, Limit: 1000}, *tl)
	assert.Len(t, rec.requests(), 1)
}

// FuzzPublishURL checks that no accepted room is posted to a path segment
// other than the one partysocket's websocket URL carries for it, and that
// only rooms partysocket cannot join (or Go cannot send) are refused.
func FuzzPublishURL(f *testing.F) {
	for _, tc := range partysocketRooms {
		f.Add(tc.room)
	}
	p, tr := captured(f)
	f.Fuzz(func(t *testing.T, room string) {
		m := realtime.Message{Room: room, Name: "video.asset.ready", Body: 1}
		err := p.Publish(context.Background(), m)
		sent := tr.take()
		if m.Validate() != nil {
			return // FuzzRoomPath covers invalid rooms
		}
		want, joinable := partysocketSegment(room)
		if !joinable || goCannotSend(room) {
			if !errors.Is(err, legacyparty.ErrRoomNotRoutable) {
				t.Fatalf("room %q: got %v, want a refusal", room, err)
			}
			if len(sent) != 0 {
				t.Fatalf("room %q: refused room was sent to %s", room, sent[0])
			}
			return
		}
		if err != nil || len(sent) != 1 {
			t.Fatalf("room %q: %v, %d requests", room, err, len(sent))
		}
		if got := sent[0].RequestURI(); got != "/base/party/"+want {
			t.Fatalf("room %q: request target %q, partysocket joins %q", room, got, want)
		}
	})
}
