package e2e_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/coursebuilder/realtime-go/harness/internal/wsconn"
	"github.com/coursebuilder/realtime-go/legacyparty"
	"github.com/coursebuilder/realtime-go/realtime"
)

// partysocketTargets is, for each room id, the request target of the
// websocket partysocket opens for it: partysocket 1.3.0 (dist/index.js,
// getPartyInfo) interpolates the room unescaped into
// `ws://host/parties/main/${room}?_pk=${id}` and the browser's WebSocket
// parses that with the WHATWG URL parser. These targets were produced by
// Node.js 20's URL parser from that template ("" where new WebSocket throws:
// a fragment).
var partysocketTargets = []struct{ room, target string }{
	{"vid_123", "/parties/main/vid_123?_pk=PK"},
	{"a b", "/parties/main/a%20b?_pk=PK"},
	{"é🎬", "/parties/main/%C3%A9%F0%9F%8E%AC?_pk=PK"},
	{"a!b'()*", "/parties/main/a!b'()*?_pk=PK"},
	{"a;b=c,d", "/parties/main/a;b=c,d?_pk=PK"},
	{"a@b:c", "/parties/main/a@b:c?_pk=PK"},
	{"a&b+c$", "/parties/main/a&b+c$?_pk=PK"},
	{"a[b]", "/parties/main/a[b]?_pk=PK"},
	{"a{b}", "/parties/main/a%7Bb%7D?_pk=PK"},
	{"a<b>", "/parties/main/a%3Cb%3E?_pk=PK"},
	{"a\"b", "/parties/main/a%22b?_pk=PK"},
	{"a`b", "/parties/main/a%60b?_pk=PK"},
	{"%41", "/parties/main/%41?_pk=PK"},
	{"a%2Fb", "/parties/main/a%2Fb?_pk=PK"},
	{"...", "/parties/main/...?_pk=PK"},
	// Refused: the socket joins another room (the part before / \ or ?).
	{"a/b", "/parties/main/a/b?_pk=PK"},
	{"a\\b", "/parties/main/a/b?_pk=PK"},
	{"a?b", "/parties/main/a?b?_pk=PK"},
	// Refused: no socket (new WebSocket throws on a fragment).
	{"a#b", ""},
	// Refused: partysocket joins them, Go's HTTP client cannot post to them
	// byte for byte (and cannot dial them either).
	{"a|b", ""},
	{"a^b", ""},
	{"50%", ""},
	{"a%zz", ""},
	// Refused: dot segments resolve away (the socket gets a 404).
	{"..", ""},
	{"%2e%2e", ""},
}

// countingTransport counts the requests that reach the PartyKit server.
type countingTransport struct {
	n    atomic.Int64
	base http.RoundTripper
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.base.RoundTrip(r)
}

// TestPartyKitRoomsReachPartysocketRoom publishes to rooms holding every
// problematic character class and checks, against the real partykit dev,
// that a subscriber connected as partysocket connects receives the message,
// or that Publish refuses the room with a typed error and posts nothing.
func TestPartyKitRoomsReachPartysocketRoom(t *testing.T) {
	party := sharedParty(t)
	tr := &countingTransport{base: &http.Transport{}}
	t.Cleanup(tr.base.(*http.Transport).CloseIdleConnections)
	p := newParty(t, legacyparty.Options{BaseURL: party.URL(), HTTPClient: &http.Client{Transport: tr}})
	prefix := "rooms-" + uuid.NewString()[:8] + "-"
	for _, tc := range partysocketTargets {
		t.Run(tc.room, func(t *testing.T) {
			logs.attach(t)
			room, target := tc.room, tc.target
			if !strings.HasPrefix(room, ".") && !strings.HasPrefix(room, "%2e") {
				room = prefix + room
				target = strings.Replace(target, "/parties/main/", "/parties/main/"+prefix, 1)
			}
			var sub *wsconn.Conn
			if target != "" {
				u := "ws://127.0.0.1:" + itoa(party.Port()) + strings.Replace(target, "PK", uuid.NewString(), 1)
				c, _, err := wsconn.Dial(ctxT(t), u, nil, 8<<20)
				if err != nil {
					t.Fatalf("dial %s: %v", u, err)
				}
				sub = c
				t.Cleanup(func() { closing.Go(func() { _ = c.Close() }) })
			}
			before := tr.n.Load()
			msg := realtime.Message{Room: room, Name: "video.asset.ready", RequestID: "r1", Body: map[string]string{"room": room}, ID: "r1"}
			err := p.Publish(ctxT(t), msg)
			_, urlErr := p.PublishURL(room)
			if err != nil {
				var ve *realtime.ValidationError
				if !errors.As(err, &ve) || !(errors.Is(err, legacyparty.ErrRoomNotRoutable)) {
					t.Fatalf("Publish(%q) = %v, want a *realtime.ValidationError for an unroutable room", room, err)
				}
				if urlErr == nil {
					t.Fatalf("Publish refused %q but PublishURL accepts it", room)
				}
				if n := tr.n.Load() - before; n != 0 {
					t.Fatalf("a refused room was posted %d times", n)
				}
				if sub != nil {
					if err := (&wsSub{sub}).ExpectNone(quiet); err != nil {
						t.Fatal(err)
					}
				}
				return
			}
			if sub == nil {
				t.Fatalf("Publish(%q) sent a message no partysocket can receive", room)
			}
			expectDelivered(t, "partysocket-style subscriber of "+target, &wsSub{sub}, partySpelling(envelope(t, msg)))
		})
	}
}

// wsSub adapts a raw websocket to subscriber.
type wsSub struct{ c *wsconn.Conn }

func (s *wsSub) Next(ctx context.Context) ([]byte, error) { return s.c.Next(ctx) }
func (s *wsSub) ExpectNone(d time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	b, err := s.c.Next(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		return nil
	}
	if err != nil {
		return err
	}
	return fmt.Errorf("unexpected frame: %s", b)
}

func itoa(n int) string { return strconv.Itoa(n) }
