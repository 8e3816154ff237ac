package inngestrt

import (
	"context"
	"testing"
	"time"

	"go.uber.org/goleak"
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

// LeakOptions are the go.uber.org/goleak options that ignore the goroutines
// the Inngest server code leaves running for a while after Close
// ([IgnoredGoroutines]), followed by extra.
func LeakOptions(extra ...goleak.Option) []goleak.Option {
	opts := make([]goleak.Option, 0, len(IgnoredGoroutines)+len(extra))
	for _, f := range IgnoredGoroutines {
		opts = append(opts, goleak.IgnoreAnyFunction(f))
	}
	return append(opts, extra...)
}
