// Package tokens lets browsers and Go programs subscribe to Inngest
// Realtime, which admits a subscriber only with a short-lived JWT (one
// minute) scoped to one channel and its topics, minted on the server with
// the signing key by [realtime.Inngest.SubscriptionToken].
//
// Three pieces:
//
//   - [Handler] serves GET /api/realtime/token?room=…&scope=… to the
//     browsers of an app, behind the app's authentication and an
//     authorization check per room and scope, and only for scopes whose
//     migration flag has left legacy mode. Its answer is the token object
//     of the official inngest v4 SDK ({"channel","topics","key",
//     "apiBaseUrl"}) plus "expires", so a page passes the fetched body as it
//     is to useRealtime's token (inngest/react) or to subscribe
//     (inngest/realtime).
//   - [TokenSource] hands a token to Go code and fetches a new one shortly
//     before it expires, at most one fetch at a time.
//   - [Subscribe] is a Go subscriber that reconnects (with a fresh token
//     when the old one is refused) whenever the server asks it to or the
//     connection drops.
//
// Serving tokens next to the publishing side of an app:
//
//	inngest, err := realtime.NewInngest(nil) // the provider that publishes
//	…
//	h := tokens.NewHandler(inngest, &tokens.HandlerOptions{
//		Authenticate: func(r *http.Request) (tokens.Subject, error) {
//			user, err := sessions.User(r) // the app's own
//			return tokens.Subject{ID: user.ID}, err
//		},
//		Authorize: func(ctx context.Context, s tokens.Subject, room string, _ flags.Scope) error {
//			return videos.CheckOwner(ctx, s.ID, room) // the app's own
//		},
//		Resolver: evaluator, // the same flags.Resolver as broadcast.Options.Resolver
//		Logger:   logger,
//		Meter:    otel.Meter("realtime"),
//		// BrowserBaseURL: "https://inngest.example.com", // if browsers reach Inngest elsewhere
//	})
//	if err := h.Err(); err != nil { … } // a BrowserBaseURL that is not http(s)://host[:port]
//	mux.Handle("GET /api/realtime/token", h)
//
// and in the page, for the scope it watches (useRealtime from
// inngest/react; the deprecated @inngest/realtime's useInngestSubscription
// took the same fetch as refreshToken):
//
//	const { messages } = useRealtime({
//	  token: async () => {
//	    const r = await fetch(`/api/realtime/token?room=${id}&scope=video-ready`)
//	    if (!r.ok) throw new Error(`realtime token: ${r.status}`) // 404: still on PartyKit
//	    return r.json()
//	  },
//	})
//
// A Go program subscribing with the signing key:
//
//	src := tokens.NewTokenSource(tokens.Mint(inngest, videoID, "video.asset.ready"), nil)
//	defer src.Close()
//	sub, err := tokens.Subscribe(ctx, inngest.BaseURL(), src, func(m tokens.Message) { … }, nil)
//	if err != nil { … }
//	defer sub.Close()
//
// # The token request
//
// The query names a room (required, at most [realtime.MaxRoomBytes]) and
// either a scope, whose event names are those of [ScopeNames], or the event
// names themselves (names=a,b or names=a&names=b, at most [MaxNames]), which
// must all belong to one scope (flags.ScopeOf), or both. The default scope
// has no names of its own, so a request in it must name its events. Other
// parameters are ignored. The token covers the channel of the room and the
// topics of the names, mapped by the Minter (for *realtime.Inngest, its
// Mapping, the same one its publishes use); the handler answers the minted
// token's channel and topics and never derives them itself.
//
// # apiBaseUrl
//
// The SDK opens its websocket at ws(s)://<host of apiBaseUrl>/v1/realtime/connect
// (ws for http, wss for https; the path of apiBaseUrl is ignored) and at
// Inngest Cloud when the token has no apiBaseUrl, so without it a token
// from the dev server or a self-hosted Inngest fails. The handler sends
// HandlerOptions.BrowserBaseURL when set (the address browsers reach
// Inngest at, behind a proxy or outside a container network), else the
// Minter's BaseURL() when it has one ([BaseURLer]; *realtime.Inngest's
// BaseURL), else none, with a warning at NewHandler. A BrowserBaseURL that is
// not a bare http(s)://host[:port], or a Minter BaseURL that is not http(s)
// or carries user information, makes the handler misconfigured: NewHandler
// logs it once at Error, [Handler.Err] returns it (matching
// [ErrMisconfigured]) so an app can refuse to start, and every request is
// answered 500.
//
// The answers, each with Cache-Control: no-store and a JSON body:
//
//	200  {"channel":…,"topics":[…],"key":"<jwt>","apiBaseUrl":"<url>","expires":"<RFC 3339>"}
//	400  the query is malformed, longer than MaxQueryBytes (2 KiB), or names
//	     an unknown scope, an invalid room or name, or a name outside the scope
//	401  Authenticate failed
//	403  Authorize refused
//	404  the scope is in legacy mode for the room: the page keeps PartyKit
//	405  not a GET (with Allow: GET)
//	500  {"error":"internal error"}: Authenticate, Authorize, the Resolver,
//	     the Minter or its Mapping panicked (outcome "panic"; the panic is
//	     contained, logged at Error without its value unless it is a runtime
//	     error, and never in the body); or {"error":"token endpoint
//	     misconfigured"} (outcome "misconfigured", see above)
//	502  minting failed; the body says no more than that
//
// A Resolver answer that is none of the four modes (flags.Mode.Known) is
// taken as legacy: 404, nothing minted.
//
// Only the method and the length of the query are checked before
// Authenticate; the query is parsed after it, and the flag read after
// Authorize, so neither the validation rules nor the flags are revealed to
// whoever may not ask.
//
// # Expiry and reconnection
//
// Inngest checks a token only when a connection opens: a connection
// outlives its token, so nothing is reopened because a token expired. What
// expires is the token a reconnection would use, and that is what a
// [TokenSource] renews (Margin before expiry, 10 s by default) and what a
// [Subscriber] throws away when Inngest refuses it. Browsers do the same
// through useRealtime's token function, which it calls again on every
// reconnection.
//
// Inngest Realtime has no replay. The server hands a message to the
// connections subscribed when it fans the message out (shortly after it
// accepted the publish) and keeps nothing: messages published while a
// subscriber is disconnected, or connected but not yet subscribed by the
// server, are lost, and no option of this package or of the server can
// recover them. (One accepted just before a reconnection completes may
// still arrive, the fan-out being asynchronous; nothing is promised.) A
// page that must not miss a state change should read the current state
// after it (re)subscribes.
//
// A [Subscriber] delivers only frames of its token's channel and topics: a
// frame for any other channel or topic (which the server can route to it
// when two channel names collide under its 64-bit hash) is dropped, counted
// by [Subscriber.Misrouted] and logged without its payload.
//
// # Logs and metrics
//
// A [Handler] logs each refused request (Debug for 400, 401, 404 and 405,
// Info for 403, Error for 500 and 502) and counts every request in the
// OpenTelemetry counter [MetricRequests] ("realtime.token.requests") with
// the attributes outcome, status and scope. Error text in a log field is
// put on one line (each line break of errors.Join or an upstream body
// becomes "; "). A [Subscriber] logs its reconnections. No log line, metric
// attribute, error or response body other than the 200 body contains a
// token or a key.
//
// # Errors
//
// [NewHandler] does not fail; [Handler.Err] reports a configuration it
// cannot serve with, matching [ErrMisconfigured].
// [TokenSource.Token] returns the fetch's error wrapped ("tokens: fetch
// token: …"; errors.Is and errors.As reach the Minter's error, such as
// realtime.ErrUnavailable), the caller's ctx.Err(), or [ErrClosed] after
// Close. [Subscribe] returns errors of the first connection: those of the
// TokenSource, or a handshake Inngest refused. Once subscribed, failures are
// retried, with backoff, until Close, and logged.
//
// # Concurrency
//
// Handler, TokenSource and Subscriber are safe for concurrent use. A
// TokenSource runs one goroutine per fetch in flight, which ends with the
// fetch (bounded by its Timeout); its Close waits for it. A Subscriber runs
// a goroutine that reads the websocket without pause and one that calls the
// handler, one message at a time, in order; its Close ends both, waiting for
// a handler call in progress, so it must not be called from the handler.
package tokens
