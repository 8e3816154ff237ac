package videopipeline_test

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"testing"

	"github.com/inngest/inngestgo"
	"github.com/inngest/inngestgo/middleware"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/coursebuilder/realtime-go/examples/internal/executor"
	"github.com/coursebuilder/realtime-go/examples/videopipeline"
	"github.com/coursebuilder/realtime-go/realtime"
	"github.com/coursebuilder/realtime-go/realtime/realtimetest"
)

func client(t *testing.T, p realtime.Provider) inngestgo.Client {
	t.Helper()
	c, err := inngestgo.NewClient(inngestgo.ClientOpts{
		AppID:      "course-builder",
		Dev:        inngestgo.BoolPtr(true),
		Logger:     slog.New(slog.DiscardHandler),
		Middleware: []func() middleware.Middleware{realtime.Middleware(p)},
	})
	require.NoError(t, err)
	return c
}

type ctor func(inngestgo.Client, videopipeline.Store) (inngestgo.ServableFunction, error)

func run(t *testing.T, p realtime.Provider, store videopipeline.Store, fn ctor, event string, data any) (int, []byte, []executor.Opcode) {
	t.Helper()
	c := client(t, p)
	f, err := fn(c, store)
	require.NoError(t, err)
	return executor.Complete(t, executor.Serve(t, c, f), executor.NewRun(t, event, data))
}

func muxHook(typ, assetID, passthrough string) map[string]any {
	return map[string]any{"muxWebhookEvent": map[string]any{"type": typ, "data": map[string]any{"id": assetID, "passthrough": passthrough}}}
}

// envelopes returns what browsers received, as strings.
func envelopes(rec *realtimetest.Recorder) []string {
	var out []string
	for _, r := range rec.Records() {
		out = append(out, string(r.Envelope))
	}
	return out
}

func TestPipelinePublishesWhatTheTypeScriptFunctionsDid(t *testing.T) {
	store := videopipeline.NewMemoryStore()
	rec := realtimetest.NewRecorder()

	status, _, _ := run(t, rec, store, videopipeline.VideoUploadedFn, videopipeline.EventVideoUploaded,
		videopipeline.VideoUploaded{FileName: "vid_1", OriginalMediaURL: "https://uploads.example/vid_1.mp4"})
	require.Equal(t, http.StatusOK, status)

	status, _, _ = run(t, rec, store, videopipeline.VideoReadyFn, videopipeline.EventMuxWebhook, muxHook("video.asset.ready", "asset_vid_1", "vid_1"))
	require.Equal(t, http.StatusOK, status)

	status, _, _ = run(t, rec, store, videopipeline.TranscriptReadyFn, videopipeline.EventTranscriptReady,
		videopipeline.TranscriptReady{VideoResourceID: "vid_1", Transcript: "Welcome <b>&</b> hello"})
	require.Equal(t, http.StatusOK, status)

	status, _, _ = run(t, rec, store, videopipeline.VideoErroredFn, videopipeline.EventMuxWebhook, muxHook("video.asset.errored", "asset_vid_1", "vid_1"))
	require.Equal(t, http.StatusOK, status)

	// The ids are derived from the run (the executor's run id is fixed) and
	// the message: the same on every attempt of the step that publishes it.
	assert.Equal(t, []string{
		`{"body":{"_id":"vid_1","state":"processing","originalMediaUrl":"https://uploads.example/vid_1.mp4","muxAssetId":"asset_vid_1","muxPlaybackId":"pb_vid_1"},"requestId":"vid_1","name":"videoResource.created","id":"r_fRpeItQgCCeglXDq6TdzQCcv"}`,
		`{"body":"pb_vid_1","requestId":"vid_1","name":"video.asset.ready","id":"r_IP5v8dPNZRRbiZbHBJlCl3-t"}`,
		`{"body":"Welcome \u003cb\u003e\u0026\u003c/b\u003e hello","requestId":"vid_1","name":"transcript.ready","id":"r_pq2C8EFuM6nNvrHT_jjFngUO"}`,
		`{"body":"Mux Asset Errored: asset_vid_1","requestId":"vid_1","name":"video.asset.errored","id":"r__2At1PLgTjBgz4SnmWQvKhG-"}`,
	}, envelopes(rec), "each announcement published exactly once, across every replay of its run")
	for _, r := range rec.Records() {
		assert.Equal(t, "vid_1", r.Message.Room)
	}
	v, ok, err := store.VideoResource(t.Context(), "vid_1")
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, "errored", v.State)
	assert.Equal(t, "Welcome <b>&</b> hello", v.Transcript)
}

func TestVideoReadyForAnUnknownVideoStillAnnounces(t *testing.T) {
	rec := realtimetest.NewRecorder()
	status, _, _ := run(t, rec, videopipeline.NewMemoryStore(), videopipeline.VideoReadyFn, videopipeline.EventMuxWebhook, muxHook("video.asset.ready", "a", "vid_unknown"))
	require.Equal(t, http.StatusOK, status)
	assert.Equal(t, []string{`{"body":null,"requestId":"vid_unknown","name":"video.asset.ready","id":"r_1bxodXID297hDnNlz7PJgta0"}`}, envelopes(rec))
}

func TestAPermanentPublishErrorIsNotRetried(t *testing.T) {
	failing := realtimetest.NewFaulty(realtimetest.Fail(&realtime.PublishError{Transport: "inngest", StatusCode: http.StatusBadRequest, Err: realtime.ErrRejected}))
	store := videopipeline.NewMemoryStore()
	_, err := store.CreateVideoResource(t.Context(), videopipeline.VideoUploaded{FileName: "vid_1"})
	require.NoError(t, err)
	status, body, ops := run(t, failing, store, videopipeline.TranscriptReadyFn, videopipeline.EventTranscriptReady,
		videopipeline.TranscriptReady{VideoResourceID: "vid_1", Transcript: "t"})
	require.Equal(t, http.StatusPartialContent, status, "%s", body)
	last := ops[len(ops)-1]
	assert.Equal(t, "StepFailed", last.Op)
	assert.Contains(t, last.Error.Message, "400")
}

func TestHealthCheckReportsAndNeverFails(t *testing.T) {
	for name, c := range map[string]struct {
		p  realtime.Provider
		ok bool
	}{
		"healthy": {realtimetest.NewRecorder(), true},
		"down":    {realtimetest.NewFaulty(realtimetest.Fail(&realtime.PublishError{Transport: "inngest", Err: errors.Join(realtime.ErrUnavailable, errors.New("connection refused"))})), false},
	} {
		t.Run(name, func(t *testing.T) {
			cl := client(t, c.p)
			fn, err := videopipeline.HealthCheck(cl, "*/5 * * * *")
			require.NoError(t, err)
			status, body, _ := executor.Complete(t, executor.Serve(t, cl, fn), executor.NewRun(t, "inngest/scheduled.timer", map[string]any{"cron": "*/5 * * * *"}))
			require.Equal(t, http.StatusOK, status, "the health check never fails its function: %s", body)
			var ping videopipeline.Ping
			require.NoError(t, json.Unmarshal(body, &ping))
			assert.Equal(t, c.ok, ping.OK)
			if !c.ok {
				assert.Contains(t, ping.Error, "connection refused")
			}
			if rec, isRec := c.p.(*realtimetest.Recorder); isRec {
				require.Equal(t, 1, rec.Len())
				assert.Equal(t, videopipeline.HealthRoom, rec.Messages()[0].Room)
			}
		})
	}
}

func TestFunctionsRegistersAll(t *testing.T) {
	fns, err := videopipeline.Functions(client(t, realtimetest.NewRecorder()), videopipeline.NewMemoryStore())
	require.NoError(t, err)
	var ids []string
	for _, f := range fns {
		ids = append(ids, f.Config().ID)
	}
	assert.ElementsMatch(t, []string{"video-uploaded", "mux-video-asset-ready", "mux-video-asset-error", "transcript-ready-event", "realtime-health-check"}, ids)
}
