// Package partykit runs the real PartyKit dev server (the npm package
// partykit, with its workerd runtime) serving the course-builder party in
// ./server, and talks to it over plain HTTP and websockets.
//
// The node project must be installed first: npm ci --prefix harness/partykit/server.
//
// # Process clean-up
//
// Start runs the PartyKit CLI (server/node_modules/.bin/partykit, which is
// what npx partykit runs) under a small sh supervisor, all in a new process
// group. Close sends SIGTERM to the whole group (sh, node, workerd), then
// SIGKILL if anything is still alive after a few seconds, and waits until
// every process of the group has closed its output. If the Go process dies
// without calling Close (a test binary killed by -timeout, a crash, SIGKILL),
// the supervisor sees its stdin pipe from the Go process close and kills the
// group itself, so no dev server outlives the test binary.
package partykit

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/coursebuilder/realtime-go/harness/internal/wsconn"
)

const (
	// defaultStartTimeout bounds the first build and start of the dev server.
	defaultStartTimeout = 90 * time.Second
	// termGrace is how long Close waits after SIGTERM before SIGKILL.
	termGrace = 5 * time.Second
	// readyRoom is the room Start polls to learn that the server answers.
	readyRoom = "harness-readiness-probe"
	// startAttempts is how often Start tries a new port when the chosen
	// one was taken in the meantime.
	startAttempts = 3
)

// supervisor runs the CLI ("$@") in the background and kills the whole
// process group once its stdin (a pipe held by the Go process) reaches EOF,
// which happens when the Go process exits for any reason.
const supervisor = `exec 3<&0 </dev/null
"$@" &
pk=$!
(read -r line <&3; kill -TERM 0) &
wait "$pk"`

// Options configures Start.
type Options struct {
	// Dir is the node project holding partykit.json and node_modules; it
	// defaults to DefaultDir().
	Dir string
	// Logf, if set, receives the dev server's output line by line (and
	// harness diagnostics), so test logs show the server really started.
	Logf func(format string, args ...any)
	// StartTimeout bounds the start-up (build included); default 90 s.
	StartTimeout time.Duration
}

// Server is a running PartyKit dev server.
type Server struct {
	opts   Options
	port   int
	url    string
	client *http.Client

	cmd     *exec.Cmd
	pgid    int
	stdinW  *os.File
	exited  chan struct{} // closed when the supervisor has exited
	waitErr error
	logDone chan struct{} // closed when every process closed the output pipe

	logMu  sync.RWMutex
	logOff bool
	tailMu sync.Mutex
	tail   []string

	closeOnce sync.Once
	closeErr  error
}

// DefaultDir returns the node project next to this source file
// (harness/partykit/server), or ./server when the source location is not
// known (a binary built with -trimpath).
func DefaultDir() string {
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		return filepath.Join(filepath.Dir(file), "server")
	}
	return "server"
}

// Available reports why the dev server cannot run from dir ("" means
// DefaultDir()): no node or sh in PATH, or the node project not installed.
// It returns nil when Start can be tried.
func Available(dir string) error {
	if dir == "" {
		dir = DefaultDir()
	}
	if _, err := exec.LookPath("node"); err != nil {
		return errors.New("partykit: node is not in PATH (Node.js 18 or later is needed)")
	}
	if _, err := exec.LookPath("sh"); err != nil {
		return errors.New("partykit: sh is not in PATH")
	}
	if _, err := os.Stat(filepath.Join(dir, "partykit.json")); err != nil {
		return fmt.Errorf("partykit: no partykit.json in %s", dir)
	}
	if _, err := os.Stat(cliPath(dir)); err != nil {
		return fmt.Errorf("partykit: %s is missing: run npm ci in harness/partykit/server (from the repository root: npm ci --prefix harness/partykit/server)", cliPath(dir))
	}
	return nil
}

func cliPath(dir string) string {
	return filepath.Join(dir, "node_modules", ".bin", "partykit")
}

// Start runs `partykit dev --port N --disable-request-cf-fetch --no-hotkeys
// --persist false` on a free port and returns once the server answers HTTP
// on 127.0.0.1:N. ctx bounds only the start-up; the server runs until Close.
func Start(ctx context.Context, opts Options) (*Server, error) {
	if opts.Dir == "" {
		opts.Dir = DefaultDir()
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("partykit: %w", err)
	}
	opts.Dir = dir
	if opts.StartTimeout <= 0 {
		opts.StartTimeout = defaultStartTimeout
	}
	if err := Available(dir); err != nil {
		return nil, err
	}
	var errs []error
	for range startAttempts {
		s, err := start(ctx, opts)
		if err == nil {
			return s, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil || !errors.Is(err, errExited) {
			break
		}
	}
	return nil, errors.Join(errs...)
}

var errExited = errors.New("dev server exited")

func start(ctx context.Context, opts Options) (*Server, error) {
	port, err := freePort()
	if err != nil {
		return nil, fmt.Errorf("partykit: find a free port: %w", err)
	}
	s := &Server{
		opts:    opts,
		port:    port,
		url:     "http://127.0.0.1:" + strconv.Itoa(port),
		client:  &http.Client{Transport: &http.Transport{}},
		exited:  make(chan struct{}),
		logDone: make(chan struct{}),
	}

	stdinR, stdinW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("partykit: %w", err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		stdinR.Close()
		stdinW.Close()
		return nil, fmt.Errorf("partykit: %w", err)
	}
	cmd := exec.Command("sh", "-c", supervisor, "partykit-supervisor",
		cliPath(opts.Dir), "dev",
		"--port", strconv.Itoa(port),
		"--disable-request-cf-fetch",
		"--no-hotkeys",
		"--persist", "false",
	)
	cmd.Dir = opts.Dir
	cmd.Env = append(os.Environ(), "NO_COLOR=1", "FORCE_COLOR=0")
	cmd.Stdin = stdinR
	cmd.Stdout = outW
	cmd.Stderr = outW
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	err = cmd.Start()
	stdinR.Close()
	outW.Close()
	if err != nil {
		stdinW.Close()
		outR.Close()
		return nil, fmt.Errorf("partykit: start dev server: %w", err)
	}
	s.cmd = cmd
	s.pgid = cmd.Process.Pid
	s.stdinW = stdinW
	s.logf("partykit: started %s dev --port %d (pid %d, process group %d) in %s", cliPath(opts.Dir), port, s.pgid, s.pgid, opts.Dir)
	go s.readLogs(outR)
	go func() {
		s.waitErr = cmd.Wait()
		close(s.exited)
	}()

	startCtx, cancel := context.WithTimeout(ctx, opts.StartTimeout)
	defer cancel()
	if err := s.waitReady(startCtx); err != nil {
		_ = s.Close()
		return nil, fmt.Errorf("partykit: dev server on port %d did not start: %w; last output:\n%s", port, err, s.lastOutput())
	}
	s.logf("partykit: dev server ready at %s", s.url)
	return s, nil
}

// waitReady polls a room until the server answers, the process exits or
// ctx ends.
func (s *Server) waitReady(ctx context.Context) error {
	probe := s.url + "/party/" + readyRoom
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, probe, nil)
		if err != nil {
			return err
		}
		resp, err := s.client.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-s.exited:
			return fmt.Errorf("%w (%v)", errExited, s.waitErr)
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

var ansi = regexp.MustCompile(`\x1b\[[0-9;?]*[A-Za-z]`)

// readLogs forwards the server's output to Logf and keeps the last lines
// for error messages. It returns when every process has closed the pipe.
func (s *Server) readLogs(r io.ReadCloser) {
	defer close(s.logDone)
	defer r.Close()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimRight(ansi.ReplaceAllString(sc.Text(), ""), " \r")
		if strings.TrimSpace(line) == "" {
			continue
		}
		s.tailMu.Lock()
		s.tail = append(s.tail, line)
		if len(s.tail) > 40 {
			s.tail = s.tail[len(s.tail)-40:]
		}
		s.tailMu.Unlock()
		s.logf("partykit: %s", line)
	}
	// Drain anything left after a scanner error so writers never block.
	_, _ = io.Copy(io.Discard, r)
}

func (s *Server) lastOutput() string {
	s.tailMu.Lock()
	defer s.tailMu.Unlock()
	return strings.Join(s.tail, "\n")
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

// URL returns "http://127.0.0.1:N". The dev server listens on every
// interface; talk to it on 127.0.0.1 only.
func (s *Server) URL() string { return s.url }

// Port returns the port the dev server listens on.
func (s *Server) Port() int { return s.port }

// RoomURL returns the HTTP URL of a room, with the room path-escaped.
func (s *Server) RoomURL(room string) string {
	return s.url + "/party/" + url.PathEscape(room)
}

// Close kills the dev server's whole process group (SIGTERM, then SIGKILL
// after a grace period) and waits for it. It is safe to call more than once.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.logf("partykit: stopping dev server (process group %d)", s.pgid)
		_ = syscall.Kill(-s.pgid, syscall.SIGTERM)
		gone := s.waitGone(termGrace)
		if !gone {
			s.logf("partykit: still running %s after SIGTERM; sending SIGKILL", termGrace)
			_ = syscall.Kill(-s.pgid, syscall.SIGKILL)
			gone = s.waitGone(termGrace)
		}
		_ = s.stdinW.Close()
		s.client.CloseIdleConnections()
		if !gone {
			s.closeErr = fmt.Errorf("partykit: process group %d still running after SIGKILL", s.pgid)
		}
		s.logMu.Lock()
		s.logOff = true
		s.logMu.Unlock()
	})
	return s.closeErr
}

// waitGone waits until the supervisor has been reaped and every process of
// the group has closed the output pipe (exited).
func (s *Server) waitGone(d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	for _, ch := range []chan struct{}{s.exited, s.logDone} {
		select {
		case <-ch:
		case <-timer.C:
			return false
		}
	}
	return true
}

// Broadcast does what the legacy PartykitProvider's broadcastMessage does:
// POST body to /party/<room> with no content type and return the answer
// text. A status other than 2xx is an error.
func (s *Server) Broadcast(ctx context.Context, room string, body []byte) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.RoomURL(room), strings.NewReader(string(body)))
	if err != nil {
		return "", fmt.Errorf("partykit: broadcast: %w", err)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return "", fmt.Errorf("partykit: broadcast: %w", err)
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", fmt.Errorf("partykit: broadcast: %w", err)
	}
	if resp.StatusCode/100 != 2 {
		return string(answer), fmt.Errorf("partykit: broadcast: status %d: %s", resp.StatusCode, strings.TrimSpace(string(answer)))
	}
	return string(answer), nil
}

// Subscription is a websocket connected to a room. A goroutine reads it
// continuously and queues the text frames until they are asked for.
type Subscription struct {
	c *wsconn.Conn
}

// Subscribe dials ws://127.0.0.1:N/party/<room> (room path-escaped). ctx
// bounds only the handshake; the connection lives until Close or until the
// server ends it.
func (s *Server) Subscribe(ctx context.Context, room string) (*Subscription, error) {
	c, resp, err := wsconn.Dial(ctx, "ws"+s.RoomURL(room)[len("http"):], nil, 8<<20)
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("partykit: subscribe to room %q: status %d: %w", room, resp.StatusCode, err)
		}
		return nil, fmt.Errorf("partykit: subscribe to room %q: %w", room, err)
	}
	return &Subscription{c: c}, nil
}

// Next returns the next frame from the room, waiting until ctx is done.
// After the connection ends and every queued frame was read it returns an
// error.
func (s *Subscription) Next(ctx context.Context) ([]byte, error) {
	b, err := s.c.Next(ctx)
	if err != nil {
		return nil, fmt.Errorf("partykit: next frame: %w", err)
	}
	return b, nil
}

// ExpectNone waits for d and returns an error if a frame arrives meanwhile.
func (s *Subscription) ExpectNone(d time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	b, err := s.c.Next(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("partykit: %w", err)
	}
	return fmt.Errorf("partykit: unexpected frame: %s", b)
}

// Send writes a text frame to the room; the party broadcasts it to the other
// connections as "<sender id>: <text>".
func (s *Subscription) Send(ctx context.Context, text []byte) error {
	if err := s.c.Write(ctx, text); err != nil {
		return fmt.Errorf("partykit: send: %w", err)
	}
	return nil
}

// Done is closed once the connection has ended.
func (s *Subscription) Done() <-chan struct{} { return s.c.Done() }

// Close closes the websocket (normal closure) and waits for its reader.
func (s *Subscription) Close() error {
	if err := s.c.Close(); err != nil {
		return fmt.Errorf("partykit: close subscription: %w", err)
	}
	return nil
}
