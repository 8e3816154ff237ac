package replaytest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisOptions configure a [Redis].
type RedisOptions struct {
	// AppendOnly turns persistence on (appendonly yes), so that a restart
	// keeps the data. Off by default: no persistence at all.
	AppendOnly bool
}

// Redis is a redis-server of a test's own, on a free loopback port and in a
// temporary directory, killed when the test ends.
type Redis struct {
	// Addr is host:port, the same across restarts.
	Addr string

	t      testing.TB
	dir    string
	port   int
	args   []string
	starts int
	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd has exited
}

// startTimeout bounds each wait for the server; generous, for a loaded
// machine.
const startTimeout = 30 * time.Second

// StartRedis starts a redis-server. Without one installed, it skips the
// test, or fails it when the environment variable CI is set.
func StartRedis(t testing.TB, opts *RedisOptions) *Redis {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		msg := "redis-server is not installed (Debian: apt-get install redis-server); the Redis tests need it"
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	appendOnly := "no"
	if opts != nil && opts.AppendOnly {
		appendOnly = "yes"
	}
	r := &Redis{t: t, dir: t.TempDir()}
	r.args = []string{bin, "--bind", "127.0.0.1", "--dir", r.dir, "--save", "", "--appendonly", appendOnly, "--daemonize", "no"}
	t.Cleanup(func() { r.stop(syscall.SIGKILL) })
	// Redis cannot listen on port 0: take a port that was free a moment
	// ago, and another one if somebody took it meanwhile.
	for attempt := 1; ; attempt++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("finding a free port: %v", err)
		}
		r.port = l.Addr().(*net.TCPAddr).Port
		l.Close()
		r.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(r.port))
		err = r.start()
		if err == nil {
			return r
		}
		if attempt == 5 || !bytes.Contains([]byte(err.Error()), []byte("in use")) {
			t.Fatal(err)
		}
	}
}

// Start starts the server again on the same port and directory after
// [Redis.Stop] or [Redis.Kill].
func (r *Redis) Start() {
	r.t.Helper()
	deadline := time.Now().Add(startTimeout)
	for {
		err := r.start()
		if err == nil {
			return
		}
		// The old socket may linger a moment; the port is ours to wait for.
		if !bytes.Contains([]byte(err.Error()), []byte("in use")) || time.Now().After(deadline) {
			r.t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop shuts the server down as an operator would (SIGTERM: with
// appendonly, the file is flushed) and waits for it to exit.
func (r *Redis) Stop() { r.stop(syscall.SIGTERM) }

// Kill kills the server (SIGKILL) and waits for it to exit.
func (r *Redis) Kill() { r.stop(syscall.SIGKILL) }

// Restart is Stop then Start.
func (r *Redis) Restart() {
	r.Stop()
	r.Start()
}

// Pause freezes the server (SIGSTOP): connections are accepted by the
// kernel and nothing answers, like a server stuck on a slow command.
// [Redis.Resume] undoes it; the test's end kills it either way.
func (r *Redis) Pause() { r.signal(syscall.SIGSTOP) }

// Resume continues a paused server (SIGCONT).
func (r *Redis) Resume() { r.signal(syscall.SIGCONT) }

// Client returns a new client of the server (a separate connection pool,
// as another app instance has), closed when the test ends. opts may set
// anything but Addr; nil means go-redis's defaults.
func (r *Redis) Client(opts *redis.Options) *redis.Client {
	var o redis.Options
	if opts != nil {
		o = *opts
	}
	o.Addr = r.Addr
	c := redis.NewClient(&o)
	r.t.Cleanup(func() { c.Close() })
	return c
}

func (r *Redis) signal(sig syscall.Signal) {
	r.t.Helper()
	if r.cmd == nil {
		r.t.Fatal("redis-server is not running")
	}
	if err := r.cmd.Process.Signal(sig); err != nil {
		r.t.Fatalf("signalling redis-server: %v", err)
	}
}

// start runs the server and returns once it accepts connections, or an
// error with the end of its log.
func (r *Redis) start() error {
	if r.cmd != nil {
		return fmt.Errorf("redis-server is already running")
	}
	r.starts++
	logFile := filepath.Join(r.dir, "redis-"+strconv.Itoa(r.starts)+".log")
	args := append(r.args[1:len(r.args):len(r.args)], "--port", strconv.Itoa(r.port), "--logfile", logFile)
	cmd := exec.Command(r.args[0], args...)
	cmd.Dir = r.dir
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting redis-server: %w", err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	r.cmd, r.exited = cmd, exited
	deadline := time.After(startTimeout)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		logged, _ := os.ReadFile(logFile)
		if bytes.Contains(logged, []byte("Ready to accept connections")) {
			return nil
		}
		select {
		case <-exited:
			r.cmd = nil
			logged, _ = os.ReadFile(logFile)
			return fmt.Errorf("redis-server on port %d exited at start: %s", r.port, tail(logged))
		case <-deadline:
			r.stop(syscall.SIGKILL)
			return fmt.Errorf("redis-server on port %d not ready after %s: %s", r.port, startTimeout, tail(logged))
		case <-tick.C:
		}
	}
}

func (r *Redis) stop(sig syscall.Signal) {
	if r.cmd == nil {
		return
	}
	r.cmd.Process.Signal(sig)
	r.cmd.Process.Signal(syscall.SIGCONT) // a paused server cannot act on SIGTERM
	<-r.exited
	r.cmd = nil
}

func tail(b []byte) string {
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(bytes.TrimSpace(b))
}

// ServerClock returns an until function for [Target.Clock]: it polls the
// server's clock (TIME) until it has reached at, failing t after a generous
// deadline.
func ServerClock(t *testing.T, c redis.UniversalClient) func(at time.Time) {
	return func(at time.Time) {
		t.Helper()
		deadline := time.Now().Add(time.Minute)
		for {
			now, err := c.Time(context.Background()).Result()
			if err != nil {
				t.Fatalf("reading the server's clock: %v", err)
			}
			if !now.Before(at) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("the server's clock did not reach %s within a minute (it says %s)", at, now)
			}
			time.Sleep(min(at.Sub(now), 10*time.Millisecond))
		}
	}
}
