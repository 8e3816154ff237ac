package inngestrt_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/coursebuilder/realtime-go/harness/inngestrt"
)

// TestRedeploySendsClosingAndKeepsServing: after Redeploy the old
// instance's subscription gets "closing" and still receives what is
// published; a new subscription, served by the new instance over the same
// Redis, receives it too.
func TestRedeploySendsClosingAndKeepsServing(t *testing.T) {
	s := inngestrt.NewTest(t, inngestrt.Options{})
	old := subscribe(t, s, "c", "t")
	told, err := s.Redeploy(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if told != 1 {
		t.Fatalf("Redeploy told %d subscriptions, want 1", told)
	}
	m, err := old.NextMessage(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if m.Kind != inngestrt.KindClosing {
		t.Fatalf("the old subscription got %s first, want a closing message", m.Raw)
	}
	fresh := subscribe(t, s, "c", "t")
	if err := s.Publish(ctxT(t), "c", "t", []byte(`{"n":1}`)); err != nil {
		t.Fatal(err)
	}
	for name, sub := range map[string]*inngestrt.Subscription{"old": old, "new": fresh} {
		m, err := sub.NextData(ctxT(t))
		if err != nil {
			t.Fatalf("%s subscription: %v", name, err)
		}
		if !bytes.Equal(m.Data, []byte(`{"n":1}`)) {
			t.Fatalf("%s subscription got %s", name, m.Raw)
		}
	}
	if n := s.Subscriptions("c", "t"); n != 2 {
		t.Fatalf("%d subscriptions recorded, want 2", n)
	}
}

func TestRedeployAfterCloseFails(t *testing.T) {
	s, err := inngestrt.Start(ctxT(t), inngestrt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Redeploy(ctxT(t)); err == nil {
		t.Fatal("Redeploy of a closed server succeeded")
	}
}

// TestAddrRestartsOnTheSameAddress: a server started on the address of a
// closed one, with the same JWT secret, accepts the tokens the first one
// issued.
func TestAddrRestartsOnTheSameAddress(t *testing.T) {
	key := inngestrt.NewSigningKey()
	first, err := inngestrt.Start(ctxT(t), inngestrt.Options{SigningKeys: []string{key}})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := first.Token(ctxT(t), "c", "t")
	if err != nil {
		t.Fatal(err)
	}
	addr := first.URL()[len("http://"):]
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	second := startOn(t, inngestrt.Options{SigningKeys: []string{key}, JWTSecret: first.JWTSecret(), Addr: addr})
	if second.URL() != first.URL() {
		t.Fatalf("restarted on %s, want %s", second.URL(), first.URL())
	}
	sub, err := second.Subscribe(ctxT(t), tok)
	if err != nil {
		t.Fatalf("the first server's token on the second: %v", err)
	}
	t.Cleanup(func() { _ = sub.Close() })
	if err := second.Publish(ctxT(t), "c", "t", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := sub.NextData(ctxT(t)); err != nil {
		t.Fatal(err)
	}
}

// startOn starts a server on opts.Addr (Start waits while the address is
// still in use), closed when t ends.
func startOn(t *testing.T, opts inngestrt.Options) *inngestrt.Server {
	t.Helper()
	s, err := inngestrt.Start(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	return s
}

func TestAddrMustBeLoopback(t *testing.T) {
	for _, addr := range []string{":0", "0.0.0.0:0", "example.com:80", "127.0.0.1"} {
		if s, err := inngestrt.Start(ctxT(t), inngestrt.Options{Addr: addr}); err == nil {
			_ = s.Close()
			t.Errorf("Start with Addr %q succeeded", addr)
		}
	}
}
