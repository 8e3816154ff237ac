package inngestrt

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"
	"github.com/inngest/inngest/pkg/execution/realtime"
	"github.com/inngest/inngest/pkg/execution/realtime/streamingtypes"
	"github.com/redis/rueidis"
)

// backend is one instance of the Inngest realtime API: a broadcaster, its
// two Redis clients and the routes over it. A Server starts with one;
// Redeploy adds another over the same Redis, as a deploy of Inngest puts a
// new instance behind the same address.
type backend struct {
	pubc, subc rueidis.Client
	bc         realtime.Broadcaster
	router     http.Handler
	live       *liveSubs
}

// newBackend starts an instance of the realtime API on the server's Redis.
func (s *Server) newBackend() (*backend, error) {
	b := &backend{live: &liveSubs{m: map[uuid.UUID]realtime.Subscription{}}}
	var err error
	b.pubc, err = rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{s.redis.Addr()}, DisableCache: true})
	if err != nil {
		return nil, fmt.Errorf("inngestrt: redis publish client: %w", err)
	}
	b.subc, err = rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{s.redis.Addr()}, DisableCache: true})
	if err != nil {
		b.pubc.Close()
		return nil, fmt.Errorf("inngestrt: redis subscribe client: %w", err)
	}
	b.bc = realtime.NewRedisBroadcaster(b.pubc, b.subc, realtime.BroadcasterOpts{ShutdownGracePeriod: shutdownGrace})
	rt := realtime.NewAPI(realtime.APIOpts{
		JWTSecret:      s.jwtSecret,
		Broadcaster:    observed{Broadcaster: b.bc, t: s.subs, live: b.live},
		AuthMiddleware: s.authMiddleware,
		AuthFinder:     s.authFinder,
	})
	router := chi.NewRouter()
	router.Mount("/v1", rt)
	b.router = router
	return b, nil
}

// release closes the backend's Redis clients.
func (b *backend) release() {
	b.pubc.Close()
	b.subc.Close()
}

// Redeploy plays a deploy of Inngest: a new instance of the realtime API,
// over the same Redis, serves every request from now on, and the instance
// that served until now sends "closing" (the message its broadcaster sends
// when it shuts down, written by the server's own Subscription) to each of
// its websocket subscriptions. It returns how many of them it told.
//
// Unlike a real deploy, whose old instance cuts its connections after a
// grace period, the old instance keeps serving its connections, and
// delivering what is published, until their clients close them or the
// Server closes: the grace lasts as long as the clients take, so whether
// a client opened its new connection before leaving the old one is the
// client's doing, never a timer's.
func (s *Server) Redeploy(ctx context.Context) (int, error) {
	s.mu.Lock()
	closing := s.closing
	s.mu.Unlock()
	if closing {
		return 0, errors.New("inngestrt: redeploy: the server is closing")
	}
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("inngestrt: redeploy: %w", err)
	}
	b, err := s.newBackend()
	if err != nil {
		return 0, fmt.Errorf("inngestrt: redeploy: %w", err)
	}
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		b.release()
		return 0, errors.New("inngestrt: redeploy: the server is closing")
	}
	s.backends = append(s.backends, b)
	old := s.current.Swap(b)
	s.mu.Unlock()
	msg := realtime.Message{Kind: streamingtypes.MessageKindClosing, CreatedAt: time.Now()}
	told := 0
	for _, sub := range old.live.all() {
		// A subscription whose client left fails to write; the server
		// never removes those (see the package doc).
		if sub.WriteMessage(msg) == nil {
			told++
		}
	}
	s.logf("inngestrt: redeployed: a new instance serves %s; %d subscriptions of the old one told it is closing", s.url, told)
	return told, nil
}

// liveSubs are the subscriptions of one broadcaster.
type liveSubs struct {
	mu sync.Mutex
	m  map[uuid.UUID]realtime.Subscription
}

func (l *liveSubs) add(sub realtime.Subscription) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.m[sub.ID()] = sub
}

func (l *liveSubs) remove(id uuid.UUID) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.m, id)
}

func (l *liveSubs) all() []realtime.Subscription {
	l.mu.Lock()
	defer l.mu.Unlock()
	subs := make([]realtime.Subscription, 0, len(l.m))
	for _, sub := range l.m {
		subs = append(subs, sub)
	}
	return subs
}
