package pubvar

import (
	"context"

	"github.com/coursebuilder/realtime-go/legacyparty" // want `^import of deprecated PartyKit package`
	"github.com/coursebuilder/realtime-go/realtime"
)

// Forward publishes through a provider handed over as any. The fix drops
// the receiver, but legacyparty stays used below, so its import stays.
func Forward(ctx context.Context, v any, msg realtime.Message) error {
	return v.(*legacyparty.Provider).Publish(ctx, msg) // want `^publish through the deprecated \*legacyparty.Provider goes to PartyKit only`
}

var _ = legacyparty.New
