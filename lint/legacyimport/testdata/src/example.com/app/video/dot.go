package video

import . "github.com/coursebuilder/realtime-go/legacyparty" // want `^dot import of deprecated PartyKit package`

var _ = New
