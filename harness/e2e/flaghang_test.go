package e2e_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/open-feature/go-sdk/openfeature"
	"github.com/open-feature/go-sdk/openfeature/isolated"
	"go.uber.org/zap/zaptest"

	"github.com/coursebuilder/realtime-go/broadcast"
	"github.com/coursebuilder/realtime-go/flags"
	"github.com/coursebuilder/realtime-go/legacyparty"
	"github.com/coursebuilder/realtime-go/realtime"
)

// hangingFlags is an OpenFeature provider whose flag service hangs, ignoring
// the caller's context, until it is healed; healed, it answers mode for
// every mode flag.
type hangingFlags struct {
	mode    string
	healed  atomic.Bool
	release chan struct{} // closed to let the hung evaluations return
}

func (p *hangingFlags) Metadata() openfeature.Metadata { return openfeature.Metadata{Name: "hanging"} }
func (p *hangingFlags) Hooks() []openfeature.Hook      { return nil }

func (p *hangingFlags) hang() {
	if !p.healed.Load() {
		<-p.release
	}
}

func notFound(flag string) openfeature.ProviderResolutionDetail {
	return openfeature.ProviderResolutionDetail{ResolutionError: openfeature.NewFlagNotFoundResolutionError(flag), Reason: openfeature.ErrorReason}
}

func (p *hangingFlags) BooleanEvaluation(_ context.Context, flag string, def bool, _ openfeature.FlattenedContext) openfeature.BoolResolutionDetail {
	p.hang()
	return openfeature.BoolResolutionDetail{Value: def, ProviderResolutionDetail: notFound(flag)}
}

func (p *hangingFlags) StringEvaluation(_ context.Context, _ string, _ string, _ openfeature.FlattenedContext) openfeature.StringResolutionDetail {
	p.hang()
	return openfeature.StringResolutionDetail{Value: p.mode, ProviderResolutionDetail: openfeature.ProviderResolutionDetail{Reason: openfeature.StaticReason}}
}

func (p *hangingFlags) FloatEvaluation(_ context.Context, flag string, def float64, _ openfeature.FlattenedContext) openfeature.FloatResolutionDetail {
	return openfeature.FloatResolutionDetail{Value: def, ProviderResolutionDetail: notFound(flag)}
}

func (p *hangingFlags) IntEvaluation(_ context.Context, flag string, def int64, _ openfeature.FlattenedContext) openfeature.IntResolutionDetail {
	return openfeature.IntResolutionDetail{Value: def, ProviderResolutionDetail: notFound(flag)}
}

func (p *hangingFlags) ObjectEvaluation(_ context.Context, flag string, def any, _ openfeature.FlattenedContext) openfeature.InterfaceResolutionDetail {
	return openfeature.InterfaceResolutionDetail{Value: def, ProviderResolutionDetail: notFound(flag)}
}

// While the flag service hangs, every publish falls back to PartyKit, which
// gets every message in order; Inngest gets none. Once the service answers
// again, the next publish follows the flag.
func TestBroadcastWithAHangingFlagServicePublishesToPartyKit(t *testing.T) {
	party := sharedParty(t)
	inngest, key := sharedInngest(t)

	flagService := &hangingFlags{mode: "realtime", release: make(chan struct{})}
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
		newInngest(t, realtime.InngestOptions{BaseURL: inngest.URL(), SigningKey: key}),
		broadcast.Options{Resolver: ev})
	r := room("flaghang")
	partySub := mustSubscribeParty(t, party, r)
	inngestSub := mustSubscribeInngest(t, inngest, r, topic)

	const n = 5
	for i := range n {
		msg := readyMsg(r)
		msg.RequestID = fmt.Sprintf("hung-%d", i)
		if err := b.Publish(ctxT(t), msg); err != nil {
			t.Fatalf("publish %d while the flag service hangs: %v", i, err)
		}
		expectDelivered(t, fmt.Sprintf("publish %d: partykit subscriber", i), partySub, partySpelling(envelope(t, msg)))
	}
	expectQuiet(t, map[string]subscriber{"partykit subscriber": partySub, "inngest subscriber": inngestSub})

	flagService.healed.Store(true)
	msg := readyMsg(r)
	msg.RequestID = "healed"
	if err := b.Publish(ctxT(t), msg); err != nil {
		t.Fatalf("publish after the flag service healed: %v", err)
	}
	expectDelivered(t, "after healing: inngest subscriber", inngestSub, envelope(t, msg))
	expectQuiet(t, map[string]subscriber{"partykit subscriber": partySub, "inngest subscriber": inngestSub})
}
