// Package videopipeline is course-builder's video pipeline as Go inngestgo
// functions, telling browsers what happened through the realtime provider
// that [realtime.Middleware] puts into every run's context — usually a
// broadcast.Broadcast, so the same code serves every rollout mode.
//
// Rooms, event names and bodies are those of the TypeScript functions in
// @coursebuilder/core (inngest/video-processing/functions):
//
//	function                trigger                                   room          name                   body
//	video-uploaded          video/video-uploaded                      resource id   videoResource.created  the video resource
//	mux-video-asset-ready   mux/web-hook-event (type video.asset.ready)   passthrough   video.asset.ready      the Mux playback id
//	mux-video-asset-error   mux/web-hook-event (type video.asset.errored) passthrough   video.asset.errored    "Mux Asset Errored: <asset id>"
//	transcript-ready-event  video/transcript-ready-event              resource id   transcript.ready       the transcript
//
// One deliberate difference: the TypeScript error announcement sends no
// name; here it is named video.asset.errored, the name the UI's handlers
// and the rollout flags (scope video-errored) use. A browser that ignores
// names reads the same body.
//
// Every announcement is published inside its own step, so a replayed run
// does not publish again. The Mux and database calls of the TypeScript
// functions stand behind the [Store] interface; [MemoryStore] keeps them in
// memory for the examples and tests.
//
// [HealthCheck] is a cron function that publishes a ping on a health channel
// and reports whether it succeeded and how long it took, without ever failing
// the function.
package videopipeline

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/inngest/inngestgo"
	"github.com/inngest/inngestgo/step"

	"github.com/coursebuilder/realtime-go/realtime"
)

// Event names that trigger the functions, as in @coursebuilder/core.
const (
	EventVideoUploaded   = "video/video-uploaded"
	EventMuxWebhook      = "mux/web-hook-event"
	EventTranscriptReady = "video/transcript-ready-event"
)

// Realtime message names the functions publish.
const (
	NameVideoResourceCreated = "videoResource.created"
	NameVideoAssetReady      = "video.asset.ready"
	NameVideoAssetErrored    = "video.asset.errored"
	NameTranscriptReady      = "transcript.ready"
	NameHealthPing           = "health.ping"
)

// HealthRoom is the room (channel) the health check publishes on.
const HealthRoom = "realtime-health"

// ErrNoProvider is the permanent failure of a step that finds no realtime
// provider in its context: the client was built without realtime.Middleware.
var ErrNoProvider = errors.New("videopipeline: no realtime provider in context (install realtime.Middleware)")

// VideoResource is what the database keeps about a video.
type VideoResource struct {
	ID               string `json:"_id"`
	State            string `json:"state"`
	OriginalMediaURL string `json:"originalMediaUrl,omitempty"`
	MuxAssetID       string `json:"muxAssetId,omitempty"`
	MuxPlaybackID    string `json:"muxPlaybackId,omitempty"`
	Transcript       string `json:"transcript,omitempty"`
}

// Store stands for Mux and the database.
type Store interface {
	// CreateVideoResource creates the Mux asset and the video resource for
	// an upload, in state "processing".
	CreateVideoResource(ctx context.Context, up VideoUploaded) (VideoResource, error)
	// VideoResource loads a video resource; ok is false if there is none.
	VideoResource(ctx context.Context, id string) (v VideoResource, ok bool, err error)
	// Update changes a video resource's state and, if not empty, transcript.
	Update(ctx context.Context, id, state, transcript string) error
}

// VideoUploaded is the data of EventVideoUploaded.
type VideoUploaded struct {
	FileName         string `json:"fileName"`
	OriginalMediaURL string `json:"originalMediaUrl"`
	ResourceID       string `json:"resourceId,omitempty"`
	ModuleSlug       string `json:"moduleSlug,omitempty"`
}

// MuxWebhook is the data of EventMuxWebhook.
type MuxWebhook struct {
	MuxWebhookEvent struct {
		Type string `json:"type"`
		Data struct {
			ID          string `json:"id"`
			Passthrough string `json:"passthrough"`
		} `json:"data"`
	} `json:"muxWebhookEvent"`
}

// TranscriptReady is the data of EventTranscriptReady.
type TranscriptReady struct {
	VideoResourceID string `json:"videoResourceId"`
	Transcript      string `json:"transcript"`
	SRT             string `json:"srt,omitempty"`
	ModuleSlug      string `json:"moduleSlug,omitempty"`
}

// Functions registers the four video functions and the health check on
// client, whose options must include realtime.Middleware.
func Functions(client inngestgo.Client, store Store) ([]inngestgo.ServableFunction, error) {
	ctors := []func(inngestgo.Client, Store) (inngestgo.ServableFunction, error){
		VideoUploadedFn, VideoReadyFn, VideoErroredFn, TranscriptReadyFn,
		func(c inngestgo.Client, _ Store) (inngestgo.ServableFunction, error) {
			return HealthCheck(c, "*/5 * * * *")
		},
	}
	var fns []inngestgo.ServableFunction
	for _, ctor := range ctors {
		fn, err := ctor(client, store)
		if err != nil {
			return nil, err
		}
		fns = append(fns, fn)
	}
	return fns, nil
}

// VideoUploadedFn creates the video resource and announces it.
func VideoUploadedFn(client inngestgo.Client, store Store) (inngestgo.ServableFunction, error) {
	return inngestgo.CreateFunction(client,
		inngestgo.FunctionOpts{ID: "video-uploaded", Name: "Video Uploaded"},
		inngestgo.EventTrigger(EventVideoUploaded, nil),
		func(ctx context.Context, in inngestgo.Input[VideoUploaded]) (any, error) {
			v, err := step.Run(ctx, "create the video resource", func(ctx context.Context) (VideoResource, error) {
				return store.CreateVideoResource(ctx, in.Event.Data)
			})
			if err != nil {
				return nil, err
			}
			err = announce(ctx, "announce video resource created", realtime.Message{
				Room: v.ID, Name: NameVideoResourceCreated, RequestID: in.Event.Data.FileName, Body: v,
			})
			return v, err
		})
}

// VideoReadyFn marks the video ready and announces its playback id.
func VideoReadyFn(client inngestgo.Client, store Store) (inngestgo.ServableFunction, error) {
	return muxFunction(client, store, "mux-video-asset-ready", "Mux Video Asset Ready", "video.asset.ready",
		func(ctx context.Context, hook MuxWebhook, v VideoResource, found bool) (realtime.Message, error) {
			if found {
				if _, err := step.Run(ctx, "update the video resource in database", func(ctx context.Context) (string, error) {
					return "ready", store.Update(ctx, v.ID, "ready", "")
				}); err != nil {
					return realtime.Message{}, err
				}
			}
			var body any // null when the resource is unknown, as in TypeScript
			if found {
				body = v.MuxPlaybackID
			}
			room := hook.MuxWebhookEvent.Data.Passthrough
			return realtime.Message{Room: room, Name: NameVideoAssetReady, RequestID: room, Body: body}, nil
		})
}

// VideoErroredFn marks the video errored and announces it.
func VideoErroredFn(client inngestgo.Client, store Store) (inngestgo.ServableFunction, error) {
	return muxFunction(client, store, "mux-video-asset-error", "Mux Video Asset Errored", "video.asset.errored",
		func(ctx context.Context, hook MuxWebhook, v VideoResource, found bool) (realtime.Message, error) {
			if !found {
				return realtime.Message{}, inngestgo.NoRetryError(errors.New("video resource not found"))
			}
			if _, err := step.Run(ctx, "update the video resource as errored", func(ctx context.Context) (string, error) {
				return "errored", store.Update(ctx, v.ID, "errored", "")
			}); err != nil {
				return realtime.Message{}, err
			}
			room := hook.MuxWebhookEvent.Data.Passthrough
			return realtime.Message{Room: room, Name: NameVideoAssetErrored, RequestID: room,
				Body: "Mux Asset Errored: " + hook.MuxWebhookEvent.Data.ID}, nil
		})
}

// muxFunction is the shape the Mux webhook functions share: load the video
// resource named by the passthrough, act, then announce.
func muxFunction(client inngestgo.Client, store Store, id, name, hookType string,
	act func(ctx context.Context, hook MuxWebhook, v VideoResource, found bool) (realtime.Message, error),
) (inngestgo.ServableFunction, error) {
	expr := fmt.Sprintf("event.data.muxWebhookEvent.type == %q", hookType)
	return inngestgo.CreateFunction(client,
		inngestgo.FunctionOpts{ID: id, Name: name},
		inngestgo.EventTrigger(EventMuxWebhook, &expr),
		func(ctx context.Context, in inngestgo.Input[MuxWebhook]) (any, error) {
			hook := in.Event.Data
			type loaded struct {
				V     VideoResource `json:"v"`
				Found bool          `json:"found"`
			}
			l, err := step.Run(ctx, "load the video resource", func(ctx context.Context) (loaded, error) {
				v, ok, err := store.VideoResource(ctx, hook.MuxWebhookEvent.Data.Passthrough)
				return loaded{v, ok}, err
			})
			if err != nil {
				return nil, err
			}
			msg, err := act(ctx, hook, l.V, l.Found)
			if err != nil {
				return nil, err
			}
			if err := announce(ctx, "announce asset "+hookType[len("video.asset."):], msg); err != nil {
				return nil, err
			}
			return hook.MuxWebhookEvent.Data, nil
		})
}

// TranscriptReadyFn stores the transcript and sends it to the browser.
func TranscriptReadyFn(client inngestgo.Client, store Store) (inngestgo.ServableFunction, error) {
	return inngestgo.CreateFunction(client,
		inngestgo.FunctionOpts{ID: "transcript-ready-event", Name: "Transcript Ready"},
		inngestgo.EventTrigger(EventTranscriptReady, nil),
		func(ctx context.Context, in inngestgo.Input[TranscriptReady]) (any, error) {
			d := in.Event.Data
			if d.VideoResourceID == "" {
				return nil, inngestgo.NoRetryError(errors.New("video resource id is required"))
			}
			if _, err := step.Run(ctx, "update the video resource in the database", func(ctx context.Context) (bool, error) {
				return true, store.Update(ctx, d.VideoResourceID, "", d.Transcript)
			}); err != nil {
				return nil, err
			}
			err := announce(ctx, "send the transcript to the browser", realtime.Message{
				Room: d.VideoResourceID, Name: NameTranscriptReady, RequestID: d.VideoResourceID, Body: d.Transcript,
			})
			return map[string]string{"transcript": d.Transcript}, err
		})
}

// Ping is the result of a health check: whether the publish succeeded and
// how long it took.
type Ping struct {
	OK        bool    `json:"ok"`
	LatencyMS float64 `json:"latencyMs"`
	Error     string  `json:"error,omitempty"`
}

// HealthCheck is a cron function that publishes a ping on [HealthRoom] and
// returns a [Ping]. A failed publish is reported in the result and never
// fails the function, so the health check cannot page anyone or retry into
// the realtime service it is checking; alert on the broadcast metrics
// instead.
func HealthCheck(client inngestgo.Client, cron string) (inngestgo.ServableFunction, error) {
	return inngestgo.CreateFunction(client,
		inngestgo.FunctionOpts{ID: "realtime-health-check", Name: "Realtime health check"},
		inngestgo.CronTrigger(cron),
		func(ctx context.Context, in inngestgo.Input[any]) (any, error) {
			return step.Run(ctx, "publish ping", func(ctx context.Context) (Ping, error) {
				p, ok := realtime.FromContext(ctx)
				if !ok {
					return Ping{Error: ErrNoProvider.Error()}, nil
				}
				start := time.Now()
				err := p.Publish(ctx, realtime.Message{Room: HealthRoom, Name: NameHealthPing, RequestID: in.InputCtx.RunID,
					Body: map[string]string{"at": start.UTC().Format(time.RFC3339Nano)}})
				ping := Ping{OK: err == nil, LatencyMS: float64(time.Since(start).Microseconds()) / 1000}
				if err != nil {
					ping.Error = err.Error()
				}
				return ping, nil
			})
		})
}

// announce publishes msg from inside a step named id, so that a replayed run
// does not publish again; a permanent publish error stops retries.
func announce(ctx context.Context, id string, msg realtime.Message) error {
	_, err := step.Run(ctx, id, func(ctx context.Context) (string, error) {
		p, ok := realtime.FromContext(ctx)
		if !ok {
			return "", inngestgo.NoRetryError(ErrNoProvider)
		}
		if err := p.Publish(ctx, msg); err != nil {
			if realtime.IsPermanent(err) {
				return "", inngestgo.NoRetryError(err)
			}
			return "", err
		}
		return msg.Name, nil
	})
	return err
}

// MemoryStore is a [Store] in memory, for the examples and tests.
type MemoryStore struct {
	mu     sync.Mutex
	videos map[string]VideoResource
}

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore { return &MemoryStore{videos: map[string]VideoResource{}} }

// CreateVideoResource stores a processing video named after the upload.
func (s *MemoryStore) CreateVideoResource(_ context.Context, up VideoUploaded) (VideoResource, error) {
	id := up.FileName
	if up.ResourceID != "" {
		id = up.ResourceID
	}
	v := VideoResource{ID: id, State: "processing", OriginalMediaURL: up.OriginalMediaURL, MuxAssetID: "asset_" + id, MuxPlaybackID: "pb_" + id}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.videos[id] = v
	return v, nil
}

// VideoResource returns the stored video.
func (s *MemoryStore) VideoResource(_ context.Context, id string) (VideoResource, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.videos[id]
	return v, ok, nil
}

// Update changes the stored video's state and transcript.
func (s *MemoryStore) Update(_ context.Context, id, state, transcript string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.videos[id]
	if !ok {
		return fmt.Errorf("videopipeline: no video %q", id)
	}
	if state != "" {
		v.State = state
	}
	if transcript != "" {
		v.Transcript = transcript
	}
	s.videos[id] = v
	return nil
}
