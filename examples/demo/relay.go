package main

import (
	"errors"
	"io"
	"net"
	"sync"
)

// relay forwards TCP connections from its own loopback listener to target.
// In -serve mode the browsers reach Inngest Realtime and PartyKit through
// one relay each, so that the page's "cut" button can drop their
// connections as a network change does, without a close handshake, while
// the servers and the Go subscribers stay up.
type relay struct {
	ln     net.Listener
	target string

	mu     sync.Mutex
	held   bool                  // new connections are closed at once
	conns  map[net.Conn]net.Conn // browser side → server side
	closed bool
	wg     sync.WaitGroup
}

// startRelay listens on host (port 0) and forwards to target.
func startRelay(host, target string) (*relay, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return nil, err
	}
	r := &relay{ln: ln, target: target, conns: map[net.Conn]net.Conn{}}
	r.wg.Add(1)
	go r.accept()
	return r, nil
}

// addr is host:port of the relay's listener.
func (r *relay) addr() string { return r.ln.Addr().String() }

func (r *relay) accept() {
	defer r.wg.Done()
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return
		}
		r.mu.Lock()
		refuse := r.held || r.closed
		r.mu.Unlock()
		if refuse {
			_ = c.Close() // the network is down: the handshake fails
			continue
		}
		r.wg.Add(1)
		go r.forward(c)
	}
}

func (r *relay) forward(c net.Conn) {
	defer r.wg.Done()
	up, err := net.Dial("tcp", r.target)
	if err != nil {
		_ = c.Close()
		return
	}
	r.mu.Lock()
	if r.held || r.closed {
		r.mu.Unlock()
		_ = c.Close()
		_ = up.Close()
		return
	}
	r.conns[c] = up
	r.mu.Unlock()
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		done <- struct{}{}
	}
	go pipe(up, c)
	go pipe(c, up)
	<-done // either side ended: end both
	_ = c.Close()
	_ = up.Close()
	<-done
	r.mu.Lock()
	delete(r.conns, c)
	r.mu.Unlock()
}

// cut drops every connection at once, without a close handshake (a TCP
// reset, as a network change does); with hold, new ones are refused until
// heal. It returns how many connections it dropped.
func (r *relay) cut(hold bool) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.held = hold
	n := len(r.conns)
	for c, up := range r.conns {
		for _, conn := range []net.Conn{c, up} {
			if tc, ok := conn.(*net.TCPConn); ok {
				_ = tc.SetLinger(0) // reset, not a graceful close
			}
			_ = conn.Close()
		}
	}
	return n
}

// heal accepts new connections again after cut(true).
func (r *relay) heal() {
	r.mu.Lock()
	r.held = false
	r.mu.Unlock()
}

// close stops the listener, drops every connection and waits for the
// relay's goroutines.
func (r *relay) close() error {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	err := r.ln.Close()
	r.cut(false)
	r.wg.Wait()
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}
