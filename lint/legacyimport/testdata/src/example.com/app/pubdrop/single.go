package pubdrop

import "context"

// The legacy provider.
import lp "github.com/coursebuilder/realtime-go/legacyparty" // want `^import \(as lp\) of deprecated PartyKit package`

import "example.com/app/events"

// Announce publishes through a provider handed over as any, in a file that
// does not import package realtime.
func Announce(ctx context.Context, v any, id string) error {
	return v.(*lp.Provider).Publish(ctx, events.Ready(id)) // want `^publish through the deprecated \*legacyparty.Provider goes to PartyKit only`
}
