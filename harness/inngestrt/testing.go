package inngestrt

import (
	"context"
	"testing"
	"time"
)

// NewTest starts a server for the test t and closes it in t.Cleanup. Unless
// opts.Logf is set, the server logs through t.Logf. A failure to start fails
// the test at once.
func NewTest(t testing.TB, opts Options) *Server {
	t.Helper()
	if opts.Logf == nil {
		opts.Logf = t.Logf
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := Start(ctx, opts)
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
