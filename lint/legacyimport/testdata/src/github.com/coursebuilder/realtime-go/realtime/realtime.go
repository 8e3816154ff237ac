// Package realtime stands in for the library's package realtime: the names
// the legacyimport fix uses, with the real signatures (TestStubsMatchLibrary
// compares them).
package realtime

import (
	"context"
	"errors"
)

// Message stands in for realtime.Message.
type Message struct {
	Room, Name string
	Body       any
}

// Provider stands in for realtime.Provider.
type Provider interface {
	Publish(ctx context.Context, msg Message) error
}

// ErrNotConfigured stands in for realtime.ErrNotConfigured.
var ErrNotConfigured = errors.New("realtime: not configured")

type providerKey struct{}

// FromContext stands in for realtime.FromContext.
func FromContext(ctx context.Context) (Provider, bool) {
	p, ok := ctx.Value(providerKey{}).(Provider)
	return p, ok && p != nil
}
