package video_test

import (
	"testing"

	"github.com/coursebuilder/realtime-go/legacyparty" // want `^import of deprecated PartyKit package "github.com/coursebuilder/realtime-go/legacyparty" in example.com/app/video_test is not allowed: .* add example.com/app/video to -allow\)$`
)

func TestVideoExternal(t *testing.T) { _ = legacyparty.New() }
