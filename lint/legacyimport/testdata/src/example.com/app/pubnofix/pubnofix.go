// Package pubnofix has publishes the fix cannot rewrite: they are reported
// without one.
package pubnofix

import (
	"context"

	"example.com/app/events"
	"github.com/coursebuilder/realtime-go/legacyparty" // want `^import of deprecated PartyKit package`
)

// Detached publishes in a context a call makes.
func Detached(ctx context.Context, p *legacyparty.Provider) error {
	return p.Publish(context.WithoutCancel(ctx), events.Ready("a")) // want `^publish through the deprecated \*legacyparty.Provider .*; no suggested fix: the context argument is not a variable or a field, and the fix would evaluate it twice \(migration guide: .*\)$`
}

// Later publishes in go and defer statements.
func Later(ctx context.Context, p *legacyparty.Provider) {
	defer p.Publish(ctx, events.Ready("b")) // want `^publish through the deprecated \*legacyparty.Provider .*; no suggested fix: a go or defer statement`
	go p.Publish(ctx, events.Ready("c"))    // want `^publish through the deprecated \*legacyparty.Provider .*; no suggested fix: a go or defer statement`
}

// Shadowed has a parameter named realtime where the fix needs the package.
func Shadowed(ctx context.Context, p *legacyparty.Provider, realtime string) error {
	return p.Publish(ctx, events.Ready(realtime)) // want `^publish through the deprecated \*legacyparty.Provider .*; no suggested fix: the name realtime means something else here`
}

// NotPublish calls other methods: not reported (the import is).
func NotPublish(ctx context.Context, p *legacyparty.Provider) (string, error) {
	f := p.Publish // a method value, not a call
	_ = f
	return p.PublishReply(ctx, events.Ready("d"))
}
