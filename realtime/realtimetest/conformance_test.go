package realtimetest_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/coursebuilder/realtime-go/realtime"
	"github.com/coursebuilder/realtime-go/realtime/realtimetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The in-memory fake passes the whole suite: a Recorder for deliveries, and
// a Faulty whose outcome emulates each fault, with its classification,
// attempts and request count.
func TestFaultyConformance(t *testing.T) {
	realtimetest.Run(t, func(t *testing.T) realtimetest.Target {
		f := realtimetest.NewFaulty()
		return realtimetest.Target{
			Provider:  f,
			Subscribe: f.Subscribe,
			Stalled: func(*testing.T) realtime.Provider {
				return realtimetest.NewFaulty(realtimetest.Hang())
			},
			Faulty: func(_ *testing.T, fault realtimetest.Fault) realtimetest.FaultyTarget {
				out, requests := realtimetest.EmulateFault("fake", fault)
				return realtimetest.FaultyTarget{Provider: realtimetest.NewFaulty(out), Requests: requests}
			},
			Transport: "fake",
		}
	})
}
