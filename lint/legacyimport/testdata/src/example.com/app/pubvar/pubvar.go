// Package pubvar publishes through a *legacyparty.Provider held in variables.
package pubvar

import (
	"context"
	"fmt"

	"github.com/coursebuilder/realtime-go/legacyparty" // want `^import of deprecated PartyKit package`
	"github.com/coursebuilder/realtime-go/realtime"
)

// Ready publishes msg through p.
func Ready(ctx context.Context, p *legacyparty.Provider, msg realtime.Message) error {
	if err := p.Publish(ctx, msg); err != nil { // want `^publish through the deprecated \*legacyparty.Provider goes to PartyKit only, whatever the scope's mode flag says, so browsers of a scope moved to Inngest Realtime never see it: publish through the app's Broadcast, which realtime.Middleware puts in the context, with realtime.FromContext\(ctx\) \(migration guide: https://github.com/coursebuilder/realtime-go/blob/main/docs/migration.md\)$`
		return fmt.Errorf("ready: %w", err)
	}
	return nil
}

var party = legacyparty.New()

// Processing publishes through a package-level variable, in a closure.
func Processing(ctx context.Context, id string) func() error {
	return func() error {
		return party.Publish(ctx, realtime.Message{Room: id, Name: "video.processing"}) // want `^publish through the deprecated \*legacyparty.Provider goes to PartyKit only`
	}
}
