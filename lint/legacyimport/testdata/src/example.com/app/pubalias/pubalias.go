// Package pubalias imports package realtime as rt: the fix uses that name,
// and names its own variables around it.
package pubalias

import (
	"context"

	"github.com/coursebuilder/realtime-go/legacyparty" // want `^import of deprecated PartyKit package`
	rt "github.com/coursebuilder/realtime-go/realtime"
)

// Ready publishes a message built in place.
func Ready(ctx context.Context, p *legacyparty.Provider, id string) error {
	return p.Publish(ctx, rt.Message{Room: id, Name: "video.ready"}) // want `^publish through the deprecated \*legacyparty.Provider goes to PartyKit only`
}

// Again publishes a message held in a variable named ok.
func Again(ctx context.Context, p *legacyparty.Provider, ok rt.Message) error {
	return p.Publish(ctx, ok) // want `^publish through the deprecated \*legacyparty.Provider goes to PartyKit only`
}
