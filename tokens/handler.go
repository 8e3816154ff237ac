package tokens

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"runtime"
	"slices"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
	"go.uber.org/zap"

	"github.com/coursebuilder/realtime-go/broadcast"
	"github.com/coursebuilder/realtime-go/flags"
	"github.com/coursebuilder/realtime-go/realtime"
	"github.com/coursebuilder/realtime-go/realtime/inngest"
	"github.com/coursebuilder/realtime-go/replay"
)

// metricRequests is the OpenTelemetry Int64Counter a [Handler] adds one to
// for every request it answers, with the attributes "outcome", "status"
// (the HTTP status, an int) and "scope" (a scope of flags.Scopes, or "none"
// when the request named no valid one); see the package doc.
const metricRequests = "realtime.token.requests"

// Outcomes of a token request, the "outcome" attribute of
// realtime.token.requests and the field of the same name in log lines.
const (
	outcomeOK               = "ok"                 // 200, a token
	outcomeMethodNotAllowed = "method_not_allowed" // 405
	outcomeBadRequest       = "bad_request"        // 400
	outcomeUnauthenticated  = "unauthenticated"    // 401
	outcomeForbidden        = "forbidden"          // 403
	outcomeLegacy           = "legacy"             // 404, the scope is in legacy mode
	outcomeUpstreamError    = "upstream_error"     // 502, Inngest failed
	outcomeCanceled         = "canceled"           // 502, the client went away first
	outcomePanic            = "panic"              // 500, a hook or the Router panicked
	outcomeMisconfigured    = "misconfigured"      // 500, NewHandler found a configuration error (see Handler.Err)
	outcomePartyKit         = "partykit"           // 200, a v=2 request told to read PartyKit
)

// ErrMisconfigured is matched (errors.Is) by the error [Handler.Err]
// returns when NewHandler found the handler's configuration unusable, such
// as a BrowserBaseURL that is not an http(s) URL. Such a handler answers
// every request 500.
var ErrMisconfigured = errors.New("tokens: handler misconfigured")

// defaultTimeout bounds the minting of one token when HandlerOptions.Timeout
// is zero.
const defaultTimeout = 10 * time.Second

// Router is what the handler asks about a room: where its messages go now
// and a subscription token for it. [*broadcast.Broadcast] is one, so that
// the endpoint follows the same flags as the publishes (a scope in legacy
// mode is answered 404) and mints with the realtime provider's mapping: the
// routing of a room is given once, to the Broadcast. A Router that also has
// a BaseURL() string method (as Broadcast does) gives the default
// apiBaseUrl of the answers.
type Router interface {
	Route(ctx context.Context, room, name string) broadcast.Route
	SubscriptionToken(ctx context.Context, room string, names []string) (inngest.Token, error)
	History(ctx context.Context, room string, after uint64, limit int) (replay.Page, error)
}

var _ Router = (*broadcast.Broadcast)(nil)

// Subject is whoever asks for a token, as the app's Authenticate found out.
type Subject struct {
	// ID identifies the subject to the app, typically a user id. The
	// handler passes it to Authorize and never logs it.
	ID string
	// Data is anything else Authorize needs: roles, a session, an
	// organisation.
	Data any
}

// HandlerOptions configures [NewHandler]. A nil *HandlerOptions means every
// default, which serves no token at all: authentication, authorization
// and the flags must each be wired in explicitly.
type HandlerOptions struct {
	// Authenticate finds who makes the request, from its cookies or
	// headers. An error is answered 401. Defaults to refusing everyone.
	Authenticate func(r *http.Request) (Subject, error)
	// Authorize decides whether subject may watch room in scope, for
	// instance whether the user owns the video resource. An error is
	// answered 403. Defaults to refusing everyone.
	Authorize func(ctx context.Context, subject Subject, room string, scope flags.Scope) error
	// BrowserBaseURL is the base URL at which browsers reach the Inngest
	// API, sent as the answer's apiBaseUrl: the official SDK connects its
	// websocket to <scheme://host of apiBaseUrl>/v1/realtime/connect (ws
	// for http, wss for https) and to Inngest Cloud when there is none.
	// Set it when browsers reach Inngest at another address than the
	// server does (a proxy, a container network, a dev server on another
	// host name). It must be an absolute http(s) URL without user
	// information, path (the SDK ignores it), query or fragment; anything
	// else makes the handler misconfigured (see [Handler.Err]). Defaults to
	// the Router's BaseURL() when it has one (for *broadcast.Broadcast, its
	// realtime provider's, for *inngest.Provider its
	// BaseURL: the dev server, a self-hosted Inngest or Inngest Cloud), and
	// otherwise to none, with a warning. A Router's BaseURL with a path is
	// sent as it is, and the SDK drops the path: set BrowserBaseURL then.
	BrowserBaseURL string
	// PartyKitURL is where browsers reach PartyKit, as the apps set
	// NEXT_PUBLIC_PARTY_KIT_URL (a host[:port] or an http(s)/ws(s) URL),
	// sent in the answer of a v=2 request whose scope browsers read from
	// PartyKit. Defaults to the Router's PartyKitURL() when it has one (a
	// Broadcast's is its PartyKit provider's base URL).
	PartyKitURL string
	// Recheck is how long a browser given a v=2 answer waits before it
	// asks again whether the transport moved: the answer's Expires (for an
	// Inngest answer, the token's expiry when that is sooner). Defaults to
	// 1 minute, the lifetime of an Inngest token, so that a flip, a
	// rollback included, moves every open page within about a minute.
	Recheck time.Duration
	// Timeout bounds minting one token, retries included. Defaults to 10s.
	Timeout time.Duration
	// Logger receives one line per request that was not served (Debug for
	// 400, 401, 404 and 405, Info for 403, Error for 500 and 502) and a
	// Debug line per token, with the fields outcome, status, scope, room
	// and, for 403, 500 and 502, the error of Authorize or of the Minter,
	// or what panicked ("tokens: Router panicked: …"), on one line. Never
	// the token, a key, the subject, Authenticate's error or what a
	// panicking Authenticate panicked with. Defaults to zap.NewNop().
	Logger *zap.Logger
	// Meter creates the realtime.token.requests counter. Defaults to a
	// no-op meter.
	Meter metric.Meter
}

// Handler serves subscription tokens to browsers:
//
//	GET /api/realtime/token?room=<room>&scope=<scope>
//	GET /api/realtime/token?room=<room>&names=<event name>[,<event name>...]
//
// and answers 200 with the token object the official SDK accepts as it is
// (subscribe from inngest/realtime, and the token of useRealtime from
// inngest/react), plus its expiry (see [Response]). Mount it at the path the
// UI fetches; it does not look at the path. It is safe for concurrent use.
type Handler struct {
	router   Router
	apiBase  string
	party    *PartyKitRoom // host, party and protocol of v=2 PartyKit answers; nil when unknown
	recheck  time.Duration
	cfgErr   error
	authn    func(*http.Request) (Subject, error)
	authz    func(context.Context, Subject, string, flags.Scope) error
	timeout  time.Duration
	log      *zap.Logger
	requests metric.Int64Counter
}

var _ http.Handler = (*Handler)(nil)

var (
	errNoAuthenticate = errors.New("tokens: no Authenticate configured")
	errNoAuthorize    = errors.New("tokens: no Authorize configured")
)

// NewHandler returns a Handler that asks r, normally the app's
// *broadcast.Broadcast, where a room's messages go and mints tokens through
// it, so that tokens and publishes share one routing.
//
// NewHandler does not fail: a configuration it cannot use (a nil r, an
// invalid BrowserBaseURL, or a Router whose BaseURL is not an http(s) URL)
// is logged once, at Error, and makes every request answer 500 with the
// outcome "misconfigured". Check [Handler.Err] at start-up to fail early
// instead.
func NewHandler(r Router, opts *HandlerOptions) *Handler {
	var o HandlerOptions
	if opts != nil {
		o = *opts
	}
	h := &Handler{
		router:  r,
		authn:   o.Authenticate,
		authz:   o.Authorize,
		timeout: o.Timeout,
		log:     o.Logger,
	}
	if h.log == nil {
		h.log = zap.NewNop()
	}
	if h.authn == nil {
		h.log.Warn("tokens: no Authenticate configured; every token request will be answered 401")
		h.authn = func(*http.Request) (Subject, error) { return Subject{}, errNoAuthenticate }
	}
	if h.authz == nil {
		h.log.Warn("tokens: no Authorize configured; every token request will be answered 403")
		h.authz = func(context.Context, Subject, string, flags.Scope) error { return errNoAuthorize }
	}
	if h.timeout <= 0 {
		h.timeout = defaultTimeout
	}
	if h.recheck = o.Recheck; h.recheck <= 0 {
		h.recheck = time.Minute
	}
	meter := o.Meter
	if meter == nil {
		meter = noop.NewMeterProvider().Meter("")
	}
	c, err := meter.Int64Counter(metricRequests,
		metric.WithDescription("Subscription token requests, by outcome, HTTP status and scope."),
		metric.WithUnit("{request}"))
	if err != nil {
		h.log.Warn("tokens: creating the request counter", zap.String("metric", metricRequests), errField(err))
	}
	if c == nil {
		c = noop.Int64Counter{}
	}
	h.requests = c
	if r == nil {
		h.cfgErr = fmt.Errorf("%w: no Router (pass the app's *broadcast.Broadcast)", ErrMisconfigured)
	} else {
		h.apiBase, h.cfgErr = apiBaseURL(r, o.BrowserBaseURL)
		if h.cfgErr == nil {
			h.party, h.cfgErr = partyKitRoom(r, o.PartyKitURL)
		}
	}
	switch {
	case h.cfgErr != nil:
		h.log.Error("tokens: the handler is misconfigured; every token request will be answered 500", errField(h.cfgErr))
	case h.apiBase == "":
		h.log.Warn("tokens: no BrowserBaseURL configured and the Router has no BaseURL; the SDK will connect browsers to Inngest Cloud")
	}
	return h
}

// Err returns the configuration error NewHandler found, matching
// [ErrMisconfigured], or nil. A handler with an error answers every request
// 500.
func (h *Handler) Err() error { return h.cfgErr }

// APIBaseURL returns the apiBaseUrl of the handler's answers: the
// BrowserBaseURL option, else the Router's BaseURL, else "" (the SDK then
// uses Inngest Cloud).
func (h *Handler) APIBaseURL() string { return h.apiBase }

// apiBaseURL picks and checks the apiBaseUrl of the answers: browser when
// set, else r's BaseURL when r has one, else "".
func apiBaseURL(r Router, browser string) (string, error) {
	if browser != "" {
		if err := checkBrowserURL(browser); err != nil {
			return "", fmt.Errorf("%w: BrowserBaseURL %w", ErrMisconfigured, err)
		}
		return strings.TrimRight(browser, "/"), nil
	}
	b, ok := r.(baseURLer)
	if !ok {
		return "", nil
	}
	base, err := minterBaseURL(b)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrMisconfigured, err)
	}
	if base == "" {
		return "", nil
	}
	// The Router's own URL may have a path, which the Router uses and the
	// SDK ignores; only its scheme and host are required here.
	u, err := url.Parse(base)
	switch {
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		return "", fmt.Errorf("%w: the Router's BaseURL is not an http(s) URL", ErrMisconfigured)
	case u.User != nil:
		return "", fmt.Errorf("%w: the Router's BaseURL has user information, which must not reach browsers: set BrowserBaseURL", ErrMisconfigured)
	}
	return strings.TrimRight(base, "/"), nil
}

// partyKitRoom returns the host, party and protocol of v=2 PartyKit
// answers, from the option or the Router's PartyKitURL(), or nil when
// neither gives one. Its error never quotes the URL.
func partyKitRoom(r Router, option string) (*PartyKitRoom, error) {
	raw := strings.TrimSpace(option)
	if raw == "" {
		if p, ok := r.(interface{ PartyKitURL() string }); ok {
			raw = p.PartyKitURL()
		}
	}
	if raw == "" {
		return nil, nil
	}
	if !strings.Contains(raw, "://") {
		raw = "//" + strings.TrimPrefix(raw, "//")
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.Hostname() == "" || u.User != nil {
		return nil, fmt.Errorf("%w: PartyKitURL is not a host[:port] or an http(s) URL without user information", ErrMisconfigured)
	}
	room := &PartyKitRoom{Host: u.Host, Party: "main"}
	switch strings.ToLower(u.Scheme) {
	case "http", "ws":
		room.Protocol = "ws"
	case "https", "wss":
		room.Protocol = "wss"
	case "":
		// As partysocket does: ws for localhost and loopback, wss otherwise.
		room.Protocol = "wss"
		if h := u.Hostname(); h == "localhost" || strings.HasPrefix(h, "127.") || h == "::1" {
			room.Protocol = "ws"
		}
	default:
		return nil, fmt.Errorf("%w: PartyKitURL's scheme is not http(s) or ws(s)", ErrMisconfigured)
	}
	return room, nil
}

// checkBrowserURL accepts an absolute http(s) URL with a host and nothing
// after it but an optional "/". Its error never quotes the URL, which may
// hold user information.
func checkBrowserURL(s string) error {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return errors.New("is not a valid URL")
	case u.Scheme != "http" && u.Scheme != "https":
		return errors.New("is not an http(s) URL")
	case u.Host == "" || u.Hostname() == "":
		return errors.New("has no host")
	case u.User != nil:
		return errors.New("has user information")
	case u.Path != "" && u.Path != "/", u.RawPath != "":
		return errors.New("has a path, which the SDK ignores: give the scheme and host only")
	case u.RawQuery != "" || u.ForceQuery:
		return errors.New("has a query")
	case u.Fragment != "" || strings.Contains(s, "#"):
		return errors.New("has a fragment")
	}
	return nil
}

// baseURLer is the optional interface of a [Router] that knows the Inngest
// API it mints with.
type baseURLer interface {
	BaseURL() string
}

func minterBaseURL(b baseURLer) (base string, err error) {
	defer func() {
		if p := recover(); p != nil {
			base, err = "", panicError("the Router's BaseURL", p)
		}
	}()
	return b.BaseURL(), nil
}

// Response is the body of a 200 answer to a token request. Channel, Topics,
// Key and APIBaseURL are the token object of the official SDK (inngest v4's
// Realtime.Subscribe.Token: {channel, topics, key, apiBaseUrl}), which
// subscribe from inngest/realtime and useRealtime from inngest/react take as
// it is; the other fields are extra and ignored by them. Its String method
// leaves the key out.
//
// A request with v=2 is told where to listen (see the package doc,
// "Where to listen"): Transport is "inngest" with the token fields, or
// "partykit" with PartyKit set and no token.
type Response struct {
	// Transport is the transport the browser reads now, "inngest" or
	// "partykit"; set for a v=2 request only.
	Transport string `json:"transport,omitempty"`
	// Mode is the scope's mode (legacy, shadow, primary, realtime); set for
	// a v=2 request only.
	Mode string `json:"mode,omitempty"`
	// Names are the event names the answer covers; set for a v=2 request
	// only. A PartyKit room carries every name of the room, so a client
	// keeps these.
	Names []string `json:"names,omitempty"`
	// Channel is the Inngest channel of the room.
	Channel string `json:"channel,omitempty"`
	// Topics are the Inngest topics of the names asked for.
	Topics []string `json:"topics,omitempty"`
	// Key is the subscription JWT.
	Key string `json:"key,omitempty"`
	// APIBaseURL is where the SDK opens its websocket
	// (<apiBaseUrl>/v1/realtime/connect); omitted when the handler knows
	// none, and the SDK then connects to Inngest Cloud. See
	// HandlerOptions.BrowserBaseURL.
	APIBaseURL string `json:"apiBaseUrl,omitempty"`
	// PartyKit is the PartyKit room to join, as partysocket takes it;
	// set when Transport is "partykit".
	PartyKit *PartyKitRoom `json:"partykit,omitempty"`
	// Expires is when to ask again: when the key stops being accepted for
	// new connections (RFC 3339; an open connection is not cut then), or,
	// for a v=2 answer, HandlerOptions.Recheck from now if that is sooner,
	// when the transport may have moved.
	Expires time.Time `json:"expires"`
}

// PartyKitRoom is what partysocket takes to join a room:
// new PartySocket({host, room, party, protocol}).
type PartyKitRoom struct {
	// Host is the PartyKit host browsers reach, host[:port].
	Host string `json:"host"`
	// Room is the room id, as the app names it (partysocket escapes it).
	Room string `json:"room"`
	// Party is the party, "main".
	Party string `json:"party"`
	// Protocol is "ws" or "wss".
	Protocol string `json:"protocol"`
}

// String describes the response without its key.
func (r Response) String() string {
	if r.PartyKit != nil {
		return fmt.Sprintf("tokens.Response{transport: %q, mode: %q, partykit: %s/%s/%s, expires: %s}",
			r.Transport, r.Mode, r.PartyKit.Host, r.PartyKit.Party, r.PartyKit.Room, r.Expires.UTC().Format(time.RFC3339))
	}
	return fmt.Sprintf("tokens.Response{channel: %q, topics: %q, apiBaseUrl: %q, expires: %s}",
		r.Channel, r.Topics, r.APIBaseURL, r.Expires.UTC().Format(time.RFC3339))
}

// GoString is String.
func (r Response) GoString() string { return r.String() }

// errorBody is the body of every answer other than 200.
type errorBody struct {
	Error string `json:"error"`
}

// ServeHTTP answers one token request; see the package documentation for
// the statuses.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hdr := w.Header()
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("Content-Type", "application/json")
	hdr.Set("X-Content-Type-Options", "nosniff")

	if h.cfgErr != nil {
		// Logged once by NewHandler.
		h.fail(w, r, http.StatusInternalServerError, outcomeMisconfigured, "", "", "token endpoint misconfigured", nil)
		return
	}
	if r.Method != http.MethodGet {
		hdr.Set("Allow", http.MethodGet)
		h.fail(w, r, http.StatusMethodNotAllowed, outcomeMethodNotAllowed, "", "", "method not allowed", nil)
		return
	}
	if len(r.URL.RawQuery) > maxQueryBytes {
		h.fail(w, r, http.StatusBadRequest, outcomeBadRequest, "", "", fmt.Sprintf("query longer than %d bytes", maxQueryBytes), nil)
		return
	}
	subject, err := h.authenticate(r)
	if err != nil {
		if isPanic(err) {
			// What Authenticate panicked with is not logged, as its
			// errors are not.
			h.fail(w, r, http.StatusInternalServerError, outcomePanic, "", "", msgInternal, errAuthenticatePanicked)
			return
		}
		// The error is not logged: an app's Authenticate may quote the
		// cookie or header it could not read.
		h.fail(w, r, http.StatusUnauthorized, outcomeUnauthenticated, "", "", "not authenticated", nil)
		return
	}
	q, err := parseQuery(r.URL.RawQuery)
	if err != nil {
		var qe *queryError
		msg := "invalid query"
		if errors.As(err, &qe) {
			msg = "invalid query: " + qe.msg
		}
		h.fail(w, r, http.StatusBadRequest, outcomeBadRequest, "", "", msg, nil)
		return
	}
	if err := h.authorize(r.Context(), subject, q.room, q.scope); err != nil {
		if isPanic(err) {
			h.fail(w, r, http.StatusInternalServerError, outcomePanic, q.scope, q.room, msgInternal, err)
			return
		}
		h.fail(w, r, http.StatusForbidden, outcomeForbidden, q.scope, q.room, "not authorized", err)
		return
	}
	mode, err := h.mode(r.Context(), q)
	// Route gives Broadcast's answer, so an unknown mode is legacy already;
	// another Router's may not be.
	if err != nil {
		h.fail(w, r, http.StatusInternalServerError, outcomePanic, q.scope, q.room, msgInternal, err)
		return
	}
	// An unknown mode is legacy, as everywhere else.
	mode = mode.OrLegacy()
	if q.catchUp {
		// Served in every mode: the log holds every message, and a page
		// that reads PartyKit (or moves to it after a rollback) repairs
		// its gaps too.
		ctx, cancel := context.WithTimeout(r.Context(), h.timeout)
		defer cancel()
		h.serveCatchUp(ctx, w, r, q)
		return
	}
	if q.v2 && !mode.RealtimeCounts() {
		h.servePartyKit(w, r, q, mode)
		return
	}
	if !mode.PublishesRealtime() {
		h.fail(w, r, http.StatusNotFound, outcomeLegacy, q.scope, q.room, "realtime is not enabled for this scope", nil)
		return
	}

	ctx, cancel := context.WithTimeout(r.Context(), h.timeout)
	defer cancel()
	tok, err := h.mint(ctx, q)
	switch {
	case err == nil:
	case isPanic(err), errors.Is(err, inngest.ErrMappingPanicked):
		// inngest.Provider contains a panic of its Mapping itself, as a
		// validation error; it is the app's bug all the same.
		h.fail(w, r, http.StatusInternalServerError, outcomePanic, q.scope, q.room, msgInternal, err)
		return
	case errors.Is(err, realtime.ErrInvalidMessage):
		// The room was valid but the mapped channel is not (too long once
		// prefixed, say): the request cannot be served as asked.
		h.fail(w, r, http.StatusBadRequest, outcomeBadRequest, q.scope, q.room, "invalid query: the room cannot be subscribed to", err)
		return
	case r.Context().Err() != nil:
		h.fail(w, r, http.StatusBadGateway, outcomeCanceled, q.scope, q.room, "token service unavailable", err)
		return
	default:
		h.fail(w, r, http.StatusBadGateway, outcomeUpstreamError, q.scope, q.room, "token service unavailable", err)
		return
	}

	// Channel and topics are the minted token's, never recomputed here:
	// the realtime provider's Mapping is the only one.
	resp := Response{Channel: tok.Channel, Topics: tok.Topics, Key: tok.JWT, APIBaseURL: h.apiBase, Expires: tok.Expires}
	if q.v2 {
		resp.Transport, resp.Mode, resp.Names = "inngest", mode.String(), q.names
		// Ask again within Recheck, as a PartyKit reader does, so that a
		// rollback reaches this page too; the key stays valid until its
		// own expiry, and the client keeps its connection when the
		// answer names the same transport.
		if recheck := time.Now().Add(h.recheck).UTC().Truncate(time.Second); recheck.Before(resp.Expires) {
			resp.Expires = recheck
		}
	}
	body, err := json.Marshal(resp)
	if err != nil { // cannot happen with these types
		h.fail(w, r, http.StatusBadGateway, outcomeUpstreamError, q.scope, q.room, "token service unavailable", err)
		return
	}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(append(body, '\n'))
	h.count(r.Context(), outcomeOK, http.StatusOK, q.scope)
	h.log.Debug("tokens: token served", zap.String("outcome", outcomeOK), zap.Int("status", http.StatusOK),
		zap.String("scope", string(q.scope)), zap.String("room", q.room), zap.Object("token", tok))
}

// servePartyKit answers a v=2 request whose scope browsers read from
// PartyKit (legacy and shadow modes): the room to join, and when to ask
// again. Nothing is minted.
func (h *Handler) servePartyKit(w http.ResponseWriter, r *http.Request, q query, mode flags.Mode) {
	if h.party == nil {
		h.fail(w, r, http.StatusInternalServerError, outcomeMisconfigured, q.scope, q.room, "token endpoint misconfigured",
			errors.New("tokens: no PartyKitURL for a v=2 answer (set HandlerOptions.PartyKitURL)"))
		return
	}
	room := *h.party
	room.Room = q.room
	body, err := json.Marshal(Response{Transport: "partykit", Mode: mode.String(), Names: q.names, PartyKit: &room, Expires: time.Now().Add(h.recheck).UTC().Truncate(time.Second)})
	if err != nil { // cannot happen with these types
		h.fail(w, r, http.StatusInternalServerError, outcomeMisconfigured, q.scope, q.room, msgInternal, err)
		return
	}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(append(body, '\n'))
	h.count(r.Context(), outcomePartyKit, http.StatusOK, q.scope)
	h.log.Debug("tokens: PartyKit room served", zap.String("outcome", outcomePartyKit), zap.Int("status", http.StatusOK),
		zap.String("scope", string(q.scope)), zap.String("room", q.room), zap.String("mode", mode.String()))
}

// CatchUp is the body of a 200 answer to a catch-up request (one with
// after=<seq>): the room's messages with seq above after, of the names the
// request covers, in seq order, as their envelopes were published. A
// client that saw messages up to seq after (of epoch Epoch) delivers those
// whose id it has not seen, and goes on from Next.
type CatchUp struct {
	// Messages are the envelopes, each as published with its id, seq and
	// epoch; never another room's, nor a name outside the request.
	Messages []json.RawMessage `json:"messages"`
	// Next is the seq to ask after next: the last seq this page read, of
	// any name (a room's seq counts every name in it), or, when none, after
	// or Head if after is past it (a client learns its position with
	// after=18446744073709551615).
	Next uint64 `json:"next"`
	// More reports that the page was full: ask again after Next.
	More bool `json:"more"`
	// Head is the room's latest seq; Epoch its numbering. A client whose
	// seqs are of another epoch, or Truncated set, has lost messages that
	// no catch-up can give back: it reloads the state it shows.
	Head      uint64 `json:"head"`
	Epoch     uint64 `json:"epoch"`
	Truncated bool   `json:"truncated"`
}

// serveCatchUp answers a catch-up request from the Router's replay log.
func (h *Handler) serveCatchUp(ctx context.Context, w http.ResponseWriter, r *http.Request, q query) {
	page, err := h.history(ctx, q)
	switch {
	case err == nil:
	case isPanic(err):
		h.fail(w, r, http.StatusInternalServerError, outcomePanic, q.scope, q.room, msgInternal, err)
		return
	case r.Context().Err() != nil:
		h.fail(w, r, http.StatusBadGateway, outcomeCanceled, q.scope, q.room, "history unavailable", err)
		return
	default:
		h.fail(w, r, http.StatusBadGateway, outcomeUpstreamError, q.scope, q.room, "history unavailable", err)
		return
	}
	out := CatchUp{Messages: []json.RawMessage{}, Next: min(q.after, page.Head), More: len(page.Entries) == q.limit,
		Head: page.Head, Epoch: page.Epoch, Truncated: page.Truncated}
	for _, e := range page.Entries {
		out.Next = e.Seq
		msg, err := realtime.DecodeEnvelope(e.Envelope)
		if err != nil || !slices.Contains(q.names, msg.Name) {
			continue
		}
		out.Messages = append(out.Messages, e.Envelope)
	}
	body, err := json.Marshal(out)
	if err != nil { // an envelope the log holds is JSON
		h.fail(w, r, http.StatusBadGateway, outcomeUpstreamError, q.scope, q.room, "history unavailable", err)
		return
	}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(append(body, '\n'))
	h.count(r.Context(), outcomeOK, http.StatusOK, q.scope)
	h.log.Debug("tokens: catch-up served", zap.String("outcome", outcomeOK), zap.Int("status", http.StatusOK),
		zap.String("scope", string(q.scope)), zap.String("room", q.room), zap.Uint64("after", q.after),
		zap.Int("messages", len(out.Messages)), zap.Uint64("next", out.Next))
}

// history asks the Router's replay log, turning a panic into an error.
func (h *Handler) history(ctx context.Context, q query) (page replay.Page, err error) {
	defer func() {
		if p := recover(); p != nil {
			page, err = replay.Page{}, panicError("Router", p)
		}
	}()
	return h.router.History(ctx, q.room, q.after, q.limit)
}

// msgInternal is the body of a 500 for a panic.
const msgInternal = "internal error"

var errAuthenticatePanicked = &panicErr{msg: "tokens: Authenticate panicked"}

// panicErr is a recovered panic of a hook or the Router.
type panicErr struct{ msg string }

func (e *panicErr) Error() string { return e.msg }

func isPanic(err error) bool {
	var pe *panicErr
	return errors.As(err, &pe)
}

// panicError describes a recovered panic p of what. Only a runtime error's
// message (a nil dereference, an index out of range) is kept: any other
// value is described by its type, since it may hold anything, a key
// included.
func panicError(what string, p any) error {
	detail := fmt.Sprintf("%T", p)
	if re, ok := p.(runtime.Error); ok {
		detail = re.Error()
	}
	return &panicErr{msg: "tokens: " + what + " panicked: " + oneLine(detail)}
}

// authenticate calls Authenticate, turning a panic into an error matched
// by isPanic, so that a buggy hook answers 500 instead of dropping the
// connection.
func (h *Handler) authenticate(r *http.Request) (s Subject, err error) {
	defer func() {
		if p := recover(); p != nil {
			s, err = Subject{}, errAuthenticatePanicked
		}
	}()
	return h.authn(r)
}

func (h *Handler) authorize(ctx context.Context, s Subject, room string, scope flags.Scope) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = panicError("Authorize", p)
		}
	}()
	return h.authz(ctx, s, room, scope)
}

// mode asks the Router where the room's messages of the scope go (all the
// query's names share the scope), turning a panic into an error.
func (h *Handler) mode(ctx context.Context, q query) (m flags.Mode, err error) {
	defer func() {
		if p := recover(); p != nil {
			m, err = flags.Legacy, panicError("Router", p)
		}
	}()
	return h.router.Route(ctx, q.room, q.names[0]).Mode, nil
}

func (h *Handler) mint(ctx context.Context, q query) (tok inngest.Token, err error) {
	defer func() {
		if p := recover(); p != nil {
			tok, err = inngest.Token{}, panicError("Router", p)
		}
	}()
	tok, err = h.router.SubscriptionToken(ctx, q.room, q.names)
	if err == nil && tok.JWT == "" {
		err = errors.New("tokens: Router returned an empty token")
	}
	return tok, err
}

// fail answers status with a short, fixed message (never a value from the
// request or an upstream error), logs it and counts it.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, status int, outcome string, scope flags.Scope, room, msg string, cause error) {
	body, _ := json.Marshal(errorBody{Error: msg})
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
	h.count(r.Context(), outcome, status, scope)

	level := zap.DebugLevel
	switch status {
	case http.StatusForbidden:
		level = zap.InfoLevel
	case http.StatusInternalServerError:
		level = zap.ErrorLevel
		if outcome == outcomeMisconfigured {
			level = zap.DebugLevel // NewHandler logged it, at Error
		}
	case http.StatusBadGateway:
		level = zap.ErrorLevel
		if outcome == outcomeCanceled {
			level = zap.DebugLevel
		}
	}
	if ce := h.log.Check(level, "tokens: token request refused"); ce != nil {
		fields := []zap.Field{zap.String("outcome", outcome), zap.Int("status", status)}
		if scope != "" {
			fields = append(fields, zap.String("scope", string(scope)))
		}
		if room != "" {
			fields = append(fields, zap.String("room", room))
		}
		if cause != nil {
			fields = append(fields, errField(cause))
		}
		ce.Write(fields...)
	}
}

// errField is zap.Error on one line: errors.Join and upstream bodies put
// newlines in error text, which would split or forge log lines in a
// line-oriented sink.
func errField(err error) zap.Field { return zap.String("error", oneLine(err.Error())) }

// oneLine replaces each line break (\r\n, \n, \r, NEL, U+2028 and
// U+2029) with "; ".
func oneLine(s string) string {
	if !strings.ContainsAny(s, "\r\n\u0085\u2028\u2029") {
		return s
	}
	return lineBreaks.Replace(s)
}

var lineBreaks = strings.NewReplacer("\r\n", "; ", "\n", "; ", "\r", "; ", "\u0085", "; ", "\u2028", "; ", "\u2029", "; ")

func (h *Handler) count(ctx context.Context, outcome string, status int, scope flags.Scope) {
	s := string(scope)
	if !slices.Contains(flags.Scopes, scope) {
		s = "none"
	}
	h.requests.Add(context.WithoutCancel(ctx), 1, metric.WithAttributeSet(attribute.NewSet(
		attribute.String("outcome", outcome),
		attribute.Int("status", status),
		attribute.String("scope", s),
	)))
}
