package realtime

import (
	"context"

	"github.com/inngest/inngestgo/middleware"
)

type providerKey struct{}

// WithProvider returns a copy of ctx that carries p, for [FromContext].
func WithProvider(ctx context.Context, p Provider) context.Context {
	return context.WithValue(ctx, providerKey{}, p)
}

// FromContext returns the Provider that [WithProvider] or [Middleware] put in
// ctx, and whether there was one.
func FromContext(ctx context.Context) (Provider, bool) {
	p, ok := ctx.Value(providerKey{}).(Provider)
	return p, ok && p != nil
}

// Middleware returns an inngestgo middleware that puts p into the context of
// every function run, so handlers reach it with [FromContext], together with
// the run's id, from which [NewEnvelope] derives the id of a message that
// has none (a retried step then publishes it under the same id):
//
//	client, err := inngestgo.NewClient(inngestgo.ClientOpts{
//		AppID:      "course-builder",
//		Middleware: []func() middleware.Middleware{realtime.Middleware(provider)},
//	})
func Middleware(p Provider) func() middleware.Middleware {
	return func() middleware.Middleware { return &contextMiddleware{provider: p} }
}

// contextMiddleware injects the provider before each execution.
type contextMiddleware struct {
	middleware.BaseMiddleware
	provider Provider
}

func (m *contextMiddleware) TransformInput(_ context.Context, call middleware.CallContext, in *middleware.TransformableInput) {
	ctx := in.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	in.WithContext(withRunID(WithProvider(ctx, m.provider), call.RunID))
}
