package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/coursebuilder/realtime-go/chunkstream"
	"github.com/coursebuilder/realtime-go/realtime/realtimetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// want is the text of testdata/chat-completion.sse.
const want = "To publish a video with Mux, create an asset from the upload URL, then wait for the `video.asset.ready` webhook.\n\n" +
	"1. Upload the file (the \"direct upload\" flow)\n2. Let Mux transcode it 🎬\n3. Store the playback ID — e.g. `resource\\video`\n\n" +
	"Et voilà: the transcript (字幕) follows with `transcript.ready`."

// fixtureText reads the content deltas of the fixture directly, as a
// cross-check of want.
func fixtureText(t *testing.T) string {
	t.Helper()
	var sb strings.Builder
	sc := bufio.NewScanner(bytes.NewReader(recorded))
	for sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok || line == "[DONE]" {
			continue
		}
		var chunk struct {
			Choices []struct {
				Delta struct{ Content string } `json:"delta"`
			} `json:"choices"`
		}
		if err := json.Unmarshal([]byte(line), &chunk); err != nil {
			t.Fatalf("fixture line %q: %v", line, err)
		}
		for _, c := range chunk.Choices {
			sb.WriteString(c.Delta.Content)
		}
	}
	return sb.String()
}

// replay serves the fixture like the OpenAI API and checks the request.
func replay(t *testing.T) *httptest.Server {
	t.Helper()
	srv := replayServer()
	check := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Model    string `json:"model"`
			Stream   bool   `json:"stream"`
			Messages []struct {
				Role, Content string
			} `json:"messages"`
		}
		body, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(body, &req); err != nil || !req.Stream || req.Model != "gpt-4o-mini" || len(req.Messages) != 1 {
			t.Errorf("unexpected request %s %s: %s", r.Method, r.URL.Path, body)
		}
		if got := r.Header.Get("Authorization"); got != "Bearer test-key" {
			t.Errorf("Authorization = %q", got)
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		srv.Config.Handler.ServeHTTP(w, r)
	}))
	t.Cleanup(func() { check.Close(); srv.Close() })
	return check
}

func TestStreamsTheRecordedCompletion(t *testing.T) {
	if got := fixtureText(t); got != want {
		t.Fatalf("fixture text\n%q\nwant\n%q", got, want)
	}
	srv := replay(t)
	rec := realtimetest.NewRecorder()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	text, err := run(ctx, config{
		BaseURL:  srv.URL + "/v1",
		APIKey:   "test-key",
		Model:    "gpt-4o-mini",
		Prompt:   "How do I publish a video with Mux?",
		ChatID:   "chat_7",
		Provider: rec,
		// A short interval, so that the text is likely to span several
		// messages; the result does not depend on it.
		Stream: &chunkstream.Options{Interval: time.Millisecond},
	})
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if text != want {
		t.Fatalf("the model's text\n%q\nwant\n%q", text, want)
	}

	// What a browser watching room chat_7 reassembles.
	// Its messages are numbered in their ids, <stream>.1, <stream>.2 …
	var got strings.Builder
	recs := rec.Records()
	var stream string
	for i, r := range recs {
		m := r.Message
		s, n, _ := strings.Cut(m.ID, ".")
		if i == 0 {
			stream = s
		}
		if s == "" || s != stream || n != strconv.Itoa(i+1) || m.Seq != 0 ||
			m.Room != "chat_7" || m.RequestID != "chat_7" || m.Name != "ai.message" {
			t.Fatalf("message %d: %+v", i, m)
		}
		if i == len(recs)-1 {
			if m.Body != chunkstream.EndMarker {
				t.Fatalf("last message %q, want the end marker", m.Body)
			}
			break
		}
		got.WriteString(m.Body.(string))
	}
	if got.String() != want {
		t.Fatalf("reassembled\n%q\nwant\n%q", got.String(), want)
	}
	t.Logf("%d messages", len(recs))
}

func TestMainErrReplaysOffline(t *testing.T) {
	t.Setenv("OPENAI_API_KEY", "")
	t.Setenv("OPENAI_BASE_URL", "")
	t.Setenv("OPENAI_MODEL", "")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := mainErr(ctx, "hi", "chat_demo", "stdout", false); err != nil {
		t.Fatal(err)
	}
	if err := mainErr(ctx, "hi", "chat_demo", "carrier-pigeon", false); err == nil {
		t.Fatal("want an error for an unknown -to")
	}
}
