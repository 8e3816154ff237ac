package realtime_test

import (
	"context"
	"encoding/json"
	"errors"
	"os/exec"
	"strings"
	"testing"

	"github.com/inngest/inngestgo/middleware"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/coursebuilder/realtime-go/realtime"
	"github.com/coursebuilder/realtime-go/realtime/realtimetest"
)

func TestMiddlewarePutsTheProviderInEveryRunsContext(t *testing.T) {
	rec := realtimetest.NewRecorder()
	mw := realtime.Middleware(rec)
	for range 2 { // a fresh middleware per request, the same provider
		in := &middleware.TransformableInput{}
		in.WithContext(context.Background())
		mw().TransformInput(context.Background(), middleware.CallContext{}, in)
		p, ok := realtime.FromContext(in.Context())
		require.True(t, ok)
		require.NoError(t, p.Publish(in.Context(), realtime.Message{Room: "r", Name: "n"}))
	}
	assert.Equal(t, 2, rec.Len())
}

func TestFromContextWithoutProvider(t *testing.T) {
	_, ok := realtime.FromContext(context.Background())
	assert.False(t, ok)
	_, ok = realtime.FromContext(realtime.WithProvider(context.Background(), nil))
	assert.False(t, ok, "a nil provider is no provider")
}

func TestNoopValidatesLogsAndDrops(t *testing.T) {
	core, logs := observer.New(zap.InfoLevel)
	n := realtime.NewNoop(zap.New(core))
	require.NoError(t, n.Publish(context.Background(), realtime.Message{Room: "vid", Name: "video.asset.ready", RequestID: "q", Body: "secret-body"}))
	require.Equal(t, 1, logs.Len())
	fields := logs.All()[0].ContextMap()
	assert.Equal(t, "vid", fields["room"])
	assert.Equal(t, "video.asset.ready", fields["name"])
	b, _ := json.Marshal(fields)
	assert.NotContains(t, string(b), "secret-body")

	assert.ErrorIs(t, n.Publish(context.Background(), realtime.Message{Name: "x"}), realtime.ErrEmpty)
	var zero realtime.Noop
	assert.NoError(t, zero.Publish(context.Background(), realtime.Message{Room: "r", Name: "n"}), "the zero Noop drops silently")
}

func TestNoopConformance(t *testing.T) {
	// A Noop delivers nothing, so only its refusals can be checked: run the
	// suite on a Recorder behind a Noop's validation. A message the Noop
	// accepts but Encode refuses fails with an untyped error, so the suite
	// sees a Noop that skips a check (the Recorder would otherwise refuse
	// the message with the same typed error and hide it).
	realtimetest.Run(t, func(t *testing.T) realtimetest.Target {
		rec := realtimetest.NewRecorder()
		noop := realtime.NewNoop(nil)
		return realtimetest.Target{
			Provider: realtime.ProviderFunc(func(ctx context.Context, m realtime.Message) error {
				if err := noop.Publish(ctx, m); err != nil {
					return err
				}
				if _, err := m.Encode(); err != nil {
					return errNoopAcceptedInvalid
				}
				return rec.Publish(ctx, m)
			}),
			Subscribe: rec.Subscribe,
		}
	})
}

var errNoopAcceptedInvalid = errors.New("the Noop accepted a message Encode refuses")

func TestRecorderConformance(t *testing.T) {
	realtimetest.Run(t, func(t *testing.T) realtimetest.Target {
		rec := realtimetest.NewRecorder()
		return realtimetest.Target{Provider: rec, Subscribe: rec.Subscribe}
	})
}

// TestNoServerPackagesImported guards the promise that library users never
// build the Inngest server stack: no package of this module imports
// github.com/inngest/inngest directly, and none pulls in its realtime server,
// Redis or router packages.
func TestNoServerPackagesImported(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", "github.com/coursebuilder/realtime-go/...").CombinedOutput()
	require.NoError(t, err, string(out))
	for _, pkg := range strings.Fields(string(out)) {
		for _, banned := range []string{"github.com/inngest/inngest/pkg/execution", "github.com/alicebob/miniredis", "github.com/redis/rueidis", "github.com/go-chi/chi"} {
			assert.False(t, strings.HasPrefix(pkg, banned), "the library depends on %s", pkg)
		}
	}
	direct, err := exec.Command("go", "list", "-f", "{{.ImportPath}}: {{join .Imports \" \"}}", "github.com/coursebuilder/realtime-go/...").CombinedOutput()
	require.NoError(t, err, string(direct))
	assert.NotContains(t, string(direct), "github.com/inngest/inngest/", "no package imports the server module directly")
}
