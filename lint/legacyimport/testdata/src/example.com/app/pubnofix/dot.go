package pubnofix

import (
	"context"

	"github.com/coursebuilder/realtime-go/legacyparty" // want `^import of deprecated PartyKit package`
	. "github.com/coursebuilder/realtime-go/realtime"
)

// Dotted publishes in a file that dot-imports package realtime.
func Dotted(ctx context.Context, p *legacyparty.Provider) error {
	return p.Publish(ctx, Message{Room: "r", Name: "n"}) // want `^publish through the deprecated \*legacyparty.Provider .*; no suggested fix: package realtime is dot-imported`
}
