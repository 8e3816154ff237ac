package broadcast

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// TestTallyP99InterpolatesAsPrometheus: the flip log's p99 is the value
// histogram_quantile(0.99, …) gives over the same buckets.
func TestTallyP99InterpolatesAsPrometheus(t *testing.T) {
	var empty tally
	assert.Zero(t, empty.p99())

	var same tally
	for range 100 {
		same.add(3*time.Millisecond, false) // bucket (2.5ms, 5ms]
	}
	// rank 99 of 100 in that bucket: 2.5ms + 2.5ms × 99/100.
	assert.Equal(t, 4975*time.Microsecond, same.p99())

	var tail tally
	for range 98 {
		tail.add(time.Millisecond/2, false) // (0, 1ms]
	}
	tail.add(300*time.Millisecond, true) // (250ms, 500ms]
	tail.add(20*time.Second, true)       // +Inf: the highest bound
	// rank 99 of 100 is the one in (250ms, 500ms], its whole bucket.
	assert.Equal(t, 500*time.Millisecond, tail.p99())
	assert.Equal(t, int64(2), tail.errors)

	var slow tally
	slow.add(time.Minute, false)
	assert.Equal(t, 10*time.Second, slow.p99())
}
