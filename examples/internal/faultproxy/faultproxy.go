// Package faultproxy is a loopback TCP proxy that plays a server's network
// faults for rehearsals and tests: down (the port refuses connections) and
// hanging (it accepts and never answers). A server that refuses the
// client's key is the server's own doing (inngestrt.Server.SetSigningKeys),
// not the proxy's.
package faultproxy

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
)

// Fault is what the proxy does with connections.
type Fault string

const (
	// None forwards every connection to the target.
	None Fault = "none"
	// Down closes the listener: a dial is refused, as by a stopped server.
	Down Fault = "down"
	// Hang accepts connections and reads what is sent, but neither
	// forwards it nor answers, as a server that is stuck.
	Hang Fault = "hang"
)

// ParseFault returns the Fault named s.
func ParseFault(s string) (Fault, error) {
	switch f := Fault(s); f {
	case None, Down, Hang:
		return f, nil
	}
	return "", fmt.Errorf("faultproxy: unknown fault %q (none, down or hang)", s)
}

// Proxy forwards connections on a loopback address to a target address,
// unless a fault is set.
type Proxy struct {
	addr   string // where it listens, kept across Down
	target string

	mu     sync.Mutex
	fault  Fault
	ln     net.Listener // nil while Down or closed
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

// Start listens on a free port of 127.0.0.1 and forwards to target
// ("host:port").
func Start(target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{addr: ln.Addr().String(), target: target, fault: None, conns: map[net.Conn]struct{}{}}
	p.serve(ln)
	return p, nil
}

// Addr is the proxy's address, "127.0.0.1:PORT".
func (p *Proxy) Addr() string { return p.addr }

// Fault returns the fault in force.
func (p *Proxy) Fault() Fault {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.fault
}

// Set puts fault in force. When it changes the fault, every open
// connection is cut, so that a client's pooled connection meets the fault
// too (and, for None, reconnects to a healthy server); setting the fault
// in force again changes nothing. Leaving Down listens again on the same
// address.
func (p *Proxy) Set(fault Fault) error {
	if _, err := ParseFault(string(fault)); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return errors.New("faultproxy: closed")
	}
	if fault == p.fault {
		return nil
	}
	for c := range p.conns {
		_ = c.Close()
	}
	switch {
	case fault == Down && p.ln != nil:
		_ = p.ln.Close()
		p.ln = nil
	case fault != Down && p.ln == nil:
		ln, err := net.Listen("tcp", p.addr)
		if err != nil {
			return fmt.Errorf("faultproxy: listen again on %s: %w", p.addr, err)
		}
		p.serveLocked(ln)
	}
	p.fault = fault
	return nil
}

// Close stops the proxy and cuts every connection; it returns once every
// goroutine of the proxy has ended.
func (p *Proxy) Close() error {
	p.mu.Lock()
	p.closed = true
	if p.ln != nil {
		_ = p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		_ = c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
	return nil
}

func (p *Proxy) serve(ln net.Listener) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.serveLocked(ln)
}

func (p *Proxy) serveLocked(ln net.Listener) {
	p.ln = ln
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return // closed by Set(Down) or Close
			}
			p.handle(c)
		}
	}()
}

// track registers c and returns the fault in force, or closes c and
// reports false once the proxy closed.
func (p *Proxy) track(c net.Conn) (Fault, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	// Closed, or Down since the connection was accepted: a server that is
	// down answers nothing, so the connection is cut, never forwarded.
	if p.closed || p.fault == Down {
		_ = c.Close()
		return "", false
	}
	p.conns[c] = struct{}{}
	return p.fault, true
}

func (p *Proxy) untrack(cs ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range cs {
		delete(p.conns, c)
		_ = c.Close()
	}
}

func (p *Proxy) handle(c net.Conn) {
	fault, ok := p.track(c)
	if !ok {
		return
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		if fault == Hang {
			_, _ = io.Copy(io.Discard, c) // until the client gives up or Set cuts it
			p.untrack(c)
			return
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			p.untrack(c)
			return
		}
		if _, ok := p.track(up); !ok {
			p.untrack(c)
			return
		}
		done := make(chan struct{}, 2)
		pipe := func(dst, src net.Conn) {
			_, _ = io.Copy(dst, src)
			done <- struct{}{}
		}
		go pipe(up, c)
		go pipe(c, up)
		<-done // either side ended: end both
		p.untrack(c, up)
		<-done
	}()
}
