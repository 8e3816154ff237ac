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
//     the official React hooks accept ({"channel","topics","key"}) plus
//     "expires", so a page can pass the fetch as useInngestSubscription's
//     refreshToken.
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
//	mux.Handle("GET /api/realtime/token", tokens.NewHandler(inngest, &tokens.HandlerOptions{
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
//	}))
//
// and in the page, for the scope it watches:
//
//	const { data } = useInngestSubscription({
//	  refreshToken: () => fetch(`/api/realtime/token?room=${id}&scope=video-ready`).then(r => r.json()),
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
// Mapping, the same one its publishes use).
//
// The answers, each with Cache-Control: no-store and a JSON body:
//
//	200  {"channel":…,"topics":[…],"key":"<jwt>","expires":"<RFC 3339>"}
//	400  the query is malformed, longer than MaxQueryBytes (2 KiB), or names
//	     an unknown scope, an invalid room or name, or a name outside the scope
//	401  Authenticate failed
//	403  Authorize refused
//	404  the scope is in legacy mode for the room: the page keeps PartyKit
//	405  not a GET (with Allow: GET)
//	502  minting failed; the body says no more than that
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
// through refreshToken.
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
// # Logs and metrics
//
// A [Handler] logs each refused request (Debug for 400, 401, 404 and 405,
// Info for 403, Error for 502) and counts every request in the
// OpenTelemetry counter [MetricRequests] ("realtime.token.requests") with
// the attributes outcome, status and scope. A [Subscriber] logs its
// reconnections. No log line, metric attribute, error or response body
// other than the 200 body contains a token or a key.
//
// # Errors
//
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
