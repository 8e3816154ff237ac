package inngest_test

import (
	"testing"

	"github.com/coursebuilder/realtime-go/internal/fakeinngest"
	"github.com/coursebuilder/realtime-go/internal/transport"
	"github.com/coursebuilder/realtime-go/realtime"
	"github.com/coursebuilder/realtime-go/realtime/inngest"
	"github.com/coursebuilder/realtime-go/realtime/realtimetest"
)

// TestInngestFaultConformance runs the conformance suite, failure paths
// included, on the Inngest transport: deliveries over the fake Inngest
// server, faults over a realtimetest.FaultServer, with one signing key and
// with a fallback key (which a 401 or 403 costs a second request).
func TestInngestFaultConformance(t *testing.T) {
	hashed := func(key string) string {
		h, err := transport.HashSigningKey(key)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	for name, fallback := range map[string]string{"one key": "", "fallback key": testFallback} {
		t.Run(name, func(t *testing.T) {
			realtimetest.Run(t, func(t *testing.T) realtimetest.Target {
				srv := fakeinngest.New(nil)
				t.Cleanup(srv.Close)
				keys := inngest.Options{SigningKey: testKey, SigningKeyFallback: fallback, Env: "branch-1"}
				requests := 1
				if fallback != "" {
					requests = 2
				}
				return realtimetest.Target{
					Provider:  newInngest(t, srv.URL, keys),
					Subscribe: srv.Subscribe,
					Stalled: func(t *testing.T) realtime.Provider {
						return newInngest(t, stalledServer(t), keys)
					},
					Faulty: func(t *testing.T, f realtimetest.Fault) realtimetest.FaultyTarget {
						fs := realtimetest.NewFaultServer(t, f)
						opts := keys
						opts.Retry, opts.AttemptTimeout = &f.Retry, f.AttemptTimeout
						return fs.Target(newInngest(t, fs.URL, opts))
					},
					Transport:            "inngest",
					UnauthorizedRequests: requests,
					Secrets:              []string{testKey, testFallback, hashed(testKey), hashed(testFallback)},
				}
			})
		})
	}
}
