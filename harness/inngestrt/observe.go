package inngestrt

import (
	"context"
	"fmt"
	"sync"

	"github.com/google/uuid"
	"github.com/inngest/inngest/pkg/execution/realtime"
)

// subscriberHeader carries the ID with which Subscribe learns that the
// server has finished subscribing its connection.
const subscriberHeader = "X-Inngestrt-Subscriber"

type subscriberKey struct{}

// observed passes every call through to the real broadcaster and records
// each Subscribe that succeeded. The realtime API upgrades a websocket
// before it subscribes it, so a message published right after the
// handshake can be lost (Inngest Realtime keeps no history); tests wait on
// these records instead of sleeping.
type observed struct {
	realtime.Broadcaster
	t    *subTracker
	live *liveSubs // the broadcaster's subscriptions, for Redeploy
}

// Subscribe subscribes through the real broadcaster, then records the topics
// and the subscriber ID from ctx.
func (o observed) Subscribe(ctx context.Context, s realtime.Subscription, topics []realtime.Topic) error {
	err := o.Broadcaster.Subscribe(ctx, s, topics)
	if err == nil {
		o.live.add(s)
		id, _ := ctx.Value(subscriberKey{}).(string)
		o.t.add(id, topics)
	}
	return err
}

// CloseSubscription closes through the real broadcaster and forgets the
// subscription.
func (o observed) CloseSubscription(ctx context.Context, id uuid.UUID) error {
	o.live.remove(id)
	return o.Broadcaster.CloseSubscription(ctx, id)
}

type topicKey struct{ channel, name string }

// subTracker counts successful subscriptions per topic and remembers the
// subscriber IDs that completed.
type subTracker struct {
	mu      sync.Mutex
	counts  map[topicKey]int
	ids     map[string]bool
	changed chan struct{} // closed and replaced on every change
}

func newSubTracker() *subTracker {
	return &subTracker{counts: map[topicKey]int{}, ids: map[string]bool{}, changed: make(chan struct{})}
}

func (t *subTracker) add(id string, topics []realtime.Topic) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, tp := range topics {
		t.counts[topicKey{tp.Channel, tp.Name}]++
	}
	if id != "" {
		t.ids[id] = true
	}
	close(t.changed)
	t.changed = make(chan struct{})
}

// wait blocks until cond holds (checked under the lock) or ctx or stop end.
func (t *subTracker) wait(ctx context.Context, stop <-chan struct{}, cond func() bool) error {
	for {
		t.mu.Lock()
		ok := cond()
		ch := t.changed
		t.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ch:
		case <-stop:
			return fmt.Errorf("connection ended")
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// WaitSubscribed waits until the server has completed at least n
// subscriptions (counted since Start, whether still open or not) to the
// given channel and topic, by any client: the harness's Subscribe or the
// code under test. After it returns, a message published to that topic
// reaches those subscribers.
func (s *Server) WaitSubscribed(ctx context.Context, channel, topic string, n int) error {
	k := topicKey{channel, topic}
	if err := s.subs.wait(ctx, nil, func() bool { return s.subs.counts[k] >= n }); err != nil {
		return fmt.Errorf("inngestrt: wait for %d subscriptions to %s/%s: %w", n, channel, topic, err)
	}
	return nil
}

// Subscriptions returns how many subscriptions to channel and topic the
// server has completed since Start, whether still open or not.
func (s *Server) Subscriptions(channel, topic string) int {
	s.subs.mu.Lock()
	defer s.subs.mu.Unlock()
	return s.subs.counts[topicKey{channel, topic}]
}
