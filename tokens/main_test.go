package tokens_test

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if any test leaves a goroutine behind: minting
// requests and the fake servers must all be gone. It first removes the
// variables inngest.New reads for every option left empty, so that a
// developer's or CI's values do not reach the tests.
func TestMain(m *testing.M) {
	for _, k := range []string{"INNGEST_BASE_URL", "INNGEST_API_BASE_URL", "INNGEST_DEV", "INNGEST_SIGNING_KEY",
		"INNGEST_SIGNING_KEY_FALLBACK", "INNGEST_ENV", "REALTIME_CHANNEL_SECRET"} {
		_ = os.Unsetenv(k)
	}
	goleak.VerifyTestMain(m)
}
