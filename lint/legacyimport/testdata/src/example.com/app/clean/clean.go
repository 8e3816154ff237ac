// Package clean imports nothing PartyKit-related.
package clean

import (
	"fmt"

	"example.com/thirdparty"
)

var _ = fmt.Sprint(thirdparty.OK)
