// Package wire is a subpackage of the denied package, so it may import it.
package wire

import "github.com/coursebuilder/realtime-go/legacyparty"

var _ = legacyparty.New
