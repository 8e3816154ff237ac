// Package pubnoimport does not import package realtime: the fix adds it,
// once for both publishes.
package pubnoimport

import (
	"context"

	"example.com/app/events"
	"github.com/coursebuilder/realtime-go/legacyparty" // want `^import of deprecated PartyKit package`
)

// Server holds the legacy provider.
type Server struct{ Party *legacyparty.Provider }

// Ready publishes a message a call builds.
func (s *Server) Ready(ctx context.Context, id string) error {
	return s.Party.Publish(ctx, events.Ready(id)) // want `^publish through the deprecated \*legacyparty.Provider goes to PartyKit only`
}

// Retry publishes up to three times.
func (s *Server) Retry(ctx context.Context, id string) {
	for range 3 {
		if s.Party.Publish(ctx, events.Ready(id)) == nil { // want `^publish through the deprecated \*legacyparty.Provider goes to PartyKit only`
			return
		}
	}
}
