package tokens_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if any test leaves a goroutine behind: token
// fetches, subscribers and the fake servers must all be gone.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
