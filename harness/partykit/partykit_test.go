package partykit_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/goleak"

	"github.com/coursebuilder/realtime-go/harness/partykit"
)

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		runChild()
		return
	}
	goleak.VerifyTestMain(m)
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// post sends a bare HTTP POST with no content type, as the legacy provider.
func post(t *testing.T, rawURL string, body []byte) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctxT(t), http.MethodPost, rawURL, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// dial opens a bare websocket on a room.
func dial(t *testing.T, s *partykit.Server, room string) *websocket.Conn {
	t.Helper()
	u := "ws://127.0.0.1:" + strconv.Itoa(s.Port()) + "/party/" + url.PathEscape(room)
	c, _, err := websocket.Dial(ctxT(t), u, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.CloseNow() })
	return c
}

// read waits up to d for the next frame of a bare websocket.
func read(c *websocket.Conn, d time.Duration) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	_, b, err := c.Read(ctx)
	return b, err
}

// TestDevServer starts one real dev server (it takes seconds) and runs the
// checks against it as subtests.
func TestDevServer(t *testing.T) {
	s := partykit.NewTest(t, partykit.Options{})
	if !strings.HasPrefix(s.URL(), "http://127.0.0.1:") {
		t.Fatalf("URL() = %s", s.URL())
	}

	t.Run("PostReachesRoomByteForByte", func(t *testing.T) {
		room := "video-resource-1"
		ws := dial(t, s, room)
		payload := []byte(`{"body":{"id":"video-resource-1","status":"ready","n":[1,2.5,null,true],"s":"é ☃ \"q\""},"requestId":"video-resource-1","name":"video.asset.ready"}`)
		sent := time.Now()
		status, answer := post(t, s.URL()+"/party/"+room, payload)
		if status != http.StatusOK || answer != "Party video-resource-1 has received 0 messages" {
			t.Fatalf("POST answered %d %q", status, answer)
		}
		got, err := read(ws, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, payload) {
			t.Fatalf("received %s\nwant     %s", got, payload)
		}
		t.Logf("frame arrived %v after the POST was sent", time.Since(sent).Round(time.Millisecond))
	})

	t.Run("OtherRoomReceivesNothing", func(t *testing.T) {
		a := dial(t, s, "room-a")
		b := dial(t, s, "room-b")
		if status, answer := post(t, s.RoomURL("room-a"), []byte(`{"to":"a"}`)); status != http.StatusOK {
			t.Fatalf("POST answered %d %q", status, answer)
		}
		if got, err := read(a, 5*time.Second); err != nil || string(got) != `{"to":"a"}` {
			t.Fatalf("room-a got %q, %v", got, err)
		}
		// coder/websocket closes the connection when a Read's context
		// expires, so the error may be that or the deadline: only a frame
		// counts as a failure.
		if got, err := read(b, 300*time.Millisecond); err == nil {
			t.Fatalf("room-b got %q", got)
		}
	})

	t.Run("EveryConnectionOfTheRoom", func(t *testing.T) {
		var subs []*partykit.Subscription
		for range 3 {
			sub, err := s.Subscribe(ctxT(t), "room with spaces/and slash")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = sub.Close() })
			subs = append(subs, sub)
		}
		answer, err := s.Broadcast(ctxT(t), "room with spaces/and slash", []byte(`{"n":1}`))
		// PartyKit names the room after the raw (escaped) path segment.
		if err != nil || answer != "Party room%20with%20spaces%2Fand%20slash has received 0 messages" {
			t.Fatalf("Broadcast: %q, %v", answer, err)
		}
		for i, sub := range subs {
			got, err := sub.Next(ctxT(t))
			if err != nil || string(got) != `{"n":1}` {
				t.Fatalf("subscriber %d got %q, %v", i, got, err)
			}
		}
	})

	// Like course-builder's party, the body is parsed and re-serialised with
	// JSON.stringify: compact JSON from JSON.stringify passes unchanged, other
	// spellings of the same JSON are normalised, and non-JSON fails.
	t.Run("BodyIsJSONRoundTripped", func(t *testing.T) {
		sub, err := s.Subscribe(ctxT(t), "json-room")
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Close()
		for _, tc := range []struct{ in, want string }{
			{`{ "a" : [1, 2.50] }`, `{"a":[1,2.5]}`},
			{`{"html":"\u003cb\u003e \u0026"}`, `{"html":"<b> &"}`},
			{`"\\ok"`, `"\\ok"`},
		} {
			if status, answer := post(t, s.RoomURL("json-room"), []byte(tc.in)); status != http.StatusOK {
				t.Fatalf("POST %s answered %d %q", tc.in, status, answer)
			}
			got, err := sub.Next(ctxT(t))
			if err != nil || string(got) != tc.want {
				t.Errorf("%s arrived as %q (%v), want %s", tc.in, got, err, tc.want)
			}
		}
		if status, _ := post(t, s.RoomURL("json-room"), []byte(`not json`)); status != http.StatusInternalServerError {
			t.Errorf("non-JSON POST answered %d, want 500", status)
		}
		if err := sub.ExpectNone(200 * time.Millisecond); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("WebsocketMessagesGoToTheOthers", func(t *testing.T) {
		a, err := s.Subscribe(ctxT(t), "chat")
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		b, err := s.Subscribe(ctxT(t), "chat")
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		if err := a.Send(ctxT(t), []byte("hello")); err != nil {
			t.Fatal(err)
		}
		got, err := b.Next(ctxT(t))
		if err != nil || !strings.HasSuffix(string(got), ": hello") {
			t.Fatalf("b got %q, %v", got, err)
		}
		if err := a.ExpectNone(200 * time.Millisecond); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("OtherMethods", func(t *testing.T) {
		resp, err := http.Get(s.RoomURL("any"))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || strings.TrimSpace(string(b)) != `{"users":[]}` || resp.Header.Get("Access-Control-Allow-Origin") != "*" {
			t.Fatalf("GET: %d %s %v", resp.StatusCode, b, resp.Header)
		}
		req, _ := http.NewRequest(http.MethodPut, s.RoomURL("any"), nil)
		resp, err = http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Fatalf("PUT: %d", resp.StatusCode)
		}
	})

	t.Run("CloseKillsTheProcessGroup", func(t *testing.T) {
		pids := groupMembers(t, s.URL())
		sub, err := s.Subscribe(ctxT(t), "closing")
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Close()
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if alive := aliveOf(pids); len(alive) > 0 {
			t.Fatalf("processes %v still alive after Close", alive)
		}
		select {
		case <-sub.Done():
		case <-time.After(5 * time.Second):
			t.Fatal("websocket still open after Close")
		}
		if _, err := http.Get(s.URL()); err == nil {
			t.Fatal("dev server still answers after Close")
		}
	})
}

func TestAvailable(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "partykit.json"), []byte(`{}`), 0o644); err != nil {
		t.Fatal(err)
	}
	err := partykit.Available(dir)
	if err == nil || !strings.Contains(err.Error(), "run npm ci in harness/partykit/server") || !strings.HasPrefix(err.Error(), "partykit: ") {
		t.Fatalf("Available(empty project) = %v", err)
	}
	if err := partykit.Available(""); err != nil {
		t.Logf("default project not runnable here: %v", err)
	}
}

// fakeTB records how NewTest gives up.
type fakeTB struct {
	testing.TB
	skipped, failed bool
	msg             string
}

func (f *fakeTB) Helper()          {}
func (f *fakeTB) Skip(args ...any) { f.skipped, f.msg = true, fmt.Sprint(args...); runtime.Goexit() }
func (f *fakeTB) Fatalf(format string, a ...any) {
	f.failed, f.msg = true, fmt.Sprintf(format, a...)
	runtime.Goexit()
}
func (f *fakeTB) Fatal(args ...any) { f.failed, f.msg = true, fmt.Sprint(args...); runtime.Goexit() }

func TestNewTestSkipsLocallyButFailsInCI(t *testing.T) {
	dir := t.TempDir()
	for _, ci := range []string{"", "true"} {
		t.Setenv("CI", ci)
		f := &fakeTB{TB: t}
		done := make(chan struct{})
		go func() {
			defer close(done)
			partykit.NewTest(f, partykit.Options{Dir: dir})
		}()
		<-done
		if ci == "" && (!f.skipped || f.failed) || ci != "" && (!f.failed || f.skipped) {
			t.Fatalf("CI=%q: skipped=%v failed=%v (%s)", ci, f.skipped, f.failed, f.msg)
		}
		t.Logf("CI=%q: %s", ci, f.msg)
	}
}

const childEnv = "PARTYKIT_HARNESS_CHILD"

// runChild starts a dev server, prints its process group and blocks, never
// calling Close: the parent test kills this process.
func runChild() {
	s, err := partykit.Start(context.Background(), partykit.Options{})
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	fmt.Printf("url %s\n", s.URL())
	select {}
}

// TestNoOrphansWhenTestBinaryDies kills, with SIGKILL, a process that started
// a dev server and never closed it, and checks that the dev server goes away.
func TestNoOrphansWhenTestBinaryDies(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a second dev server")
	}
	if err := partykit.Available(""); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "url ") {
		t.Fatalf("child said %q, %v", line, err)
	}
	u := strings.TrimSpace(strings.TrimPrefix(line, "url "))
	if resp, err := http.Get(u + "/party/x"); err != nil {
		t.Fatal(err)
	} else {
		resp.Body.Close()
	}
	pids := groupMembers(t, u)
	t.Logf("dev server at %s, processes %v", u, pids)
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for {
		alive := aliveOf(pids)
		if len(alive) == 0 {
			break
		}
		if time.Now().After(deadline) {
			for _, p := range alive {
				_ = syscall.Kill(p, syscall.SIGKILL)
			}
			t.Fatalf("processes %v outlived the killed test binary", alive)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, err := http.Get(u + "/party/x"); err == nil {
		t.Fatal("dev server still answers")
	}
}

// groupMembers lists the processes whose command line mentions the dev
// server's port (the supervisor, node and workerd) from /proc.
func groupMembers(t *testing.T, u string) []int {
	port := u[strings.LastIndex(u, ":")+1:]
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Skip("no /proc")
	}
	var pgids = map[int]bool{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, _ := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if bytes.Contains(cmdline, []byte("--port\x00"+port+"\x00")) {
			if pg, err := syscall.Getpgid(pid); err == nil {
				pgids[pg] = true
			}
		}
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if pg, err := syscall.Getpgid(pid); err == nil && pgids[pg] {
			pids = append(pids, pid)
		}
	}
	if len(pids) == 0 {
		t.Fatal("found no dev server processes")
	}
	return pids
}

// aliveOf returns the pids that still exist and are not zombies.
func aliveOf(pids []int) []int {
	var alive []int
	for _, p := range pids {
		stat, err := os.ReadFile("/proc/" + strconv.Itoa(p) + "/stat")
		if err != nil {
			continue
		}
		if i := bytes.LastIndexByte(stat, ')'); i > 0 && i+2 < len(stat) && stat[i+2] == 'Z' {
			continue
		}
		alive = append(alive, p)
	}
	return alive
}
