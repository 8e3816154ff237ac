// Command inngestfn is an Inngest function that tells browsers a video is
// ready, publishing through the realtime provider that [realtime.Middleware]
// puts into every function's context.
//
// It shows the pattern of the README's quick start, runnable:
//
//   - the inngestgo client is built with
//     Middleware: []func() middleware.Middleware{realtime.Middleware(provider)};
//   - the "video-ready" function, triggered by "mux/video.asset.ready",
//     reaches the provider with [realtime.FromContext] and publishes
//     {Room: <video resource id>, Name: "video.asset.ready", …} from inside
//     step.Run(ctx, "notify-browser", …). Inngest re-invokes a function once
//     per step and replays the steps that already ran from their memoized
//     result, so a publish outside a step would be sent again on every
//     re-invocation; inside the step it is sent once per run (or once per
//     attempt of that step, if the publish fails and Inngest retries it);
//   - without a provider in the context (a client built without the
//     middleware) the step fails permanently with an error matching
//     [errNoProvider] instead of panicking on a nil Provider.
//
// The provider is inngest.New(nil), configured from the environment
// (INNGEST_SIGNING_KEY, INNGEST_DEV, INNGEST_BASE_URL, INNGEST_ENV …), when
// INNGEST_SIGNING_KEY or INNGEST_DEV is set; otherwise it is a
// realtime.Noop that logs each message it drops.
//
// Run it against a local Inngest dev server:
//
//	npx inngest-cli@latest dev -u http://localhost:3000/api/inngest   # terminal 1
//	cd examples && INNGEST_DEV=1 go run ./inngestfn                   # terminal 2
//
// then send an event from the dev server's UI (http://localhost:8288, "Send
// event") or its API:
//
//	curl -X POST http://localhost:8288/e/dev -d '{"name":"mux/video.asset.ready",
//	  "data":{"videoResourceId":"vid_123","muxPlaybackId":"pb_123","duration":93.4}}'
//
// The run's "notify-browser" step publishes to channel vid_123, topic
// video.asset.ready of the dev server's realtime API. The listen address is
// -addr, else $ADDR, else :3000; the handler is served at /api/inngest.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/inngest/inngestgo"
	inngesterrors "github.com/inngest/inngestgo/errors"
	"github.com/inngest/inngestgo/middleware"
	"github.com/inngest/inngestgo/step"
	"go.uber.org/zap"

	"github.com/coursebuilder/realtime-go/realtime"
	"github.com/coursebuilder/realtime-go/realtime/inngest"
)

const (
	appID       = "course-builder"
	eventName   = "mux/video.asset.ready"
	messageName = "video.asset.ready"
	stepID      = "notify-browser"
)

// VideoReady is the data of a "mux/video.asset.ready" event.
type VideoReady struct {
	VideoResourceID string  `json:"videoResourceId"`
	MuxPlaybackID   string  `json:"muxPlaybackId,omitempty"`
	Duration        float64 `json:"duration,omitempty"`
}

// Notified is the result of the "notify-browser" step: what was published.
// Inngest memoizes it, and a replay returns it without publishing.
type Notified struct {
	Room string `json:"room"`
	Name string `json:"name"`
}

// errNoProvider fails the step when the function's context carries no
// provider: the client was built without [realtime.Middleware].
var errNoProvider = errors.New("inngestfn: no realtime provider in the function context (add realtime.Middleware to the inngestgo client)")

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "inngestfn:", err)
		os.Exit(1)
	}
}

func run() error {
	defaultAddr := ":3000"
	if a := os.Getenv("ADDR"); a != "" {
		defaultAddr = a
	}
	addr := flag.String("addr", defaultAddr, "listen address; the Inngest handler is served at /api/inngest")
	flag.Parse()

	logger, err := zap.NewDevelopment()
	if err != nil {
		return err
	}
	defer func() { _ = logger.Sync() }()

	provider, err := newProvider(logger)
	if err != nil {
		return err
	}
	if c, ok := provider.(io.Closer); ok {
		defer func() { _ = c.Close() }()
	}

	client, err := inngestgo.NewClient(clientOpts(provider))
	if err != nil {
		return err
	}
	if _, err := newVideoReady(client); err != nil {
		return err
	}

	mux := http.NewServeMux()
	mux.Handle("/api/inngest", client.Serve())
	srv := &http.Server{Addr: *addr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	logger.Info("serving Inngest functions", zap.String("addr", *addr), zap.String("path", "/api/inngest"),
		zap.String("provider", fmt.Sprintf("%T", provider)))

	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return srv.Shutdown(shutdown)
}

// newProvider returns the Inngest Realtime provider, configured from the
// environment, when INNGEST_SIGNING_KEY or INNGEST_DEV is set, and a
// [realtime.Noop] that logs what it drops otherwise.
func newProvider(logger *zap.Logger) (realtime.Provider, error) {
	if os.Getenv("INNGEST_SIGNING_KEY") == "" && os.Getenv("INNGEST_DEV") == "" {
		logger.Info("realtime not configured (set INNGEST_DEV=1 or INNGEST_SIGNING_KEY): messages are logged and dropped")
		return realtime.NewNoop(logger), nil
	}
	p, err := inngest.New(nil)
	if err != nil {
		return nil, err
	}
	return p, nil
}

// clientOpts returns the options of this app's inngestgo client: every
// function run gets p in its context, for [realtime.FromContext].
func clientOpts(p realtime.Provider) inngestgo.ClientOpts {
	return inngestgo.ClientOpts{
		AppID:      appID,
		Logger:     slog.Default(),
		Middleware: []func() middleware.Middleware{realtime.Middleware(p)},
	}
}

// newVideoReady registers the "video-ready" function with client.
func newVideoReady(client inngestgo.Client) (inngestgo.ServableFunction, error) {
	return inngestgo.CreateFunction(client,
		inngestgo.FunctionOpts{ID: "video-ready"},
		inngestgo.EventTrigger(eventName, nil),
		func(ctx context.Context, in inngestgo.Input[VideoReady]) (any, error) {
			// Publish inside step.Run: a replayed function returns the
			// memoized step and does not publish a second time.
			return step.Run(ctx, stepID, func(ctx context.Context) (Notified, error) {
				p, ok := realtime.FromContext(ctx)
				if !ok {
					return Notified{}, inngesterrors.NoRetryError(errNoProvider)
				}
				msg := realtime.Message{
					Room:      in.Event.Data.VideoResourceID,
					Name:      messageName,
					RequestID: in.Event.Data.VideoResourceID,
					Body:      in.Event.Data,
				}
				if err := p.Publish(ctx, msg); err != nil {
					return Notified{}, classify(err)
				}
				return Notified{Room: msg.Room, Name: msg.Name}, nil
			})
		})
}

// classify marks the publish errors that a retry cannot fix (an invalid,
// unencodable or oversize message, or a request the server refused) so that
// Inngest fails the step at once instead of retrying it. Unavailable and
// unauthorized (a signing key being rotated) stay retryable.
func classify(err error) error {
	if realtime.IsPermanent(err) {
		return inngesterrors.NoRetryError(err)
	}
	return err
}
