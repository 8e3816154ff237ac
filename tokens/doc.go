// Package tokens serves browsers the subscription tokens of Inngest
// Realtime, which admits a subscriber only with a short-lived JWT (one
// minute) scoped to one channel and its topics, minted on the server with
// the signing key by [inngest.Provider.SubscriptionToken].
//
// [Handler] serves GET /api/realtime/token?room=…&scope=… to the browsers of
// an app, behind the app's authentication and an authorization check per
// room and scope, and only for scopes whose migration flag has left legacy
// mode. Its answer is the token object of the official inngest v4 SDK
// ({"channel","topics","key","apiBaseUrl"}) plus "expires", so a page
// passes the fetched body as it is to useRealtime's token (inngest/react)
// or to subscribe (inngest/realtime). Go programs subscribe with
// [inngest.Subscribe] instead.
//
// The handler asks a [Router], the app's [*broadcast.Broadcast], where a
// room's messages go ([broadcast.Broadcast.Route]) and mints through it, so
// the scopes, flags and channel mapping that route publishes are given once,
// to the Broadcast, and browsers listen where messages go.
//
// Serving tokens next to the publishing side of an app:
//
//	b, err := broadcast.New(party, inngestProvider, &broadcast.Options{Resolver: evaluator})
//	…
//	h := tokens.NewHandler(b, &tokens.HandlerOptions{
//		Authenticate: func(r *http.Request) (tokens.Subject, error) {
//			user, err := sessions.User(r) // the app's own
//			return tokens.Subject{ID: user.ID}, err
//		},
//		Authorize: func(ctx context.Context, s tokens.Subject, room string, _ flags.Scope) error {
//			return videos.CheckOwner(ctx, s.ID, room) // the app's own
//		},
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
// # The token request
//
// The query names a room (required, at most 256 bytes) and
// either a scope, whose event names are its flags.Scope.Names, or the event
// names themselves (names=a,b or names=a&names=b, at most 16), which
// must all belong to one scope (flags.ScopeOf), or both. The default scope
// has no names of its own, so a request in it must name its events. Other
// parameters are ignored. The token covers the channel of the room and the
// topics of the names, mapped by the Router's realtime provider (for
// *inngest.Provider, its Mapping, the same one its publishes use); the handler answers the minted
// token's channel and topics and never derives them itself.
//
// # Where to listen
//
// A request with v=2 is told which transport the browser reads now, so a
// flag flip moves browsers without a front-end deploy:
//
//	{"transport":"inngest","mode":"primary","names":[…],"channel":…,"topics":[…],"key":"<jwt>","apiBaseUrl":…,"expires":…}
//	{"transport":"partykit","mode":"shadow","names":[…],"partykit":{"host":"…","room":"…","party":"main","protocol":"wss"},"expires":…}
//
// It follows the mode that routes publishes: PartyKit while PartyKit's
// outcome counts (legacy and shadow), Inngest from primary on, with the
// token object the official SDK takes unchanged. A PartyKit answer mints
// nothing; its expires is HandlerOptions.Recheck (1 minute) from now, when
// the browser asks again (and an Inngest answer's is the token's expiry),
// so a flip reaches every open page within a token lifetime. The PartyKit
// host is HandlerOptions.PartyKitURL, or the Broadcast's PartyKit provider's
// base URL. A request without v=2 gets the answer clients that predate it
// expect: 404 in legacy mode, a token otherwise. The browser client in
// this repository (client/) asks with v=2.
//
// # Catch-up
//
// Inngest Realtime and PartyKit keep no history, so a browser that was
// disconnected (a deploy's "closing", a network change, a token renewal)
// misses what was published meanwhile. The same endpoint answers what it
// missed: a request with after=<seq> (and optionally limit=<1..500>,
// default 100) is a catch-up request,
//
//	GET /api/realtime/token?room=<room>&scope=<scope>&after=<seq>[&limit=<n>]
//
// answered from the Router's replay log ([broadcast.Broadcast.History])
// with a [CatchUp]: the room's messages with seq above after, of the
// request's names, in seq order, as they were published (each envelope
// with its id, seq and epoch), and Next, the seq to ask after next. It
// follows the rules of a token request (401, 403, 400, no-store) and mints
// nothing; a log that cannot be read is a 502. Unlike a token it is served
// in every mode, legacy included: the log holds every message whatever the
// transport, and a page that reads PartyKit, or moves back to it after a
// rollback, repairs its gaps from it too. A client asks it after every (re)connection, once the new
// subscription is live, and whenever a message's seq is more than one
// above the last it delivered; it delivers each id once. A room's history
// never appears for another room: the log is read by room, and the answer
// holds only the request's names.
//
// # apiBaseUrl
//
// The SDK opens its websocket at ws(s)://<host of apiBaseUrl>/v1/realtime/connect
// (ws for http, wss for https; the path of apiBaseUrl is ignored) and at
// Inngest Cloud when the token has no apiBaseUrl, so without it a token
// from the dev server or a self-hosted Inngest fails. The handler sends
// HandlerOptions.BrowserBaseURL when set (the address browsers reach
// Inngest at, behind a proxy or outside a container network), else the
// Router's BaseURL() when it has one (a Broadcast's is its Inngest
// provider's BaseURL), else none, with a warning at NewHandler. A BrowserBaseURL that is
// not a bare http(s)://host[:port], or a Router BaseURL that is not http(s)
// or carries user information, makes the handler misconfigured: NewHandler
// logs it once at Error, [Handler.Err] returns it (matching
// [ErrMisconfigured]) so an app can refuse to start, and every request is
// answered 500.
//
// The answers, each with Cache-Control: no-store and a JSON body:
//
//	200  {"channel":…,"topics":[…],"key":"<jwt>","apiBaseUrl":"<url>","expires":"<RFC 3339>"}
//	     or, for a catch-up request, {"messages":[…],"next":…,"more":…,"head":…,"epoch":…,"truncated":…}
//	200  for v=2, see "Where to listen"
//	400  the query is malformed, longer than 2 KiB, or names
//	     an unknown scope, an invalid room or name, or a name outside the scope
//	401  Authenticate failed
//	403  Authorize refused
//	404  the scope is in legacy mode for the room (a token request without
//	     v=2): the page keeps PartyKit
//	405  not a GET (with Allow: GET)
//	500  {"error":"internal error"}: Authenticate, Authorize, the Router or
//	     its provider's Mapping panicked (outcome "panic"; the panic is
//	     contained, logged at Error without its value unless it is a runtime
//	     error, and never in the body); or {"error":"token endpoint
//	     misconfigured"} (outcome "misconfigured", see above)
//	502  minting failed, or the replay log could not be read; the body says
//	     no more than that
//
// A mode that is none of the four (flags.Mode.Known) is taken as legacy:
// 404, nothing minted.
//
// Only the method and the length of the query are checked before
// Authenticate; the query is parsed after it, and the flag read after
// Authorize, so neither the validation rules nor the flags are revealed to
// whoever may not ask.
//
// # Expiry and reconnection
//
// Inngest checks a token only when a connection opens, so a browser needs a
// fresh one only to reconnect: useRealtime calls its token function again on
// every reconnection. Inngest Realtime has no replay of its own: a page
// asks the catch-up request (above) after it (re)subscribes.
//
// # Logs and metrics
//
// A [Handler] logs each refused request (Debug for 400, 401, 404 and 405,
// Info for 403, Error for 500 and 502) and counts every request in the
// OpenTelemetry counter realtime.token.requests with the attributes outcome
// (ok, bad_request, unauthenticated, forbidden, legacy, method_not_allowed,
// upstream_error, canceled, panic, misconfigured), status and scope (a
// known scope, or "none"). Error text in a log field is
// put on one line (each line break of errors.Join or an upstream body
// becomes "; "). No log line, metric
// attribute, error or response body other than the 200 body contains a
// token or a key.
//
// # Errors
//
// [NewHandler] does not fail; [Handler.Err] reports a configuration it
// cannot serve with, matching [ErrMisconfigured].
//
// # Concurrency
//
// A Handler is safe for concurrent use.
package tokens
