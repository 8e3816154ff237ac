package realtime_test

import (
	"os"
	"testing"

	"github.com/coursebuilder/realtime-go/realtime"
)

// inngestEnv is every variable NewInngest reads.
var inngestEnv = []string{
	"INNGEST_BASE_URL", "INNGEST_API_BASE_URL", "INNGEST_DEV",
	"INNGEST_SIGNING_KEY", "INNGEST_SIGNING_KEY_FALLBACK", "INNGEST_ENV",
	realtime.ChannelSecretEnv,
}

// TestMain starts the tests from an environment without the variables
// NewInngest reads, whatever the shell sets: a test that needs one sets it
// with t.Setenv, which restores it when the test ends.
func TestMain(m *testing.M) {
	for _, k := range inngestEnv {
		_ = os.Unsetenv(k)
	}
	os.Exit(m.Run())
}
