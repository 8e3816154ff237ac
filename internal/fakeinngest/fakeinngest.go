// Package fakeinngest is an in-memory stand-in for Inngest Realtime's publish
// route, for unit tests only: it records what was posted per channel and
// topic and lets tests inject answers. The end-to-end tests in the harness
// module run against the real server code instead.
package fakeinngest

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"

	"github.com/coursebuilder/realtime-go/realtime/realtimetest"
)

// Request is one publish the fake received.
type Request struct {
	Channel, Topic string
	Header         http.Header
	Body           []byte
}

// Server records publishes. Its zero value is not usable; call [New].
type Server struct {
	*httptest.Server

	mu      sync.Mutex
	reqs    []Request
	changed chan struct{}
	answer  func(n int, r *http.Request) int // status for the nth request (1-based); 0 means 200
}

// New starts a fake on a loopback port. answer, if not nil, picks the status
// of each request; a non-2xx request is not recorded as delivered.
func New(answer func(n int, r *http.Request) int) *Server {
	s := &Server{answer: answer, changed: make(chan struct{})}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/v1/realtime/publish" {
		http.NotFound(w, r)
		return
	}
	body, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	n := len(s.reqs) + 1
	s.mu.Unlock()
	status := http.StatusOK
	if s.answer != nil {
		if st := s.answer(n, r); st != 0 {
			status = st
		}
	}
	s.mu.Lock()
	s.reqs = append(s.reqs, Request{Channel: r.URL.Query().Get("channel"), Topic: r.URL.Query().Get("topic"), Header: r.Header.Clone(), Body: body})
	if status < 300 {
		close(s.changed)
		s.changed = make(chan struct{})
	} else {
		s.reqs[len(s.reqs)-1].Body = nil // not delivered
	}
	s.mu.Unlock()
	w.WriteHeader(status)
}

// Requests returns every request received, delivered or not.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.reqs)
}

// Subscribe implements realtimetest.Target's Subscribe: it yields the bodies
// delivered to channel (= room) for the given topics from now on.
func (s *Server) Subscribe(_ context.Context, channel string, topics []string) (realtimetest.Subscription, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return &sub{s: s, channel: channel, topics: topics, from: len(s.reqs)}, nil
}

type sub struct {
	s       *Server
	channel string
	topics  []string
	from    int
}

func (u *sub) Next(ctx context.Context) ([]byte, error) {
	for {
		u.s.mu.Lock()
		for ; u.from < len(u.s.reqs); u.from++ {
			r := u.s.reqs[u.from]
			if r.Body != nil && r.Channel == u.channel && slices.Contains(u.topics, r.Topic) {
				u.from++
				u.s.mu.Unlock()
				return r.Body, nil
			}
		}
		changed := u.s.changed
		u.s.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func (u *sub) Close() error { return nil }
