package inngest_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/coursebuilder/realtime-go/realtime"
	"github.com/coursebuilder/realtime-go/realtime/inngest"
)

// rawServer accepts TCP connections on loopback and hands each to serve,
// which plays a network fault at the byte level. It counts connections.
type rawServer struct {
	ln    net.Listener
	conns atomic.Int32
	wg    sync.WaitGroup
	done  chan struct{}
}

func newRawServer(t *testing.T, serve func(n int, c net.Conn, done <-chan struct{})) *rawServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s := &rawServer{ln: ln, done: make(chan struct{})}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			n := int(s.conns.Add(1))
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer c.Close()
				serve(n, c, s.done)
			}()
		}
	}()
	t.Cleanup(func() { close(s.done); _ = ln.Close(); s.wg.Wait() })
	return s
}

func (s *rawServer) URL() string { return "http://" + s.ln.Addr().String() }

// readRequest reads one whole HTTP request from c.
func readRequest(c net.Conn) error {
	req, err := http.ReadRequest(bufio.NewReader(c))
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, req.Body)
	return err
}

// reset closes c with a TCP RST instead of a FIN.
func reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
}

func publishTo(t *testing.T, base string, opts inngest.Options) error {
	t.Helper()
	p := newInngest(t, base, opts)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return p.Publish(ctx, realtime.Message{Room: "r", Name: "video.asset.ready", Body: "x"})
}

// A connection reset after the client wrote its request is ambiguous to the
// client, whether or not the server read it: it is reported, never retried.
func TestFaultResetAfterSendingIsMaybeDelivered(t *testing.T) {
	for name, readFirst := range map[string]bool{"after the first byte arrived": false, "after the server read it all": true} {
		t.Run(name, func(t *testing.T) {
			srv := newRawServer(t, func(_ int, c net.Conn, _ <-chan struct{}) {
				if readFirst {
					_ = readRequest(c)
				} else {
					_, _ = c.Read(make([]byte, 1)) // the request is on its way
				}
				reset(c)
			})
			err := publishTo(t, srv.URL(), inngest.Options{})
			require.ErrorIs(t, err, realtime.ErrUnavailable)
			require.ErrorIs(t, err, realtime.ErrMaybeDelivered)
			assert.Equal(t, int32(1), srv.conns.Load(), "not retried: the server may have delivered it")
		})
	}
}

func TestFaultAcceptAndNeverAnswer(t *testing.T) {
	srv := newRawServer(t, func(_ int, c net.Conn, done <-chan struct{}) {
		_ = readRequest(c)
		<-done
	})
	err := publishTo(t, srv.URL(), inngest.Options{AttemptTimeout: 100 * time.Millisecond})
	require.ErrorIs(t, err, realtime.ErrMaybeDelivered)
	assert.Equal(t, int32(1), srv.conns.Load())
}

func TestFaultTruncatedSuccessIsASuccess(t *testing.T) {
	srv := newRawServer(t, func(_ int, c net.Conn, _ <-chan struct{}) {
		if readRequest(c) == nil {
			_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part")
		}
	})
	require.NoError(t, publishTo(t, srv.URL(), inngest.Options{}), "the server accepted it; a retry would deliver twice")
	assert.Equal(t, int32(1), srv.conns.Load())
}

func TestFaultTruncatedErrorKeepsItsStatus(t *testing.T) {
	srv := newRawServer(t, func(n int, c net.Conn, _ <-chan struct{}) {
		if readRequest(c) != nil {
			return
		}
		if n == 1 {
			_, _ = io.WriteString(c, "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 100\r\n\r\nbusy")
			return
		}
		_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
	})
	require.NoError(t, publishTo(t, srv.URL(), inngest.Options{}), "a cut-short 503 is still a 503: retried")
	assert.Equal(t, int32(2), srv.conns.Load())
}

func TestFaultGarbageAnswer(t *testing.T) {
	srv := newRawServer(t, func(_ int, c net.Conn, _ <-chan struct{}) {
		if readRequest(c) == nil {
			_, _ = io.WriteString(c, "SSH-2.0-OpenSSH\r\n\r\n")
		}
	})
	err := publishTo(t, srv.URL(), inngest.Options{})
	require.ErrorIs(t, err, realtime.ErrUnavailable)
	require.ErrorIs(t, err, realtime.ErrMaybeDelivered, "the request went out before the nonsense came back")
}

func TestFaultDNSFailureIsRetriedAndUnavailable(t *testing.T) {
	var lookups atomic.Int32
	resolver := &net.Resolver{PreferGo: true, Dial: func(context.Context, string, string) (net.Conn, error) {
		lookups.Add(1)
		return nil, errors.New("no DNS server reachable")
	}}
	client := &http.Client{Transport: &http.Transport{DialContext: (&net.Dialer{Resolver: resolver}).DialContext}}
	err := publishTo(t, "http://inngest.realtime-go.test", inngest.Options{HTTPClient: client})
	require.ErrorIs(t, err, realtime.ErrUnavailable)
	assert.NotErrorIs(t, err, realtime.ErrMaybeDelivered)
	var pe *realtime.PublishError
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, 3, pe.Attempts, "nothing was sent: safe to retry")
	assert.Positive(t, lookups.Load())
	assert.True(t, strings.Contains(err.Error(), "inngest.realtime-go.test"), "the error names the host that failed: %v", err)
}
