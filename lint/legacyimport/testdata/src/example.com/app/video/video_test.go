package video

import (
	"testing"

	"github.com/coursebuilder/realtime-go/legacyparty" // want `^import of deprecated PartyKit package "github.com/coursebuilder/realtime-go/legacyparty" in example.com/app/video is not allowed`
)

func TestVideo(t *testing.T) { _ = legacyparty.New() }
