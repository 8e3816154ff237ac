package legacyparty_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// fakeParty is a small stand-in for a PartyKit party server: it answers
// POST /party/<room> by "broadcasting" the body unchanged to the
// subscriptions of that room, and replies "ok". Like PartyKit, it takes the
// room id from the path as sent, without unescaping it.
type fakeParty struct {
	srv *httptest.Server

	mu    sync.Mutex
	subs  map[string][]*fakeSub // by escaped room id
	posts int
}

func newFakeParty(t *testing.T) *fakeParty {
	t.Helper()
	f := &fakeParty{subs: map[string][]*fakeSub{}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeParty) serve(w http.ResponseWriter, r *http.Request) {
	room, ok := strings.CutPrefix(r.URL.EscapedPath(), "/party/")
	if !ok || room == "" || strings.Contains(room, "/") {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodPost {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 64<<20))
	if err != nil {
		http.Error(w, "read error", http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	f.posts++
	for _, s := range f.subs[room] {
		s.deliver(body)
	}
	f.mu.Unlock()
	_, _ = io.WriteString(w, "ok")
}

// Posts returns how many POSTs reached a room.
func (f *fakeParty) Posts() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.posts
}

// subscribe watches room (unescaped, as a Message names it) from now on.
func (f *fakeParty) subscribe(room string) *fakeSub {
	s := &fakeSub{f: f, room: escapeRoom(room), wake: make(chan struct{}, 1)}
	f.mu.Lock()
	f.subs[s.room] = append(f.subs[s.room], s)
	f.mu.Unlock()
	return s
}

type fakeSub struct {
	f    *fakeParty
	room string
	wake chan struct{}

	mu    sync.Mutex
	queue [][]byte
}

func (s *fakeSub) deliver(b []byte) {
	s.mu.Lock()
	s.queue = append(s.queue, b)
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Next returns the next body posted to the room.
func (s *fakeSub) Next(ctx context.Context) ([]byte, error) {
	for {
		s.mu.Lock()
		if len(s.queue) > 0 {
			b := s.queue[0]
			s.queue = s.queue[1:]
			s.mu.Unlock()
			return b, nil
		}
		s.mu.Unlock()
		select {
		case <-s.wake:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func (s *fakeSub) Close() error {
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	subs := s.f.subs[s.room]
	for i, x := range subs {
		if x == s {
			s.f.subs[s.room] = append(subs[:i:i], subs[i+1:]...)
			break
		}
	}
	return nil
}

// stalledServer accepts requests and never answers until the test ends.
func stalledServer(t *testing.T) *httptest.Server {
	t.Helper()
	done := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-done:
		}
	}))
	// Cleanups run last-in first-out: release the handlers, then close.
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(done) })
	return srv
}
