package realtime_test

import (
	"testing"

	"github.com/coursebuilder/realtime-go/realtime"
)

var benchMsg = realtime.Message{Room: "vid_123", Name: "video.asset.ready", RequestID: "req_1",
	Body: map[string]any{"id": "vid_123", "status": "ready", "muxPlaybackId": "pb_1", "duration": 93.4}}

// BenchmarkEncodeJSON is the baseline for BenchmarkEncode: the same envelope
// through json.Marshal, which Encode matches byte for byte.
func BenchmarkEncodeJSON(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := reference(benchMsg); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEncode is the envelope encoding alone.
func BenchmarkEncode(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := benchMsg.Encode(); err != nil {
			b.Fatal(err)
		}
	}
}
