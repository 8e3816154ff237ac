package inngest_test

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

// inngestEnv is every variable New reads.
var inngestEnv = []string{
	"INNGEST_BASE_URL", "INNGEST_API_BASE_URL", "INNGEST_DEV",
	"INNGEST_SIGNING_KEY", "INNGEST_SIGNING_KEY_FALLBACK", "INNGEST_ENV",
	"REALTIME_CHANNEL_SECRET",
}

// TestMain starts the tests from an environment without the variables New
// reads, whatever the shell sets: a test that needs one sets it with
// t.Setenv, which restores it when the test ends. It then fails the package
// if any test leaves a goroutine behind: token fetches, subscribers and the
// fake servers must all be gone.
func TestMain(m *testing.M) {
	for _, k := range inngestEnv {
		_ = os.Unsetenv(k)
	}
	goleak.VerifyTestMain(m)
}
