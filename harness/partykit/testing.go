package partykit

import (
	"context"
	"os"
	"testing"
)

// NewTest starts a dev server for the test t and closes it in t.Cleanup.
// Unless opts.Logf is set, the server's output goes to t.Logf. When the
// server cannot run here (see Available), the test is skipped, except when
// the environment variable CI is set: then it fails, so CI never skips
// silently.
func NewTest(t testing.TB, opts Options) *Server {
	t.Helper()
	if err := Available(opts.Dir); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%v (CI is set, so this is a failure, not a skip)", err)
		}
		t.Skip(err)
	}
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
