// Package broadcast is allowed by its exact path.
package broadcast

import (
	_ "example.com/partysocket-go"
	lp "github.com/coursebuilder/realtime-go/legacyparty"
)

var _ = lp.New
