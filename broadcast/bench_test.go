package broadcast_test

import (
	"context"
	"io"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/coursebuilder/realtime-go/broadcast"
	"github.com/coursebuilder/realtime-go/flags"
	"github.com/coursebuilder/realtime-go/realtime"
)

// memory is an in-memory transport that works as the real ones do, minus
// the network: Publish validates and encodes the message once, and
// PublishEnvelope takes an envelope encoded already and accepts it.
type memory struct{}

func (memory) Publish(ctx context.Context, msg realtime.Message) error {
	env, err := realtime.NewEnvelope(ctx, msg)
	if err != nil {
		return err
	}
	return memory{}.PublishEnvelope(ctx, env)
}

func (memory) PublishEnvelope(ctx context.Context, env *realtime.Envelope) error {
	if len(env.Bytes()) > realtime.MaxEnvelopeBytes {
		return &realtime.TooLargeError{Size: len(env.Bytes()), Limit: realtime.MaxEnvelopeBytes}
	}
	return ctx.Err()
}

var discard realtime.Provider = memory{}

var benchMsg = realtime.Message{Room: "vid_123", Name: "video.asset.ready", RequestID: "req_1", Body: map[string]string{"status": "ready"}}

// BenchmarkDirect is the baseline: a single-transport publish, straight to
// an in-memory transport (validation and encoding included, as on a real
// transport).
func BenchmarkDirect(b *testing.B) {
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		_ = discard.Publish(ctx, benchMsg)
	}
}

// BenchmarkBroadcast is the facade's cost per mode, both transports in
// memory: compare with BenchmarkDirect. Broadcast validates and encodes
// once and hands the same envelope to both transports. The shadow-logged
// case adds a production JSON logger at info level writing to io.Discard:
// the cost of the two log lines per publish that production pays.
func BenchmarkBroadcast(b *testing.B) {
	production := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(io.Discard), zap.InfoLevel))
	for _, c := range []struct {
		name string
		mode flags.Mode
		log  *zap.Logger
	}{
		{"legacy", flags.Legacy, nil},
		{"shadow", flags.Shadow, nil},
		{"primary", flags.Primary, nil},
		{"realtime", flags.Realtime, nil},
		{"shadow-logged", flags.Shadow, production},
	} {
		b.Run(c.name, func(b *testing.B) {
			br := mustNew(b, discard, discard, &broadcast.Options{Resolver: flags.Fixed(c.mode), Logger: c.log})
			defer br.Close(context.Background())
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if err := br.Publish(ctx, benchMsg); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func sleeper(d time.Duration) realtime.Provider {
	return realtime.ProviderFunc(func(ctx context.Context, _ realtime.Message) error {
		time.Sleep(d)
		return nil
	})
}

// BenchmarkShadowLatency shows that shadow mode costs the slower transport,
// not the sum: PartyKit takes 2ms, Inngest 3ms; a sequential fan-out would
// take 5ms per publish. The ms/publish metric is the one to read.
func BenchmarkShadowLatency(b *testing.B) {
	run := func(b *testing.B, p realtime.Provider) {
		ctx := context.Background()
		start := time.Now()
		n := 0
		for b.Loop() {
			if err := p.Publish(ctx, benchMsg); err != nil {
				b.Fatal(err)
			}
			n++
		}
		b.ReportMetric(float64(time.Since(start).Microseconds())/1000/float64(n), "ms/publish")
	}
	b.Run("partykit-alone-2ms", func(b *testing.B) { run(b, sleeper(2*time.Millisecond)) })
	b.Run("inngest-alone-3ms", func(b *testing.B) { run(b, sleeper(3*time.Millisecond)) })
	b.Run("shadow-both", func(b *testing.B) {
		br := mustNew(b, sleeper(2*time.Millisecond), sleeper(3*time.Millisecond), &broadcast.Options{Resolver: flags.Fixed(flags.Shadow)})
		defer br.Close(context.Background())
		run(b, br)
	})
	b.Run("shadow-inngest-hangs", func(b *testing.B) {
		hang := realtime.ProviderFunc(func(ctx context.Context, _ realtime.Message) error { <-ctx.Done(); return ctx.Err() })
		br := mustNew(b, sleeper(2*time.Millisecond), hang, &broadcast.Options{
			Resolver: flags.Fixed(flags.Shadow), ShadowBudget: 10 * time.Millisecond, ShadowTimeout: 20 * time.Millisecond,
		})
		defer br.Close(context.Background())
		run(b, br)
	})
}
