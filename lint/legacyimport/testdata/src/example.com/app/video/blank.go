package video

import (
	_ "github.com/coursebuilder/realtime-go/legacyparty"      // want `^blank import of deprecated PartyKit package`
	_ "github.com/coursebuilder/realtime-go/legacyparty/wire" // want `^blank import of deprecated PartyKit package "github.com/coursebuilder/realtime-go/legacyparty/wire"`
)
