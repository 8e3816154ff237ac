// Package legacy is allowed by the pattern .../internal/...
package legacy

import "github.com/coursebuilder/realtime-go/legacyparty"

// Party returns the legacy provider.
func Party() *legacyparty.Provider { return legacyparty.New() }
