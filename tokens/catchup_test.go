package tokens_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/coursebuilder/realtime-go/broadcast"
	"github.com/coursebuilder/realtime-go/flags"
	"github.com/coursebuilder/realtime-go/realtime"
	"github.com/coursebuilder/realtime-go/realtime/realtimetest"
	"github.com/coursebuilder/realtime-go/replay"
	"github.com/coursebuilder/realtime-go/tokens"
)

// catchUpFixture is a token handler over a real Broadcast and its
// in-memory replay log: alice may watch vid_1 and vid_2, and the
// video-ready scope is in mode.
type catchUpFixture struct {
	b    *broadcast.Broadcast
	rt   *realtimetest.Recorder
	h    *tokens.Handler
	mode flags.Mode
}

func newCatchUp(t *testing.T, mode flags.Mode, log replay.Log) *catchUpFixture {
	t.Helper()
	f := &catchUpFixture{rt: realtimetest.NewRecorder(), mode: mode}
	b, err := broadcast.New(realtimetest.NewRecorder(), f.rt, &broadcast.Options{Resolver: flags.Fixed(mode), Log: log})
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close(context.Background()) })
	f.b = b
	f.h = tokens.NewHandler(b, &tokens.HandlerOptions{
		Authenticate: func(r *http.Request) (tokens.Subject, error) {
			if u := r.Header.Get("X-User"); u != "" {
				return tokens.Subject{ID: u}, nil
			}
			return tokens.Subject{}, errors.New("no session")
		},
		Authorize: func(_ context.Context, s tokens.Subject, room string, _ flags.Scope) error {
			if s.ID == "alice" && (room == "vid_1" || room == "vid_2") {
				return nil
			}
			return errors.New("not the owner")
		},
	})
	return f
}

func (f *catchUpFixture) publish(t *testing.T, room, name string, body any) realtime.Message {
	t.Helper()
	msg := realtime.Message{Room: room, Name: name, Body: body}
	require.NoError(t, f.b.Publish(context.Background(), msg))
	return msg
}

func (f *catchUpFixture) get(t *testing.T, user, query string) (*httptest.ResponseRecorder, tokens.CatchUp) {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, "/api/realtime/token?"+query, nil)
	if user != "" {
		r.Header.Set("X-User", user)
	}
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, r)
	var c tokens.CatchUp
	if w.Code == http.StatusOK {
		require.NoError(t, json.Unmarshal(w.Body.Bytes(), &c), w.Body.String())
	}
	return w, c
}

// What a client missed after seq n comes back in seq order, as the
// envelopes were published (the bytes the transports sent), and the next
// page goes on from Next.
func TestCatchUpReturnsWhatWasMissedInOrder(t *testing.T) {
	f := newCatchUp(t, flags.Shadow, nil)
	for i := range 5 {
		f.publish(t, "vid_1", "video.asset.ready", map[string]int{"n": i})
	}
	sent := f.rt.Records() // what Inngest received, numbered by the log
	require.Len(t, sent, 5)

	w, c := f.get(t, "alice", "room=vid_1&scope=video-ready&after=2")
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	assert.Equal(t, "no-store", w.Header().Get("Cache-Control"))
	require.Len(t, c.Messages, 3)
	for i, m := range c.Messages {
		assert.JSONEq(t, string(sent[2+i].Envelope), string(m))
		assert.Equal(t, string(sent[2+i].Envelope), string(m), "the bytes that were published")
		got, err := realtime.DecodeEnvelope(m)
		require.NoError(t, err)
		assert.Equal(t, uint64(3+i), got.Seq)
	}
	assert.Equal(t, uint64(5), c.Next)
	assert.Equal(t, uint64(5), c.Head)
	assert.False(t, c.More)
	assert.False(t, c.Truncated)
	assert.NotZero(t, c.Epoch)

	// Pages.
	_, c = f.get(t, "alice", "room=vid_1&scope=video-ready&after=0&limit=2")
	assert.Len(t, c.Messages, 2)
	assert.True(t, c.More)
	assert.Equal(t, uint64(2), c.Next)
	_, c = f.get(t, "alice", fmt.Sprintf("room=vid_1&scope=video-ready&after=%d&limit=2", c.Next))
	assert.Len(t, c.Messages, 2)
	assert.Equal(t, uint64(4), c.Next)

	// Nothing missed.
	_, c = f.get(t, "alice", "room=vid_1&scope=video-ready&after=5")
	assert.Empty(t, c.Messages)
	assert.NotNil(t, c.Messages, "an empty list, not null")
	assert.Equal(t, uint64(5), c.Next)
}

// A room's history never appears for another room, and a catch-up for one
// scope returns that scope's names only, while Next moves past the others.
func TestCatchUpIsTheRoomsAndTheScopesOnly(t *testing.T) {
	f := newCatchUp(t, flags.Primary, nil)
	f.publish(t, "vid_1", "video.asset.ready", "one")
	f.publish(t, "vid_2", "video.asset.ready", "other room")
	f.publish(t, "vid_1", "transcript.ready", "other scope")
	f.publish(t, "vid_1", "video.asset.ready", "two")

	_, c := f.get(t, "alice", "room=vid_1&scope=video-ready&after=0")
	require.Len(t, c.Messages, 2)
	for _, m := range c.Messages {
		got, err := realtime.DecodeEnvelope(m)
		require.NoError(t, err)
		assert.Equal(t, "video.asset.ready", got.Name)
		assert.NotContains(t, string(m), "other")
	}
	assert.Equal(t, uint64(3), c.Next, "vid_1 has 3 messages; the transcript one is read past")

	_, c = f.get(t, "alice", "room=vid_2&scope=video-ready&after=0")
	require.Len(t, c.Messages, 1)
	assert.Contains(t, string(c.Messages[0]), "other room")
	assert.Equal(t, uint64(1), c.Next, "each room has its own seq")
}

// The same rules as a token: 401 without a session, 403 for a room the
// user may not see, 404 while the scope is in legacy mode, 400 for a bad
// after or limit; nothing of the history in any of them.
func TestCatchUpFollowsTheTokenRules(t *testing.T) {
	f := newCatchUp(t, flags.Shadow, nil)
	f.publish(t, "vid_1", "video.asset.ready", "secret-body")
	for _, c := range []struct {
		user, query string
		status      int
	}{
		{"", "room=vid_1&scope=video-ready&after=0", http.StatusUnauthorized},
		{"mallory", "room=vid_1&scope=video-ready&after=0", http.StatusForbidden},
		{"alice", "room=vid_1&scope=video-ready&after=-1", http.StatusBadRequest},
		{"alice", "room=vid_1&scope=video-ready&after=x", http.StatusBadRequest},
		{"alice", "room=vid_1&scope=video-ready&after=1&after=2", http.StatusBadRequest},
		{"alice", "room=vid_1&scope=video-ready&after=0&limit=0", http.StatusBadRequest},
		{"alice", "room=vid_1&scope=video-ready&after=0&limit=501", http.StatusBadRequest},
		{"alice", "room=vid_1&scope=video-ready&limit=5", http.StatusBadRequest},
	} {
		w, _ := f.get(t, c.user, c.query)
		assert.Equal(t, c.status, w.Code, "%s %s: %s", c.user, c.query, w.Body.String())
		assert.NotContains(t, w.Body.String(), "secret-body")
		assert.Equal(t, "no-store", w.Header().Get("Cache-Control"))
	}

	// Served in legacy mode too: a page on PartyKit repairs its gaps.
	legacy := newCatchUp(t, flags.Legacy, nil)
	legacy.publish(t, "vid_1", "video.asset.ready", "legacy-body")
	w, c := legacy.get(t, "alice", "room=vid_1&scope=video-ready&after=0")
	require.Equal(t, http.StatusOK, w.Code)
	require.Len(t, c.Messages, 1)
	assert.Contains(t, string(c.Messages[0]), "legacy-body")

	// A client learns its position by asking after the largest seq.
	w, c = legacy.get(t, "alice", "room=vid_1&scope=video-ready&after=18446744073709551615")
	require.Equal(t, http.StatusOK, w.Code)
	assert.Empty(t, c.Messages)
	assert.Equal(t, uint64(1), c.Next, "Next is the head")
}

// failingLog is a replay log whose reads fail.
type failingLog struct{ replay.Log }

func (failingLog) After(context.Context, string, uint64, int) (replay.Page, error) {
	return replay.Page{}, errors.New("redis: connection refused at 10.0.0.7:6379")
}

// A log that cannot be read is a 502 that says no more than that.
func TestCatchUpWhenTheLogFails(t *testing.T) {
	f := newCatchUp(t, flags.Realtime, failingLog{replay.NewMemory(nil)})
	w, _ := f.get(t, "alice", "room=vid_1&scope=video-ready&after=0")
	assert.Equal(t, http.StatusBadGateway, w.Code)
	assert.JSONEq(t, `{"error":"history unavailable"}`, w.Body.String())
	assert.False(t, strings.Contains(w.Body.String(), "10.0.0.7"))
}
