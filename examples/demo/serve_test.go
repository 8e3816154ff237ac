package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/coursebuilder/realtime-go/broadcast"
	"github.com/coursebuilder/realtime-go/flags"
	"github.com/coursebuilder/realtime-go/harness/inngestrt"
	"github.com/coursebuilder/realtime-go/harness/partykit"
)

func TestMain(m *testing.M) {
	code := m.Run()
	// TestDemo's token requests and pipeline calls use http.DefaultClient.
	http.DefaultClient.CloseIdleConnections()
	if code == 0 {
		if err := goleak.Find(inngestrt.LeakOptions()...); err != nil {
			os.Stderr.WriteString("goleak: " + err.Error() + "\n")
			code = 1
		}
	}
	os.Exit(code)
}

// TestBundleIsTheClientsDist: the page serves the checked-in browser
// client as it is. static/realtime-client.js is a copy (go:embed cannot
// reach outside the module); after a rebuild of the client, run go generate.
func TestBundleIsTheClientsDist(t *testing.T) {
	want, err := os.ReadFile(filepath.Join("..", "..", "client", "dist", "realtime-client.js"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := static.ReadFile("static/realtime-client.js")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("static/realtime-client.js differs from client/dist/realtime-client.js: run go generate ./demo (from examples/)")
	}
}

// TestRelayCutsAndRefusesUntilHealed: a cut ends the connections through
// the relay; with hold, new ones are closed at once until heal.
func TestRelayCutsAndRefusesUntilHealed(t *testing.T) {
	echo, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	echoDone := make(chan struct{})
	go func() {
		defer close(echoDone)
		for {
			c, err := echo.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	defer func() {
		echo.Close()
		<-echoDone
	}()
	r, err := startRelay("127.0.0.1", echo.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer r.close()

	roundTrip := func() error {
		c, err := net.Dial("tcp", r.addr())
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second)) // a bound, not a sync point
		if _, err := c.Write([]byte("ping")); err != nil {
			return err
		}
		buf := make([]byte, 4)
		if _, err := io.ReadFull(c, buf); err != nil {
			return err
		}
		if string(buf) != "ping" {
			return errors.New("echo mangled")
		}
		return nil
	}
	if err := roundTrip(); err != nil {
		t.Fatalf("through the relay: %v", err)
	}

	// An open connection, cut with hold.
	c, err := net.Dial("tcp", r.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c, buf); err != nil { // forwarded: the relay holds it
		t.Fatal(err)
	}
	if n := r.cut(true); n != 1 {
		t.Errorf("cut dropped %d connections, want 1", n)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Read(buf); err == nil {
		t.Error("a cut connection still reads")
	}
	if err := roundTrip(); err == nil {
		t.Error("a connection was forwarded while the relay holds")
	}
	r.heal()
	if err := roundTrip(); err != nil {
		t.Errorf("after heal: %v", err)
	}
}

// TestServe drives the -serve mode as the page and the browser test do:
// the flags file decides where publishes go and what the token endpoint
// answers, the Go subscribers see what each transport carried, and the
// answers send browsers to the relays.
func TestServe(t *testing.T) {
	withParty := partykit.Available("") == nil
	if !withParty && os.Getenv("CI") != "" {
		t.Fatal("PartyKit dev server not installed in CI: npm ci --prefix harness/partykit/server")
	}
	if !withParty {
		t.Skip("PartyKit dev server not installed")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	path := filepath.Join(t.TempDir(), "demo.flags")
	var out bytes.Buffer
	d, err := startServe(ctx, serveConfig{Addr: "127.0.0.1:0", FlagsPath: path, Mode: flags.Legacy, Recheck: 2 * time.Second, PartyKit: true, Out: &syncWriter{w: &out}})
	if err != nil {
		t.Fatal(err)
	}
	defer d.close()
	if b, _ := os.ReadFile(path); !strings.Contains(string(b), "REALTIME_DEFAULT_MODE=legacy") {
		t.Errorf("the new flags file is %q", b)
	}
	jar, _ := cookiejar.New(nil)
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	browser := &http.Client{Jar: jar, Transport: tr}

	// The token endpoint refuses whoever has not opened the page.
	if status, _ := get(t, browser, d.url+"/api/realtime/token?room=vid_demo&scope=video-ready&v=2"); status != http.StatusUnauthorized {
		t.Errorf("token without the session: %d, want 401", status)
	}
	status, page := get(t, browser, d.url+"/")
	if status != http.StatusOK || !strings.Contains(page, `import { subscribe } from "/realtime-client.js"`) {
		t.Fatalf("GET /: %d\n%.300s", status, page)
	}
	if status, js := get(t, browser, d.url+"/realtime-client.js"); status != http.StatusOK || !strings.Contains(js, "subscribe") {
		t.Errorf("GET /realtime-client.js: %d", status)
	}

	// Legacy: the answer is the PartyKit relay, publishes reach PartyKit only.
	var answer struct {
		Transport  string    `json:"transport"`
		Mode       string    `json:"mode"`
		APIBaseURL string    `json:"apiBaseUrl"`
		Expires    time.Time `json:"expires"`
		PartyKit   struct {
			Host, Room string
		} `json:"partykit"`
	}
	getJSON(t, browser, d.url+"/api/realtime/token?room=vid_demo&scope=video-ready&v=2", &answer)
	if answer.Transport != "partykit" || answer.Mode != "legacy" || answer.PartyKit.Room != room || answer.PartyKit.Host != d.relays[1].addr() {
		t.Errorf("legacy answer %+v, want partykit on the relay %s", answer, d.relays[1].addr())
	}
	pubs := runAndWait(ctx, t, d, browser, broadcast.TransportPartyKit)
	for _, p := range pubs {
		if p.Mode != "legacy" || p.Seq == 0 {
			t.Errorf("%s: mode %s seq %d, want legacy and a seq", p.Name, p.Mode, p.Seq)
		}
	}

	// Rewrite the file: realtime.
	if err := os.WriteFile(path+".tmp", []byte("REALTIME_DEFAULT_MODE=realtime\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		t.Fatal(err)
	}
	waitMode(ctx, t, d, flags.Realtime)
	var modes struct {
		Scopes []struct{ Scope, Mode string }
	}
	getJSON(t, browser, d.url+"/api/realtime/modes", &modes)
	if len(modes.Scopes) != 4 {
		t.Errorf("modes: %+v, want the 4 scopes", modes)
	}
	for _, s := range modes.Scopes {
		if s.Mode != "realtime" {
			t.Errorf("modes: %s is %s, want realtime", s.Scope, s.Mode)
		}
	}
	getJSON(t, browser, d.url+"/api/realtime/token?room=vid_demo&scope=video-ready&v=2", &answer)
	if answer.Transport != "inngest" || answer.APIBaseURL != "http://"+d.relays[0].addr() {
		t.Errorf("realtime answer %+v, want inngest on the relay %s", answer, d.relays[0].addr())
	}
	if left := time.Until(answer.Expires); left > 2*time.Second {
		t.Errorf("the Inngest answer expires in %v, want within the Recheck (2s)", left)
	}
	pubs = runAndWait(ctx, t, d, browser, broadcast.TransportInngest)
	for _, p := range pubs {
		if p.Mode != "realtime" {
			t.Errorf("%s: mode %s, want realtime", p.Name, p.Mode)
		}
	}
	if status, _ := post(t, browser, d.url+"/api/demo/cut?for=forever"); status != http.StatusBadRequest {
		t.Errorf("cut?for=forever: %d, want 400", status)
	}
}

// runAndWait runs the pipeline through the page's endpoint and waits until
// the Go subscriber on transport received each notification; it fails if
// the other transport carried one.
func runAndWait(ctx context.Context, t *testing.T, d *liveDemo, c *http.Client, transport string) []publication {
	t.Helper()
	status, body := post(t, c, d.url+"/api/demo/run")
	var run struct{ Published []publication }
	if status != http.StatusOK || json.Unmarshal([]byte(body), &run) != nil || len(run.Published) != 4 {
		t.Fatalf("POST /api/demo/run: %d %s", status, body)
	}
	ids := map[string]bool{}
	for _, p := range run.Published {
		ids[p.ID] = true
	}
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	err := d.pubs.wait(wctx, func(list []*publication) bool {
		n := 0
		for _, p := range list {
			if _, ok := p.Go[transport]; ok && ids[p.ID] {
				n++
			}
		}
		return n == len(ids)
	})
	if err != nil {
		t.Fatalf("the Go subscriber on %s did not receive the run: %v", transport, err)
	}
	pubs := d.pubs.last(-1)
	var mine []publication
	for _, p := range pubs {
		if ids[p.ID] {
			mine = append(mine, p)
			for tr := range p.Go {
				if tr != transport {
					t.Errorf("%s also reached %s", p.Name, tr)
				}
			}
		}
	}
	return mine
}

// waitMode waits until the Broadcast routes every page scope in mode: the
// flags file is re-read every 250ms.
func waitMode(ctx context.Context, t *testing.T, d *liveDemo, mode flags.Mode) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		all := true
		for _, s := range pageScopes {
			all = all && d.b.Route(ctx, room, s.Names()[0]).Mode == mode
		}
		if all {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the Broadcast did not take mode %s from the flags file", mode)
		}
		select {
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		case <-time.After(20 * time.Millisecond): // polling a condition, bounded by the deadline
		}
	}
}

func get(t *testing.T, c *http.Client, u string) (int, string) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func post(t *testing.T, c *http.Client, u string) (int, string) {
	t.Helper()
	resp, err := c.Post(u, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func getJSON(t *testing.T, c *http.Client, u string, v any) {
	t.Helper()
	status, body := get(t, c, u)
	if status != http.StatusOK {
		t.Fatalf("GET %s: %d %s", u, status, body)
	}
	if err := json.Unmarshal([]byte(body), v); err != nil {
		t.Fatalf("GET %s: %v: %s", u, err, body)
	}
}

// FuzzQuery: the query parameters of the demo's endpoints are refused with
// an error or read within their bounds, never a panic.
func FuzzQuery(f *testing.F) {
	for _, s := range []string{"", "2s", "0", "-1s", "6m", "1e9h", "9223372036854775807ns", "12", "-3", " 4", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		q := url.Values{"for": {s}, "last": {s}}
		if d, err := parseHold(q); err == nil && (d < 0 || d > maxHold) {
			t.Errorf("parseHold(%q) = %v, outside [0, %v]", s, d, maxHold)
		}
		if n, err := parseLast(q); err == nil && n < 0 && s != "" {
			t.Errorf("parseLast(%q) = %d", s, n)
		}
	})
}

// syncWriter serializes writes: the demo prints from its handlers.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}
