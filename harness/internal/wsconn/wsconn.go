// Package wsconn reads a websocket connection in the background and queues the
// frames it receives, so that tests can wait for "the next frame" with a
// context while pings and pongs keep being answered.
package wsconn

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// closeTimeout bounds the close handshake started by Close.
const closeTimeout = 2 * time.Second

// ErrClosed is returned by Next once the connection has ended and every queued
// frame has been read.
var ErrClosed = errors.New("websocket closed")

// Conn owns a websocket connection and the goroutine that reads it.
type Conn struct {
	ws     *websocket.Conn
	cancel context.CancelFunc
	done   chan struct{}
	notify chan struct{}

	mu    sync.Mutex
	queue [][]byte
	err   error

	closeOnce sync.Once
	closeErr  error
}

// New starts reading ws until it ends or Close is called. Reading is not
// bounded by any caller context: the connection lives until Close.
func New(ws *websocket.Conn) *Conn {
	ctx, cancel := context.WithCancel(context.Background())
	c := &Conn{
		ws:     ws,
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
			_ = c.ws.CloseNow()
			c.closeErr = <-closed
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
