// Package wsconn reads a websocket connection in the background and queues the
// frames it receives, so that tests can wait for "the next frame" with a
// context while pings and pongs keep being answered.
package wsconn

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// closeTimeout bounds the close handshake started by Close. Some peers
// never answer a close frame (the PartyKit dev server's workerd does not
// without the web_socket_auto_reply_to_close flag); the TCP connection is
// cut after this long.
const closeTimeout = 500 * time.Millisecond

// ErrClosed is returned by Next once the connection has ended and every queued
// frame has been read.
var ErrClosed = errors.New("websocket closed")

// Conn owns a websocket connection and the goroutine that reads it.
type Conn struct {
	ws     *websocket.Conn
	tcp    net.Conn // the connection under ws, cut if the close handshake hangs
	cancel context.CancelFunc
	done   chan struct{}
	notify chan struct{}

	mu    sync.Mutex
	queue [][]byte
	err   error

	closeOnce sync.Once
	closeErr  error
}

// Dial opens a websocket to rawURL with the given request headers over a
// connection of its own, and starts reading it. ctx bounds only the
// handshake: the connection lives until Close. On a failed handshake the
// response, if any, is returned with the error.
func Dial(ctx context.Context, rawURL string, header http.Header, readLimit int64) (*Conn, *http.Response, error) {
	var (
		mu  sync.Mutex
		tcp net.Conn
	)
	var d net.Dialer
	client := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := d.DialContext(ctx, network, addr)
			if err == nil {
				mu.Lock()
				tcp = c
				mu.Unlock()
			}
			return c, err
		},
	}}
	ws, resp, err := websocket.Dial(ctx, rawURL, &websocket.DialOptions{HTTPClient: client, HTTPHeader: header})
	if err != nil {
		client.CloseIdleConnections()
		return nil, resp, err
	}
	ws.SetReadLimit(readLimit)
	mu.Lock()
	defer mu.Unlock()
	return start(ws, tcp), resp, nil
}

func start(ws *websocket.Conn, tcp net.Conn) *Conn {
	ctx, cancel := context.WithCancel(context.Background())
	c := &Conn{
		ws:     ws,
		tcp:    tcp,
		cancel: cancel,
		done:   make(chan struct{}),
		notify: make(chan struct{}, 1),
	}
	go c.read(ctx)
	return c
}

func (c *Conn) read(ctx context.Context) {
	defer close(c.done)
	for {
		_, b, err := c.ws.Read(ctx)
		c.mu.Lock()
		if err != nil {
			if s := websocket.CloseStatus(err); s != -1 {
				c.err = fmt.Errorf("%w (status %d %s)", ErrClosed, int(s), s)
			} else {
				c.err = fmt.Errorf("%w: %v", ErrClosed, err)
			}
		} else {
			c.queue = append(c.queue, b)
		}
		c.mu.Unlock()
		select {
		case c.notify <- struct{}{}:
		default:
		}
		if err != nil {
			return
		}
	}
}

// Next returns the next frame, waiting for it until ctx is done. Frames
// queued before the connection ended are still returned; after that Next
// returns an error wrapping ErrClosed.
func (c *Conn) Next(ctx context.Context) ([]byte, error) {
	for {
		c.mu.Lock()
		if len(c.queue) > 0 {
			b := c.queue[0]
			c.queue[0] = nil
			c.queue = c.queue[1:]
			c.mu.Unlock()
			return b, nil
		}
		err := c.err
		c.mu.Unlock()
		if err != nil {
			return nil, err
		}
		select {
		case <-c.notify:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// Write sends one text frame.
func (c *Conn) Write(ctx context.Context, b []byte) error {
	return c.ws.Write(ctx, websocket.MessageText, b)
}

// Done is closed once the connection has stopped being read.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Close performs a normal close handshake (bounded in time), then waits until
// the reading goroutine has returned. It is safe to call more than once.
func (c *Conn) Close() error {
	c.closeOnce.Do(func() {
		closed := make(chan error, 1)
		go func() { closed <- c.ws.Close(websocket.StatusNormalClosure, "") }()
		select {
		case err := <-closed:
			c.closeErr = err
		case <-time.After(closeTimeout):
			// No close frame came back: cut the connection, which ends
			// the handshake at once.
			if c.tcp != nil {
				_ = c.tcp.Close()
			}
			<-closed
			c.closeErr = nil
		}
		c.cancel()
		<-c.done
		if errors.Is(c.closeErr, context.Canceled) || errors.Is(c.closeErr, net.ErrClosed) {
			// The peer (or a failed read) closed the connection first.
			c.closeErr = nil
		}
	})
	return c.closeErr
}
