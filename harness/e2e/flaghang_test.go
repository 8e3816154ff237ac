package e2e_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/open-feature/go-sdk/openfeature"
	"github.com/open-feature/go-sdk/openfeature/isolated"
	"github.com/open-feature/go-sdk/openfeature/memprovider"
	"go.uber.org/zap/zaptest"

	"github.com/coursebuilder/realtime-go/broadcast"
	"github.com/coursebuilder/realtime-go/flags"
	"github.com/coursebuilder/realtime-go/legacyparty"
	"github.com/coursebuilder/realtime-go/realtime/inngest"
)

// hangingFlags is an in-memory OpenFeature provider whose flag service hangs,
// ignoring the caller's context, until it is healed.
type hangingFlags struct {
	*memprovider.InMemoryProvider
	healed  atomic.Bool
	release chan struct{} // closed to let the hung evaluations return
}

func (p *hangingFlags) hang() {
	if !p.healed.Load() {
		<-p.release
	}
}

func (p *hangingFlags) BooleanEvaluation(ctx context.Context, flag string, def bool, flat openfeature.FlattenedContext) openfeature.BoolResolutionDetail {
	p.hang()
	return p.InMemoryProvider.BooleanEvaluation(ctx, flag, def, flat)
}

func (p *hangingFlags) StringEvaluation(ctx context.Context, flag string, def string, flat openfeature.FlattenedContext) openfeature.StringResolutionDetail {
	p.hang()
	return p.InMemoryProvider.StringEvaluation(ctx, flag, def, flat)
}

// While the flag service hangs, every publish falls back to PartyKit, which
// gets every message in order; Inngest gets none. Once the service answers
// again, the next publish follows the flag.
func TestBroadcastWithAHangingFlagServicePublishesToPartyKit(t *testing.T) {
	party := sharedParty(t)
	irt, key := sharedInngest(t)

	flagService := &hangingFlags{release: make(chan struct{}), InMemoryProvider: memprovider.NewInMemoryProvider(map[string]memprovider.InMemoryFlag{
		flags.ScopeVideoReady.ModeKey(): {State: memprovider.Enabled, DefaultVariant: "on", Variants: map[string]any{"on": "realtime"}},
	})}
	api := isolated.NewAPI()
	if err := api.SetProviderAndWait(ctxT(t), flagService); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		flagService.healed.Store(true)
		close(flagService.release)
		_ = api.Shutdown(context.Background())
	})
	ev := flags.NewEvaluator(api.NewClient(), &flags.Options{Timeout: 20 * time.Millisecond, Logger: zaptest.NewLogger(t)})

	b := newBroadcast(t,
		newParty(t, legacyparty.Options{BaseURL: party.URL()}),
		newInngest(t, inngest.Options{BaseURL: irt.URL(), SigningKey: key}),
		broadcast.Options{Resolver: ev})
	r := room("flaghang")
	partySub := mustSubscribeParty(t, party, r)
	inngestSub := mustSubscribeInngest(t, irt, r, topic)

	const n = 5
	for i := range n {
		msg := readyMsg(r)
		msg.RequestID = fmt.Sprintf("hung-%d", i)
		if err := b.Publish(ctxT(t), msg); err != nil {
			t.Fatalf("publish %d while the flag service hangs: %v", i, err)
		}
		expectDelivered(t, fmt.Sprintf("publish %d: partykit subscriber", i), partySub, partySpelling(sent(t, b, msg)))
	}
	expectQuiet(t, map[string]subscriber{"partykit subscriber": partySub, "inngest subscriber": inngestSub})

	flagService.healed.Store(true)
	msg := readyMsg(r)
	msg.RequestID = "healed"
	if err := b.Publish(ctxT(t), msg); err != nil {
		t.Fatalf("publish after the flag service healed: %v", err)
	}
	expectDelivered(t, "after healing: inngest subscriber", inngestSub, sent(t, b, msg))
	expectQuiet(t, map[string]subscriber{"partykit subscriber": partySub, "inngest subscriber": inngestSub})
}
