package video

import lp "github.com/coursebuilder/realtime-go/legacyparty" // want `^import \(as lp\) of deprecated PartyKit package`

var _ = lp.New
