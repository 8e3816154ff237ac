// Package testlog helps the examples' tests show a program's output.
package testlog

import (
	"strings"
	"sync"
	"testing"
)

// Writer keeps everything written to it and sends each complete line to
// the test log, so `go test -v` shows a program's report as it runs.
type Writer struct {
	t      testing.TB
	mu     sync.Mutex
	b      strings.Builder
	logged int
}

// New returns a Writer logging to t.
func New(t testing.TB) *Writer { return &Writer{t: t} }

func (w *Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.b.Write(p)
	s := w.b.String()
	if i := strings.LastIndexByte(s, '\n'); i >= w.logged {
		w.t.Log("\n" + s[w.logged:i])
		w.logged = i + 1
	}
	return len(p), nil
}

// String returns everything written so far.
func (w *Writer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}
