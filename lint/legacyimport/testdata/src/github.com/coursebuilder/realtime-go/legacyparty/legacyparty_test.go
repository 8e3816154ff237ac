package legacyparty_test

// The denied package's own external tests may import it.
import "github.com/coursebuilder/realtime-go/legacyparty"

var _ = legacyparty.New
