// Package video imports the legacy provider in every way Go allows.
package video

import (
	"fmt"

	"github.com/coursebuilder/realtime-go/legacyparty" // want `^import of deprecated PartyKit package "github.com/coursebuilder/realtime-go/legacyparty" in example.com/app/video is not allowed: publish through inngest.Provider or broadcast.Broadcast instead \(migration guide: https://github.com/coursebuilder/realtime-go/blob/main/docs/migration.md; to keep it during the migration, add example.com/app/video to -allow\)$`
)

var _ = fmt.Sprint(legacyparty.New())
