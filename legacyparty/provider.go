package legacyparty

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/coursebuilder/realtime-go/internal/field"
	"github.com/coursebuilder/realtime-go/internal/httpx"
	"github.com/coursebuilder/realtime-go/internal/transport"
	"github.com/coursebuilder/realtime-go/realtime"
)

// envBaseURL is the environment variable the course apps set to their
// PartyKit host today, and the default source of [Options.BaseURL].
const envBaseURL = "NEXT_PUBLIC_PARTY_KIT_URL"

// MaxEnvelopeBytes is PartyKit's own limit on an envelope, measured against
// the real PartyKit dev server (partykit 0.0.115, workerd) serving
// course-builder's party: 536,870,888 bytes (2^29 - 24, V8's longest string).
// A POST body of that size is broadcast and arrives intact at a websocket in
// the room; one byte more and the party's req.json() fails, the POST answers
// 500 and the room receives the text "undefined". [Provider.Publish] refuses
// a larger envelope with a [*realtime.TooLargeError] before sending
// anything, and sends anything up to it, as the TypeScript provider did: it
// had no limit of its own. See the package documentation for how it was
// measured.
//
// It is far above Inngest's [realtime.MaxEnvelopeBytes] (512 KiB): in the
// broadcast package's legacy and shadow modes PartyKit keeps delivering
// messages that Inngest Realtime refuses.
const MaxEnvelopeBytes = 1<<29 - 24

// ErrRoomNotRoutable is the reason of the [*realtime.ValidationError]
// returned for a room that a browser's partysocket cannot join under its own
// name, or that this provider cannot post to the room partysocket joins.
// Such a room is refused before anything is sent, because a post would land
// in a room nobody joined (or in another room's). The room is one of:
//
//   - "." or "..", also percent-encoded (%2e): URL parsers, PartyKit's
//     included, resolve such a path segment against /party/ instead of
//     treating it as a room;
//
// or holds one of:
//
//   - "/" or "\": partysocket puts the room in the URL path unescaped, so the
//     socket for "a/b" joins the room "a" (the rest becomes a sub-path);
//   - "?" or "#": the socket for "a?b" joins "a" (the rest is a query), and
//     the one for "a#b" fails (a websocket URL may not have a fragment);
//   - a "%" not followed by two hex digits: partysocket sends it as it is and
//     PartyKit names the room after it, but Go's HTTP client cannot put it on
//     the wire;
//   - "|" or "^": partysocket sends them as they are, Go's HTTP client escapes
//     them (%7C, %5E), which PartyKit takes for another room.
//
// Like every validation reason it is matched with [errors.Is], together with
// [realtime.ErrInvalidMessage].
var ErrRoomNotRoutable = errors.New("realtime: not routable to the partysocket room of the same id (a dot segment, or holds / \\ ? # | ^ or a stray %)")

// Options configures [New]. A nil *Options, or a zero field, means the
// default documented on the field.
type Options struct {
	// BaseURL is the PartyKit host, such as
	// "https://my-party.user.partykit.dev" or "http://localhost:1999"; a path
	// prefix is kept, a trailing slash dropped. Defaults to the
	// NEXT_PUBLIC_PARTY_KIT_URL environment variable, read by New; an empty
	// variable counts as unset.
	//
	// As in that variable, the scheme may be left out: a bare host[:port]
	// gets http when the host is localhost or a loopback address (127.0.0.0/8,
	// [::1]) and https otherwise, as partysocket chooses ws or wss. The
	// websocket schemes ws and wss, which some apps put there, mean http and
	// https. A URL with user info, a query or a fragment is refused.
	BaseURL string
	// HTTPClient sends the requests. Defaults to a client of this provider's
	// own with dial and TLS handshake timeouts and keep-alive connections;
	// AttemptTimeout bounds each request as a whole. A client given here is
	// not changed: the provider sends with a shallow copy of it that follows
	// no redirect, and a redirect fails with realtime.ErrRejected.
	HTTPClient *http.Client
	// AttemptTimeout bounds each request, retries excluded; the caller's
	// context bounds the whole publish. An attempt that runs out of time
	// after the request was sent fails with realtime.ErrMaybeDelivered and is
	// not retried (the party may have broadcast it). Defaults to 5s.
	AttemptTimeout time.Duration
	// Retry says how transient failures (connection errors before the
	// request was sent, 408, 429 after its Retry-After, 5xx) are retried;
	// nil or zero fields take the defaults of [realtime.RetryPolicy].
	Retry *realtime.RetryPolicy
	// Logger receives retry diagnostics (room and status, never a body).
	// Defaults to zap.NewNop().
	Logger *zap.Logger
	// MaxEnvelopeBytes lowers the largest envelope Publish sends, for a
	// deployment whose limit is below the dev server's (a value above
	// [MaxEnvelopeBytes] is taken as MaxEnvelopeBytes). Defaults to
	// [MaxEnvelopeBytes].
	MaxEnvelopeBytes int
}

// Provider publishes messages to a PartyKit party over HTTP, exactly as the
// TypeScript PartykitProvider's broadcastMessage does:
//
//	POST {BaseURL}/party/{room}
//
// with the envelope of [realtime.Message.Encode] as body. The party server
// broadcasts that body unchanged to the websockets in the room, so browsers
// connected with partysocket keep receiving what they receive today.
//
// The room is one path segment spelled exactly as a browser's partysocket
// spells it in its websocket URL (ws(s)://host/parties/main/{room}, or
// /party/{room} in older versions, the room unescaped and then percent-encoded
// by the URL parser): PartyKit does not unescape the path and names the room
// after that segment, so the post reaches the room the browser joined. A
// room that cannot be posted to that way is refused with [ErrRoomNotRoutable]
// (dot segments included); no room can reach another path of the server.
//
// Requests carry Content-Type: application/json. The TypeScript provider set
// no content type (so fetch sent text/plain;charset=UTF-8); the party servers
// read the body whatever the header says, and the body is JSON.
//
// A Provider is safe for concurrent use. Create one with [New].
type Provider struct {
	baseURL   string
	partyURL  string       // baseURL + "/party/"
	partyPath string       // the escaped path of partyURL
	http      httpx.Sender // the client and the attempt timeout
	log       *zap.Logger
	endpoint  transport.Endpoint
}

var (
	_ realtime.EnvelopePublisher = (*Provider)(nil)
	_ fmt.Stringer               = (*Provider)(nil)
	_ fmt.GoStringer             = (*Provider)(nil)
)

// New returns a PartyKit provider. It fails with an error matching
// [realtime.ErrNotConfigured] when no base URL is given and
// NEXT_PUBLIC_PARTY_KIT_URL is unset or empty, or when the base URL is not a
// usable http(s) URL or host[:port].
func New(opts *Options) (*Provider, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	raw := strings.TrimSpace(o.BaseURL)
	if raw == "" {
		raw = strings.TrimSpace(os.Getenv(envBaseURL))
	}
	if raw == "" {
		return nil, fmt.Errorf("%w: partykit base URL missing (set %s or Options.BaseURL)", realtime.ErrNotConfigured, envBaseURL)
	}
	base, err := normalizeBaseURL(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: partykit base URL: %w", realtime.ErrNotConfigured, err)
	}

	p := &Provider{
		baseURL:   base,
		partyURL:  base + "/party/",
		partyPath: basePath(base) + "/party/",
		http:      httpx.NewSender(o.HTTPClient, o.AttemptTimeout, transport.DefaultAttemptTimeout),
		log:       o.Logger,
	}
	if p.log == nil {
		p.log = zap.NewNop()
	}
	p.endpoint = transport.Endpoint{
		Name:  transportName,
		Limit: MaxEnvelopeBytes,
		Retry: transport.Retry(o.Retry),
		Route: func(msg realtime.Message) (string, error) { return p.publishURL(msg.Room) },
		Send:  p.send,
	}
	if o.MaxEnvelopeBytes > 0 && o.MaxEnvelopeBytes < MaxEnvelopeBytes {
		p.endpoint.Limit = o.MaxEnvelopeBytes
	}
	return p, nil
}

// normalizeBaseURL turns the configured value into scheme://host[/prefix]
// without a trailing slash. Its errors never repeat user info.
func normalizeBaseURL(raw string) (string, error) {
	if !strings.Contains(raw, "://") {
		rest := strings.TrimPrefix(raw, "//")
		hostURL, err := url.Parse("//" + rest)
		if err != nil {
			return "", errors.New("not an http(s) URL or host[:port]")
		}
		scheme := "https"
		if isLoopback(hostURL.Hostname()) {
			scheme = "http"
		}
		raw = scheme + "://" + rest
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", errors.New("not an http(s) URL or host[:port]")
	}
	switch strings.ToLower(u.Scheme) {
	case "http", "ws":
		u.Scheme = "http"
	case "https", "wss":
		u.Scheme = "https"
	default:
		return "", fmt.Errorf("scheme %q is not http or https", u.Scheme)
	}
	switch {
	case u.User != nil:
		return "", errors.New("user info is not supported")
	case u.Host == "" || u.Hostname() == "":
		return "", fmt.Errorf("%q has no host", u.Redacted())
	case u.RawQuery != "" || u.ForceQuery:
		return "", fmt.Errorf("%q has a query", u.Redacted())
	case u.Fragment != "" || strings.Contains(raw, "#"):
		return "", fmt.Errorf("%q has a fragment", u.Redacted())
	}
	return u.Scheme + "://" + u.Host + strings.TrimRight(u.EscapedPath(), "/"), nil
}

// basePath returns the escaped path of a normalized base URL.
func basePath(base string) string {
	u, err := url.Parse(base)
	if err != nil {
		return ""
	}
	return u.EscapedPath()
}

// isLoopback reports whether host is localhost or a loopback IP address.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// BaseURL returns the resolved PartyKit base URL, with its scheme.
func (p *Provider) BaseURL() string { return p.baseURL }

// String describes the provider.
func (p *Provider) String() string {
	return fmt.Sprintf("legacyparty.Provider{base: %s}", p.baseURL)
}

// GoString is String, so that %#v prints the same short description.
func (p *Provider) GoString() string { return p.String() }

// Close releases idle connections of the provider's own HTTP client (a
// client given in [Options.HTTPClient] is left alone). The provider stays
// usable; Close is safe to call more than once.
func (p *Provider) Close() error {
	p.http.Close()
	return nil
}

// PublishURL returns the URL a message for room is posted to: the base URL,
// "/party/" and the room as one path segment, spelled as partysocket spells
// it (see [Provider]). It fails with a [*realtime.ValidationError] for a
// room that [realtime.Message.Validate] refuses and for a room that
// partysocket cannot join under its own id, dot segments included (reason
// [ErrRoomNotRoutable]).
func (p *Provider) PublishURL(room string) (string, error) {
	if err := transport.Validate("room", room, field.RoomBytes); err != nil {
		return "", err
	}
	return p.publishURL(room)
}

// publishURL is PublishURL for a room that passed validation.
func (p *Provider) publishURL(room string) (string, error) {
	seg, err := roomSegment(room)
	if err != nil {
		return "", &realtime.ValidationError{Field: "room", Reason: err}
	}
	target := p.partyURL + seg
	// Go's HTTP client must put exactly this segment on the wire.
	if u, err := url.Parse(target); err != nil || u.EscapedPath() != p.partyPath+seg || u.RawQuery != "" || u.Fragment != "" {
		return "", &realtime.ValidationError{Field: "room", Reason: ErrRoomNotRoutable}
	}
	return target, nil
}

// roomSegment spells room as the path segment partysocket's websocket URL
// carries: partysocket interpolates the room unescaped into
// "ws(s)://host/parties/main/{room}?_pk=…" and the WHATWG URL parser
// percent-encodes, in a path, the C0 controls, space, " # < > ? ` { }, and
// every non-ASCII byte, leaves "%" and everything else as it is, and splits
// at "/" and "\" (ws and wss are special schemes). Rooms that do not come
// out as one segment of their own, or that Go's HTTP client would re-spell,
// are refused.
func roomSegment(room string) (string, error) {
	switch strings.ToLower(room) {
	case ".", "%2e", "..", ".%2e", "%2e.", "%2e%2e":
		return "", ErrRoomNotRoutable
	}
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(room))
	for i := 0; i < len(room); i++ {
		c := room[i]
		switch {
		case c == '/' || c == '\\' || c == '?' || c == '#' || c == '|' || c == '^':
			return "", ErrRoomNotRoutable
		case c == '%':
			if i+2 >= len(room) || !isHex(room[i+1]) || !isHex(room[i+2]) {
				return "", ErrRoomNotRoutable
			}
			b.WriteByte(c)
		case c <= ' ' || c >= 0x7f || strings.IndexByte("\"<>`{}", c) >= 0:
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), nil
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// Publish validates and encodes msg and posts the envelope to the room's
// party, retrying transient failures under the provider's retry policy. The
// party server's reply text is discarded.
func (p *Provider) Publish(ctx context.Context, msg realtime.Message) error {
	return p.endpoint.Publish(ctx, msg)
}

// PublishEnvelope posts an envelope encoded already (see
// [realtime.EnvelopePublisher]) as Publish does.
func (p *Provider) PublishEnvelope(ctx context.Context, env *realtime.Envelope) error {
	return p.endpoint.PublishEnvelope(ctx, env)
}

// errorDetailBytes is how much of an answer a publish reads: enough for the
// detail of an error.
const errorDetailBytes = 512

// transportName names PartyKit in errors.
const transportName = "partykit"

// send makes one attempt and classifies its failure.
func (p *Provider) send(ctx context.Context, target string, env *realtime.Envelope) error {
	h := http.Header{"Content-Type": {"application/json"}, "User-Agent": {userAgent}}
	ans, err := p.http.Post(ctx, target, h, env.Bytes(), errorDetailBytes)
	if ans.Status == 0 {
		p.log.Debug("legacyparty: partykit publish attempt failed", zap.String("room", env.Message().Room), zap.Error(err))
		return transport.NetworkError(transportName, err)
	}
	if ans.Status >= 200 && ans.Status < 300 {
		// The party accepted the message: a reply cut short by a read error
		// is not worth a retry that would broadcast it twice.
		return nil
	}
	p.log.Debug("legacyparty: partykit publish attempt failed", zap.String("room", env.Message().Room), zap.Int("status", ans.Status))
	return transport.StatusError(transportName, ans.Status, httpx.Snippet(ans.Body, 200), ans.RetryAfter)
}

// userAgent identifies this library to servers.
const userAgent = transport.UserAgent + " (legacyparty)"
