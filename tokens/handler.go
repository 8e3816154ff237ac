package tokens

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
	"go.uber.org/zap"

	"github.com/coursebuilder/realtime-go/flags"
	"github.com/coursebuilder/realtime-go/realtime"
)

// MetricRequests is the name of the OpenTelemetry Int64Counter a [Handler]
// adds one to for every request it answers, with the attributes "outcome"
// (one of the Outcome constants), "status" (the HTTP status, an int) and
// "scope" (a scope of flags.Scopes, or "none" when the request named no
// valid one).
const MetricRequests = "realtime.token.requests"

// Outcomes of a token request, the "outcome" attribute of [MetricRequests]
// and the field of the same name in log lines.
const (
	OutcomeOK               = "ok"                 // 200, a token
	OutcomeMethodNotAllowed = "method_not_allowed" // 405
	OutcomeBadRequest       = "bad_request"        // 400
	OutcomeUnauthenticated  = "unauthenticated"    // 401
	OutcomeForbidden        = "forbidden"          // 403
	OutcomeLegacy           = "legacy"             // 404, the scope is in legacy mode
	OutcomeUpstreamError    = "upstream_error"     // 502, Inngest failed
	OutcomeCanceled         = "canceled"           // 502, the client went away first
)

// DefaultTimeout bounds the minting of one token when HandlerOptions.Timeout
// is zero.
const DefaultTimeout = 10 * time.Second

// Minter mints subscription tokens. [*realtime.Inngest] is one; tests use
// fakes.
type Minter interface {
	SubscriptionToken(ctx context.Context, room string, names []string) (realtime.Token, error)
}

var _ Minter = (*realtime.Inngest)(nil)

// MinterFunc adapts a function to [Minter].
type MinterFunc func(ctx context.Context, room string, names []string) (realtime.Token, error)

// SubscriptionToken calls f(ctx, room, names).
func (f MinterFunc) SubscriptionToken(ctx context.Context, room string, names []string) (realtime.Token, error) {
	return f(ctx, room, names)
}

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
	// Resolver gives the migration mode of a scope for a room. A scope in
	// legacy mode is answered 404, so that a UI carries on with PartyKit;
	// every other mode publishes to Inngest Realtime and gets a token. Pass
	// the Resolver given to broadcast.Options. Defaults to
	// flags.Fixed(flags.Legacy), as broadcast does.
	Resolver flags.Resolver
	// Timeout bounds minting one token, retries included. Defaults to
	// DefaultTimeout (10s).
	Timeout time.Duration
	// Logger receives one line per request that was not served (Debug for
	// 400, 401, 404 and 405, Info for 403, Error for 502) and a Debug line
	// per token, with the fields outcome, status, scope, room and, for 403
	// and 502, the error of Authorize or of the Minter. Never the token, a
	// key, the subject or Authenticate's error. Defaults to zap.NewNop().
	Logger *zap.Logger
	// Meter creates the [MetricRequests] counter. Defaults to a no-op
	// meter.
	Meter metric.Meter
}

// Handler serves subscription tokens to browsers:
//
//	GET /api/realtime/token?room=<room>&scope=<scope>
//	GET /api/realtime/token?room=<room>&names=<event name>[,<event name>...]
//
// and answers 200 with the token in the shape the official React hooks
// (useInngestSubscription's token and refreshToken) accept, plus its expiry
// (see [Response]). Mount it at the path the UI fetches; it does not look
// at the path. It is safe for concurrent use.
type Handler struct {
	minter   Minter
	authn    func(*http.Request) (Subject, error)
	authz    func(context.Context, Subject, string, flags.Scope) error
	resolver flags.Resolver
	timeout  time.Duration
	log      *zap.Logger
	requests metric.Int64Counter
}

var _ http.Handler = (*Handler)(nil)

var (
	errNoAuthenticate = errors.New("tokens: no Authenticate configured")
	errNoAuthorize    = errors.New("tokens: no Authorize configured")
)

// NewHandler returns a Handler that mints tokens with m (normally the app's
// *realtime.Inngest, so that tokens and publishes share one Mapping).
func NewHandler(m Minter, opts *HandlerOptions) *Handler {
	var o HandlerOptions
	if opts != nil {
		o = *opts
	}
	h := &Handler{
		minter:   m,
		authn:    o.Authenticate,
		authz:    o.Authorize,
		resolver: o.Resolver,
		timeout:  o.Timeout,
		log:      o.Logger,
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
	if h.resolver == nil {
		h.resolver = flags.Fixed(flags.Legacy)
	}
	if h.timeout <= 0 {
		h.timeout = DefaultTimeout
	}
	meter := o.Meter
	if meter == nil {
		meter = noop.NewMeterProvider().Meter("")
	}
	c, err := meter.Int64Counter(MetricRequests,
		metric.WithDescription("Subscription token requests, by outcome, HTTP status and scope."),
		metric.WithUnit("{request}"))
	if err != nil {
		h.log.Warn("tokens: creating the request counter", zap.String("metric", MetricRequests), zap.Error(err))
	}
	if c == nil {
		c = noop.Int64Counter{}
	}
	h.requests = c
	return h
}

// Response is the body of a 200 answer. Channel, Topics and Key are the
// token object of the official React hooks (inngest/realtime's
// Realtime.Subscribe.Token: {channel, topics, key}); Expires is extra and
// ignored by them. Its String method leaves the key out.
type Response struct {
	// Channel is the Inngest channel of the room.
	Channel string `json:"channel"`
	// Topics are the Inngest topics of the names asked for.
	Topics []string `json:"topics"`
	// Key is the subscription JWT.
	Key string `json:"key"`
	// Expires is when the key stops being accepted for new connections
	// (RFC 3339); an open connection is not cut then.
	Expires time.Time `json:"expires"`
}

// String describes the response without its key.
func (r Response) String() string {
	return fmt.Sprintf("tokens.Response{channel: %q, topics: %q, expires: %s}",
		r.Channel, r.Topics, r.Expires.UTC().Format(time.RFC3339))
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

	if r.Method != http.MethodGet {
		hdr.Set("Allow", http.MethodGet)
		h.fail(w, r, http.StatusMethodNotAllowed, OutcomeMethodNotAllowed, "", "", "method not allowed", nil)
		return
	}
	if len(r.URL.RawQuery) > MaxQueryBytes {
		h.fail(w, r, http.StatusBadRequest, OutcomeBadRequest, "", "", fmt.Sprintf("query longer than %d bytes", MaxQueryBytes), nil)
		return
	}
	subject, err := h.authenticate(r)
	if err != nil {
		// The error is not logged: an app's Authenticate may quote the
		// cookie or header it could not read.
		h.fail(w, r, http.StatusUnauthorized, OutcomeUnauthenticated, "", "", "not authenticated", nil)
		return
	}
	q, err := parseQuery(r.URL.RawQuery)
	if err != nil {
		var qe *queryError
		msg := "invalid query"
		if errors.As(err, &qe) {
			msg = "invalid query: " + qe.msg
		}
		h.fail(w, r, http.StatusBadRequest, OutcomeBadRequest, "", "", msg, nil)
		return
	}
	if err := h.authorize(r.Context(), subject, q.room, q.scope); err != nil {
		h.fail(w, r, http.StatusForbidden, OutcomeForbidden, q.scope, q.room, "not authorized", err)
		return
	}
	if mode := h.resolver.Mode(r.Context(), q.scope, q.room); !mode.PublishesRealtime() {
		h.fail(w, r, http.StatusNotFound, OutcomeLegacy, q.scope, q.room, "realtime is not enabled for this scope", nil)
		return
	}

	ctx, cancel := context.WithTimeout(r.Context(), h.timeout)
	defer cancel()
	tok, err := h.mint(ctx, q)
	switch {
	case err == nil:
	case errors.Is(err, realtime.ErrInvalidMessage):
		// The room was valid but the mapped channel is not (too long once
		// prefixed, say): the request cannot be served as asked.
		h.fail(w, r, http.StatusBadRequest, OutcomeBadRequest, q.scope, q.room, "invalid query: the room cannot be subscribed to", err)
		return
	case r.Context().Err() != nil:
		h.fail(w, r, http.StatusBadGateway, OutcomeCanceled, q.scope, q.room, "token service unavailable", err)
		return
	default:
		h.fail(w, r, http.StatusBadGateway, OutcomeUpstreamError, q.scope, q.room, "token service unavailable", err)
		return
	}

	body, err := json.Marshal(Response{Channel: tok.Channel, Topics: tok.Topics, Key: tok.JWT, Expires: tok.Expires})
	if err != nil { // cannot happen with these types
		h.fail(w, r, http.StatusBadGateway, OutcomeUpstreamError, q.scope, q.room, "token service unavailable", err)
		return
	}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(append(body, '\n'))
	h.count(r.Context(), OutcomeOK, http.StatusOK, q.scope)
	h.log.Debug("tokens: token served", zap.String("outcome", OutcomeOK), zap.Int("status", http.StatusOK),
		zap.String("scope", string(q.scope)), zap.String("room", q.room), zap.Object("token", tok))
}

// authenticate calls Authenticate, turning a panic into an error so that a
// buggy hook answers 401 instead of dropping the connection.
func (h *Handler) authenticate(r *http.Request) (s Subject, err error) {
	defer func() {
		if p := recover(); p != nil {
			s, err = Subject{}, fmt.Errorf("tokens: Authenticate panicked: %v", p)
		}
	}()
	return h.authn(r)
}

func (h *Handler) authorize(ctx context.Context, s Subject, room string, scope flags.Scope) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("tokens: Authorize panicked: %v", p)
		}
	}()
	return h.authz(ctx, s, room, scope)
}

func (h *Handler) mint(ctx context.Context, q query) (tok realtime.Token, err error) {
	if h.minter == nil {
		return realtime.Token{}, errors.New("tokens: no Minter configured")
	}
	defer func() {
		if p := recover(); p != nil {
			tok, err = realtime.Token{}, fmt.Errorf("tokens: Minter panicked: %v", p)
		}
	}()
	tok, err = h.minter.SubscriptionToken(ctx, q.room, q.names)
	if err == nil && tok.JWT == "" {
		err = errors.New("tokens: Minter returned an empty token")
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
	case http.StatusBadGateway:
		level = zap.ErrorLevel
		if outcome == OutcomeCanceled {
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
			fields = append(fields, zap.Error(cause))
		}
		ce.Write(fields...)
	}
}

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
