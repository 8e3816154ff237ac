// Package inngestrt runs a real Inngest Realtime endpoint in-process.
//
// It mounts the Inngest server's own realtime API
// (github.com/inngest/inngest/pkg/execution/realtime, NewAPI over
// NewRedisBroadcaster with two rueidis clients on an in-process miniredis),
// the same stack the Inngest dev server serves under /v1, on a loopback
// listener. Only authentication differs from the dev server: when signing keys
// are configured, publish and token requests must present one of them hashed,
// as the SDKs do against Inngest Cloud.
//
// The package does not depend on testing; see NewTest for the test helper.
//
// For the faults of a deployment: Options.Addr starts a server where a
// stopped one listened (a restart), and Server.Redeploy puts a new instance
// of the API behind the same address while the old one sends "closing"
// to its subscribers (a deploy).
//
// CollidingRoom computes, for a room of at least 64 bytes, another valid
// room whose channel the server routes to the same subscribers (it hashes
// channels with unseeded XXH64), for tests of channel isolation.
//
// Goroutines the Inngest server code leaves behind after Close (none of them
// touch the network once Close returns):
//
//   - realtime.(*broadcaster).keepalive: one per websocket subscription. The
//     server never removes a subscription when its websocket ends; the
//     goroutine notices only after three failed pings, 15 s apart, so it
//     lingers up to about 45 s.
//   - realtime.(*broadcaster).Close.func1: waits for those keepalive
//     goroutines.
//   - realtime.(*broadcaster).doPublish.func1: retries a failed websocket
//     write (for instance the "closing" notice sent to a subscription whose
//     client already left) for up to 6 s.
//
// IgnoredGoroutines lists them for go.uber.org/goleak.
package inngestrt

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/google/uuid"
	"github.com/inngest/inngest/pkg/api/apiv1/apiv1auth"
	"github.com/inngest/inngest/pkg/consts"
	"github.com/inngest/inngest/pkg/logger"
)

const (
	// shutdownGrace is how long the broadcaster waits, after telling its
	// subscribers it is closing, before it cancels its Redis subscriptions.
	shutdownGrace = 100 * time.Millisecond
	// closeTimeout bounds each waiting step of Close.
	closeTimeout = 5 * time.Second
)

// AccountID is the account every authenticated request belongs to (the dev
// server's fixed account).
var AccountID = consts.DevServerAccountID

// EnvID is the environment every authenticated request belongs to (the dev
// server's fixed environment); it is the env_id of every delivered message.
var EnvID = consts.DevServerEnvID

// IgnoredGoroutines names the functions of goroutines that the Inngest server
// code leaves running for a while after Close (see the package doc), for
// goleak.IgnoreAnyFunction.
var IgnoredGoroutines = []string{
	"github.com/inngest/inngest/pkg/execution/realtime.(*broadcaster).keepalive",
	"github.com/inngest/inngest/pkg/execution/realtime.(*broadcaster).Close.func1",
	"github.com/inngest/inngest/pkg/execution/realtime.(*broadcaster).doPublish.func1",
}

// listen listens on addr; when wait is set and the address is in use, it
// tries again every 20 ms for up to 10 s, or until ctx ends.
func listen(ctx context.Context, addr string, wait bool) (net.Listener, error) {
	var lc net.ListenConfig
	deadline := time.Now().Add(10 * time.Second)
	for {
		ln, err := lc.Listen(ctx, "tcp", addr)
		if err == nil || !wait || !errors.Is(err, syscall.EADDRINUSE) || time.Now().After(deadline) {
			return ln, err
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Options configures Start.
type Options struct {
	// SigningKeys are the raw signing keys ("signkey-test-<hex>") the server
	// accepts. Publish and token requests must send
	// "Authorization: Bearer <hashed key>" (see HashSigningKey); a wrong or
	// missing key is answered 401, like Inngest Cloud. Raw (unhashed) keys are
	// refused. Empty means accept anything (dev-server mode).
	SigningKeys []string
	// JWTSecret signs subscription tokens; it defaults to a random secret.
	JWTSecret []byte
	// Wrap, if set, wraps the whole HTTP handler, for example to inject
	// faults, count requests or read headers such as X-Inngest-Env.
	Wrap func(http.Handler) http.Handler
	// Logf, if set, receives harness diagnostics and the Inngest server's own
	// log lines; when nil the server's request logs are discarded.
	Logf func(format string, args ...any)
	// Addr, if set, is the loopback address to listen on, "127.0.0.1:PORT":
	// a server started again where a stopped one listened (pass the same
	// JWTSecret and SigningKeys, so that the tokens it issued still work).
	// While the address is still in use (a connection of the stopped
	// server may hold it a moment), Start tries again for up to 10 s or
	// until ctx ends. Defaults to a free port on 127.0.0.1.
	Addr string
}

// Server is a running Inngest Realtime endpoint.
type Server struct {
	opts      Options
	jwtSecret []byte
	keyMu     sync.RWMutex
	hashed    []string // guarded by keyMu; SetSigningKeys replaces it
	url       string
	client    *http.Client

	ln        net.Listener
	srv       *http.Server
	serveDone chan struct{}
	redis     *miniredis.Miniredis
	subs      *subTracker
	// current serves new requests; backends are every one started, the
	// current one last (see Redeploy).
	current  atomic.Pointer[backend]
	backends []*backend // guarded by mu

	mu       sync.Mutex
	closing  bool
	inflight sync.WaitGroup
	hijacked map[net.Conn]struct{}

	closeOnce sync.Once
	closeErr  error
	// logMu and logOff stop Logf forwarding at Close: server goroutines
	// outlive Close and Logf may be a testing.T's, which must not be called
	// once its test has ended.
	logMu  sync.RWMutex
	logOff bool
}

// Start starts a server on 127.0.0.1 at a free port. It returns once the
// server accepts connections. ctx bounds only the start-up.
func Start(ctx context.Context, opts Options) (*Server, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("inngestrt: start: %w", err)
	}
	s := &Server{
		opts:      opts,
		jwtSecret: opts.JWTSecret,
		serveDone: make(chan struct{}),
		hijacked:  map[net.Conn]struct{}{},
		client:    &http.Client{Transport: &http.Transport{}},
	}
	if len(s.jwtSecret) == 0 {
		s.jwtSecret = make([]byte, 32)
		_, _ = rand.Read(s.jwtSecret)
	}
	for i, k := range opts.SigningKeys {
		h, err := HashSigningKey(k)
		if err != nil {
			return nil, fmt.Errorf("inngestrt: signing key %d: %w", i, err)
		}
		s.hashed = append(s.hashed, h)
	}

	ok := false
	defer func() {
		if !ok {
			s.release()
		}
	}()

	// As pkg/devserver: an in-process Redis, one client to publish and a
	// separate one to subscribe (a Redis connection in subscribe mode cannot
	// publish).
	s.redis = miniredis.NewMiniRedis()
	if err := s.redis.Start(); err != nil {
		return nil, fmt.Errorf("inngestrt: start miniredis: %w", err)
	}
	s.subs = newSubTracker()
	b, err := s.newBackend()
	if err != nil {
		return nil, err
	}
	s.backends = []*backend{b}
	s.current.Store(b)

	var h http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.current.Load().router.ServeHTTP(w, r)
	})
	h = s.withContext(h)
	if opts.Wrap != nil {
		h = opts.Wrap(h)
	}
	h = s.track(h)

	addr := opts.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	if host, _, err := net.SplitHostPort(addr); err != nil || !net.ParseIP(host).IsLoopback() {
		return nil, fmt.Errorf("inngestrt: Addr %q is not a loopback host:port", addr)
	}
	s.ln, err = listen(ctx, addr, opts.Addr != "")
	if err != nil {
		return nil, fmt.Errorf("inngestrt: listen: %w", err)
	}
	s.url = "http://" + s.ln.Addr().String()
	s.srv = &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.slogHandler(), slog.LevelWarn),
		ConnState: func(c net.Conn, st http.ConnState) {
			if st == http.StateHijacked {
				s.mu.Lock()
				s.hijacked[c] = struct{}{}
				s.mu.Unlock()
			}
		},
	}
	go func() {
		defer close(s.serveDone)
		if err := s.srv.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.logf("inngestrt: serve: %v", err)
		}
	}()
	ok = true
	s.logf("inngestrt: Inngest realtime API (inngest v1.19.3 pkg/execution/realtime) listening on %s/v1", s.url)
	return s, nil
}

// URL returns the base URL, "http://127.0.0.1:PORT"; the routes are under /v1.
func (s *Server) URL() string { return s.url }

// JWTSecret returns the secret that signs subscription tokens.
func (s *Server) JWTSecret() []byte { return append([]byte(nil), s.jwtSecret...) }

// Redis returns the in-process Redis behind the broadcaster, for inspection.
func (s *Server) Redis() *miniredis.Miniredis { return s.redis }

// Close tells subscribers the server is closing (the real broadcaster's
// "closing" message, from every instance Redeploy started), stops the
// listener, cuts every websocket, waits for all handlers and Redis
// subscriptions to end, then closes the Redis clients and miniredis. It is safe to call more than once. See the package doc for the
// goroutines the server code keeps for a while afterwards.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closing = true
		s.mu.Unlock()

		ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
		defer cancel()
		var errs []error

		// Tell subscribers to reconnect elsewhere; after shutdownGrace each
		// broadcaster closes them and cancels its Redis subscriptions.
		lctx := logger.WithStdlib(ctx, s.serverLogger())
		s.mu.Lock()
		backends := slices.Clone(s.backends)
		s.mu.Unlock()
		for _, b := range backends {
			if err := b.bc.Close(lctx); err != nil {
				errs = append(errs, fmt.Errorf("close broadcaster: %w", err))
			}
		}
		if err := s.srv.Shutdown(ctx); err != nil {
			_ = s.srv.Close()
		}
		<-s.serveDone

		// Websocket handlers run on hijacked connections, which Shutdown
		// neither tracks nor closes; cutting them ends the handlers.
		s.mu.Lock()
		for c := range s.hijacked {
			_ = c.Close()
		}
		s.hijacked = nil
		s.mu.Unlock()
		if !waitTimeout(&s.inflight, closeTimeout) {
			errs = append(errs, errors.New("handlers still running after close"))
		}

		// Wait for the broadcaster's topic goroutines to unsubscribe before
		// the clients go away; otherwise they log errors to stderr.
		deadline := time.Now().Add(shutdownGrace + closeTimeout)
		for len(s.redis.PubSubChannels("")) > 0 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if n := len(s.redis.PubSubChannels("")); n > 0 {
			errs = append(errs, fmt.Errorf("%d redis subscriptions still open after close", n))
		}
		s.release()
		s.client.CloseIdleConnections()
		s.logMu.Lock()
		s.logOff = true
		s.logMu.Unlock()
		if len(errs) > 0 {
			s.closeErr = fmt.Errorf("inngestrt: close: %w", errors.Join(errs...))
		}
	})
	return s.closeErr
}

// release closes the Redis clients and miniredis.
func (s *Server) release() {
	s.mu.Lock()
	backends := s.backends
	s.mu.Unlock()
	for _, b := range backends {
		b.release()
	}
	if s.redis != nil {
		s.redis.Close()
	}
	if s.ln != nil && s.srv == nil {
		_ = s.ln.Close()
	}
}

func waitTimeout(wg *sync.WaitGroup, d time.Duration) bool {
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return true
	case <-time.After(d):
		return false
	}
}

// track counts in-flight requests so that Close can wait for them.
func (s *Server) track(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		if s.closing {
			s.mu.Unlock()
			http.Error(w, "server closing", http.StatusServiceUnavailable)
			return
		}
		s.inflight.Add(1)
		s.mu.Unlock()
		defer s.inflight.Done()
		next.ServeHTTP(w, r)
	})
}

type authKey struct{}

// authMiddleware plays the part of pkg/authn.SigningKeyMiddleware: the
// realtime API calls it only when the bearer token is not a valid realtime
// JWT. Unlike the dev server's middleware it accepts only hashed keys, and
// several of them.
func (s *Server) authMiddleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.keyed() {
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), authKey{}, true)))
			return
		}
		if !s.validKey(bearer(r)) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"error":"Authentication failed"}` + "\n"))
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), authKey{}, true)))
	})
}

// authFinder returns the single account and environment of this server for
// requests that authenticated with a signing key. A realtime JWT alone (which
// bypasses authMiddleware) does not pass, so a subscription token cannot
// mint tokens.
func (s *Server) authFinder(ctx context.Context) (apiv1auth.V1Auth, error) {
	if ok, _ := ctx.Value(authKey{}).(bool); !ok {
		return nil, errors.New("no signing key")
	}
	return fixedAuth{}, nil
}

type fixedAuth struct{}

func (fixedAuth) AccountID() uuid.UUID   { return AccountID }
func (fixedAuth) WorkspaceID() uuid.UUID { return EnvID }

func bearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "Bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

func (s *Server) validKey(k string) bool {
	if k == "" {
		return false
	}
	s.keyMu.RLock()
	defer s.keyMu.RUnlock()
	for _, h := range s.hashed {
		if constantTimeEqual(k, h) {
			return true
		}
	}
	return false
}

// keyed reports whether the server checks signing keys.
func (s *Server) keyed() bool {
	s.keyMu.RLock()
	defer s.keyMu.RUnlock()
	return len(s.hashed) > 0
}

// SetSigningKeys replaces the signing keys the server accepts from now on,
// as a key rotation in Inngest Cloud does: a client still sending an old
// key is answered 401 by the same code as a wrong key. Tokens already
// issued stay valid (they are signed with the JWTSecret). Tests use it to
// make the real server refuse an app's key and accept it again. Keys that
// are not "signkey-<env>-<hex>" are refused and nothing changes; an empty
// list is refused too (it would accept anything).
func (s *Server) SetSigningKeys(keys ...string) error {
	if len(keys) == 0 {
		return errors.New("inngestrt: SetSigningKeys needs at least one key")
	}
	hashed := make([]string, 0, len(keys))
	for i, k := range keys {
		h, err := HashSigningKey(k)
		if err != nil {
			return fmt.Errorf("inngestrt: signing key %d: %w", i, err)
		}
		hashed = append(hashed, h)
	}
	s.keyMu.Lock()
	s.hashed = hashed
	s.keyMu.Unlock()
	return nil
}

// withContext gives the Inngest code, which logs through the logger in the
// request context, a logger that writes to Logf (or nowhere), and records
// the subscriber ID header that Subscribe sends.
func (s *Server) withContext(next http.Handler) http.Handler {
	l := s.serverLogger()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := logger.WithStdlib(r.Context(), l)
		if id := r.Header.Get(subscriberHeader); id != "" {
			ctx = context.WithValue(ctx, subscriberKey{}, id)
		}
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

func (s *Server) serverLogger() logger.Logger {
	return logger.FromSlog(slog.New(s.slogHandler()), slog.LevelDebug)
}

func (s *Server) slogHandler() slog.Handler {
	if s.opts.Logf == nil {
		return slog.DiscardHandler
	}
	return slog.NewTextHandler(logfWriter{s}, &slog.HandlerOptions{Level: slog.LevelDebug})
}

func (s *Server) logf(format string, args ...any) {
	if s.opts.Logf == nil {
		return
	}
	s.logMu.RLock()
	defer s.logMu.RUnlock()
	if !s.logOff {
		s.opts.Logf(format, args...)
	}
}

// logfWriter turns the lines written to it into Logf calls.
type logfWriter struct{ s *Server }

func (w logfWriter) Write(p []byte) (int, error) {
	w.s.logf("inngest: %s", strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
