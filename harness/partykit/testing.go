package partykit

import (
	"context"
	"os"
	"sync"
	"testing"
)

// RequireAvailable skips t when the dev server cannot run here (see
// Available), except when the environment variable CI is set: then it fails
// t, so CI never skips silently.
func RequireAvailable(t testing.TB, dir string) {
	t.Helper()
	if err := Available(dir); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%v (CI is set, so this is a failure, not a skip)", err)
		}
		t.Skip(err)
	}
}

// NewTest starts a dev server for the test t and closes it in t.Cleanup.
// Unless opts.Logf is set, the server's output goes to t.Logf. It calls
// RequireAvailable first.
func NewTest(t testing.TB, opts Options) *Server {
	t.Helper()
	RequireAvailable(t, opts.Dir)
	if opts.Logf == nil {
		opts.Logf = t.Logf
	}
	s, err := Start(context.Background(), opts)
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

// Shared is one dev server for a whole test binary, started on first use:
// it takes seconds to start. Declare it as a package variable and Close it
// in TestMain after m.Run.
type Shared struct {
	// Options are used for the start.
	Options Options

	once sync.Once
	srv  *Server
	err  error
}

// Get returns the shared server, starting it on the first call. It calls
// RequireAvailable first.
func (s *Shared) Get(t testing.TB) *Server {
	t.Helper()
	RequireAvailable(t, s.Options.Dir)
	s.once.Do(func() { s.srv, s.err = Start(context.Background(), s.Options) })
	if s.err != nil {
		t.Fatal(s.err)
	}
	return s.srv
}

// Close stops the shared server if it was started.
func (s *Shared) Close() error {
	if s.srv == nil {
		return nil
	}
	return s.srv.Close()
}
