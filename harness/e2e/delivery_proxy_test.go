package e2e_test

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coursebuilder/realtime-go/realtime"
)

// wsProxy is a TCP proxy in front of an Inngest realtime server's
// websocket, for the delivery tests. It relays every byte, reads the
// handshake (the subscription token presented and the status answered) and,
// once a connection is upgraded, parses the server's frames, so that it can
// cut a connection (a TCP reset) at a data message or drop data messages
// without closing anything. The client's side is relayed as it is.
//
// Faults apply only while the proxy is armed, and count the data messages
// each connection carried since it was armed.
type wsProxy struct {
	t      testing.TB
	ln     net.Listener
	target string

	armed atomic.Bool
	// cutAt resets a connection instead of relaying its cutAt-th data
	// message (0: never); dropEvery drops every dropEvery-th one (0:
	// never).
	cutAt, dropEvery int

	mu    sync.Mutex
	conns []*proxyConn
	open  map[net.Conn]struct{}
	wg    sync.WaitGroup

	resets, dropped atomic.Int64
	// live is when the proxy first relayed each message id (an envelope's
	// "id") to a subscriber.
	live map[string]time.Time
}

// proxyConn is what the proxy saw of one connection.
type proxyConn struct {
	// JWT is the bearer token of the handshake; Status the server's answer.
	JWT    string
	Status int
	// Start is when the handshake arrived, End when the connection ended.
	Start, End time.Time
	// Data counts the data messages relayed or dropped while armed.
	Data int
}

// maxFramePayload bounds one frame the proxy reads.
const maxFramePayload = 16 << 20

// newWSProxy starts a proxy to the server at baseURL ("http://host:port"),
// closed when t ends.
func newWSProxy(t testing.TB, baseURL string) *wsProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &wsProxy{t: t, ln: ln, target: strings.TrimPrefix(baseURL, "http://"), open: map[net.Conn]struct{}{}, live: map[string]time.Time{}}
	p.wg.Go(p.accept)
	t.Cleanup(p.close)
	return p
}

// URL is the proxy's base URL, for inngest.Subscribe.
func (p *wsProxy) URL() string { return "http://" + p.ln.Addr().String() }

// arm turns the faults on (or off), each connection counting from now.
func (p *wsProxy) arm(on bool) { p.armed.Store(on) }

// Live returns when the proxy first relayed the message with each id.
func (p *wsProxy) Live() map[string]time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return maps.Clone(p.live)
}

// Conns returns what the proxy saw of each connection, in arrival order.
func (p *wsProxy) Conns() []proxyConn {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]proxyConn, len(p.conns))
	for i, c := range p.conns {
		out[i] = *c
	}
	return out
}

func (p *wsProxy) close() {
	_ = p.ln.Close()
	p.mu.Lock()
	for c := range p.open {
		_ = c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *wsProxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Go(func() { p.serve(c) })
	}
}

// track registers conns to be closed by close; it reports false when the
// proxy is closing.
func (p *wsProxy) track(conns ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.open == nil {
		return false
	}
	for _, c := range conns {
		p.open[c] = struct{}{}
	}
	return true
}

func (p *wsProxy) untrack(conns ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range conns {
		delete(p.open, c)
	}
}

// serve relays one client connection.
func (p *wsProxy) serve(client net.Conn) {
	defer client.Close()
	var d net.Dialer
	server, err := d.Dial("tcp", p.target)
	if err != nil {
		return // the client sees its connection end: as if the server were down
	}
	defer server.Close()
	if !p.track(client, server) {
		return
	}
	defer p.untrack(client, server)

	rec := &proxyConn{Start: time.Now()}
	defer func() {
		p.mu.Lock()
		rec.End = time.Now()
		p.mu.Unlock()
	}()
	cr := bufio.NewReader(client)
	head, err := readHead(cr)
	if err != nil {
		return
	}
	p.mu.Lock()
	rec.JWT = headerValue(head, "Authorization")
	rec.JWT = strings.TrimPrefix(rec.JWT, "Bearer ")
	p.conns = append(p.conns, rec)
	p.mu.Unlock()
	if _, err := server.Write(head); err != nil {
		return
	}
	// The client's side, frames included, goes through unchanged.
	var up sync.WaitGroup
	up.Go(func() {
		_, _ = io.Copy(server, cr)
		_ = server.Close()
	})
	defer up.Wait()
	defer client.Close()

	sr := bufio.NewReader(server)
	resp, err := readHead(sr)
	if err != nil {
		return
	}
	status := statusOf(resp)
	p.mu.Lock()
	rec.Status = status
	p.mu.Unlock()
	if status != 101 {
		// A refusal: relay it, and make sure the client does not send
		// its next handshake on this connection.
		resp = append(resp[:len(resp)-2:len(resp)-2], "Connection: close\r\n\r\n"...)
		if _, err := client.Write(resp); err == nil {
			_, _ = io.Copy(client, sr)
		}
		return
	}
	if headerValue(resp, "Sec-WebSocket-Extensions") != "" {
		p.t.Errorf("wsProxy: the server negotiated a websocket extension; the proxy cannot drop frames of a compressed stream")
		return
	}
	if _, err := client.Write(resp); err != nil {
		return
	}
	p.relayFrames(client, sr, rec)
}

// relayFrames relays the server's frames to the client, applying the
// faults to data messages.
func (p *wsProxy) relayFrames(client net.Conn, sr *bufio.Reader, rec *proxyConn) {
	for {
		frame, payload, err := readFrame(sr)
		if err != nil {
			return
		}
		id, data := dataID(frame[0], payload)
		if data && p.armed.Load() {
			p.mu.Lock()
			rec.Data++
			n := rec.Data
			p.mu.Unlock()
			switch {
			case p.cutAt > 0 && n == p.cutAt:
				p.resets.Add(1)
				resetConn(client)
				return
			case p.dropEvery > 0 && n%p.dropEvery == 0:
				p.dropped.Add(1)
				continue
			}
		}
		if data {
			p.mu.Lock()
			if _, ok := p.live[id]; !ok {
				p.live[id] = time.Now()
			}
			p.mu.Unlock()
		}
		if _, err := client.Write(frame); err != nil {
			return
		}
	}
}

// resetConn closes c with a TCP reset, as a network that fails does.
func resetConn(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
}

// readHead reads an HTTP head, up to and including its empty line.
func readHead(r *bufio.Reader) ([]byte, error) {
	var head []byte
	for {
		line, err := r.ReadSlice('\n')
		head = append(head, line...)
		if err != nil {
			return nil, err
		}
		if len(head) > 64<<10 {
			return nil, errors.New("wsProxy: HTTP head too large")
		}
		if bytes.Equal(line, []byte("\r\n")) {
			return head, nil
		}
	}
}

// headerValue returns the value of the first header named name in head.
func headerValue(head []byte, name string) string {
	for line := range strings.SplitSeq(string(head), "\r\n") {
		k, v, ok := strings.Cut(line, ":")
		if ok && strings.EqualFold(strings.TrimSpace(k), name) {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// statusOf returns the status code of a response head, 0 if unreadable.
func statusOf(head []byte) int {
	fields := strings.Fields(string(head[:bytes.IndexByte(head, '\n')+1]))
	if len(fields) < 2 {
		return 0
	}
	n, _ := strconv.Atoi(fields[1])
	return n
}

// readFrame reads one websocket frame and returns it whole and its
// payload, unmasked (the server's frames are not masked).
func readFrame(r *bufio.Reader) (frame, payload []byte, err error) {
	var h [14]byte
	if _, err := io.ReadFull(r, h[:2]); err != nil {
		return nil, nil, err
	}
	n := uint64(h[1] & 0x7f)
	hl := 2
	switch n {
	case 126:
		if _, err := io.ReadFull(r, h[2:4]); err != nil {
			return nil, nil, err
		}
		n, hl = uint64(binary.BigEndian.Uint16(h[2:4])), 4
	case 127:
		if _, err := io.ReadFull(r, h[2:10]); err != nil {
			return nil, nil, err
		}
		n, hl = binary.BigEndian.Uint64(h[2:10]), 10
	}
	masked := h[1]&0x80 != 0
	if masked {
		if _, err := io.ReadFull(r, h[hl:hl+4]); err != nil {
			return nil, nil, err
		}
		hl += 4
	}
	if n > maxFramePayload {
		return nil, nil, fmt.Errorf("wsProxy: frame of %d bytes", n)
	}
	frame = make([]byte, hl+int(n))
	copy(frame, h[:hl])
	if _, err := io.ReadFull(r, frame[hl:]); err != nil {
		return nil, nil, err
	}
	payload = frame[hl:]
	if masked {
		payload = bytes.Clone(payload)
		key := h[hl-4 : hl]
		for i := range payload {
			payload[i] ^= key[i%4]
		}
	}
	return frame, payload, nil
}

// dataID reports whether a frame is a whole text message of kind "data",
// and the id of the envelope it carries ("" if none).
func dataID(b0 byte, payload []byte) (string, bool) {
	const fin, text = 0x80, 0x1
	if b0&fin == 0 || b0&0x0f != text {
		return "", false
	}
	var m struct {
		Kind string          `json:"kind"`
		Data json.RawMessage `json:"data"`
	}
	if json.Unmarshal(payload, &m) != nil || m.Kind != "data" {
		return "", false
	}
	env, err := realtime.DecodeEnvelope(m.Data)
	if err != nil {
		return "", true
	}
	return env.ID, true
}
