package faultproxy_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/coursebuilder/realtime-go/examples/internal/faultproxy"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestFaults(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") }))
	defer srv.Close()
	p, err := faultproxy.Start(srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	get := func(timeout time.Duration) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.Addr()+"/", nil)
		resp, err := client.Do(req)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return string(b), err
	}
	if got, err := get(10 * time.Second); err != nil || got != "ok" {
		t.Fatalf("none: %q, %v", got, err)
	}
	if err := p.Set(faultproxy.Down); err != nil {
		t.Fatal(err)
	}
	if _, err := get(10 * time.Second); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("down: %v, want connection refused", err)
	}
	if err := p.Set(faultproxy.Hang); err != nil {
		t.Fatal(err)
	}
	// A hang is an answer that never comes: the client's own deadline ends it.
	if _, err := get(300 * time.Millisecond); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("hang: %v, want the client's deadline", err)
	}
	if err := p.Set(faultproxy.None); err != nil {
		t.Fatal(err)
	}
	if got, err := get(10 * time.Second); err != nil || got != "ok" {
		t.Fatalf("none again: %q, %v", got, err)
	}
	if _, err := faultproxy.ParseFault("slow"); err == nil {
		t.Error("ParseFault(slow) accepted it")
	}
	if err := p.Set("slow"); err == nil {
		t.Error("Set(slow) accepted it")
	}
}
