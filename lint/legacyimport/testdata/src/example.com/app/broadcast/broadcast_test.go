package broadcast_test

// An external test package is allowed when the package it tests is.
import (
	"testing"

	"github.com/coursebuilder/realtime-go/legacyparty"
)

func TestBroadcast(t *testing.T) { _ = legacyparty.New() }
