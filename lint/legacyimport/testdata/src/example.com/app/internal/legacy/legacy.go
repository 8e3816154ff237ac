// Package legacy is allowed by the pattern .../internal/...: neither its
// import nor its publishes are reported.
package legacy

import (
	"context"

	"github.com/coursebuilder/realtime-go/legacyparty"
	"github.com/coursebuilder/realtime-go/realtime"
)

// Party returns the legacy provider.
func Party() *legacyparty.Provider { return legacyparty.New() }

// Notify publishes through the legacy provider.
func Notify(ctx context.Context, msg realtime.Message) error { return Party().Publish(ctx, msg) }
