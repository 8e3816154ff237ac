// Command openaistream streams a chat completion from an OpenAI-compatible
// API to the browsers watching the chat, with package chunkstream: the
// Go counterpart of course-builder's TypeScript OpenAI provider.
//
//	go run ./openaistream -prompt "How do I publish a video with Mux?"
//
// The completion comes from OPENAI_BASE_URL (default
// https://api.openai.com/v1) with OPENAI_API_KEY and OPENAI_MODEL (default
// gpt-4o-mini). Without OPENAI_API_KEY the program replays a recorded
// completion (testdata/chat-completion.sse) from a local server, so it runs
// offline.
//
// -to picks where the text goes: "stdout" (default) prints every message,
// "inngest" publishes to Inngest Realtime as configured by the INNGEST_*
// variables (-text-stream for its streaming publish), and "partykit" to the
// PartyKit host in NEXT_PUBLIC_PARTY_KIT_URL.
package main

import (
	"context"
	_ "embed"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/signal"
	"strings"

	openai "github.com/sashabaranov/go-openai"

	"github.com/coursebuilder/realtime-go/chunkstream"
	"github.com/coursebuilder/realtime-go/legacyparty"
	"github.com/coursebuilder/realtime-go/realtime"
	"github.com/coursebuilder/realtime-go/realtime/inngest"
)

//go:embed testdata/chat-completion.sse
var recorded []byte

// config is everything run needs.
type config struct {
	// BaseURL and APIKey reach the OpenAI-compatible API.
	BaseURL, APIKey string
	Model           string
	Prompt          string
	// ChatID is the request id, and the room, of the stream.
	ChatID   string
	Provider realtime.Provider
	// Stream configures the chunkstream.Stream; nil for the defaults.
	Stream *chunkstream.Options
}

// deltas adapts a go-openai chat completion stream to the receive function
// chunkstream.Pump reads, and keeps the text it saw.
type deltas struct {
	stream *openai.ChatCompletionStream
	text   strings.Builder
}

// Recv returns the content delta of the next chunk: empty for chunks
// without one (the role, the finish reason, the usage), io.EOF after
// "data: [DONE]".
func (d *deltas) Recv() (string, error) {
	resp, err := d.stream.Recv()
	if err != nil {
		return "", err
	}
	if len(resp.Choices) == 0 {
		return "", nil
	}
	delta := resp.Choices[0].Delta.Content
	d.text.WriteString(delta)
	return delta, nil
}

// run streams one completion of cfg.Prompt to cfg.Provider and returns the
// text the model produced.
func run(ctx context.Context, cfg config) (string, error) {
	oc := openai.DefaultConfig(cfg.APIKey)
	if cfg.BaseURL != "" {
		oc.BaseURL = cfg.BaseURL
	}
	client := openai.NewClientWithConfig(oc)
	stream, err := client.CreateChatCompletionStream(ctx, openai.ChatCompletionRequest{
		Model:         cfg.Model,
		Messages:      []openai.ChatCompletionMessage{{Role: openai.ChatMessageRoleUser, Content: cfg.Prompt}},
		Stream:        true,
		StreamOptions: &openai.StreamOptions{IncludeUsage: true},
	})
	if err != nil {
		return "", fmt.Errorf("create chat completion stream: %w", err)
	}
	defer stream.Close()

	s, err := chunkstream.New(ctx, cfg.Provider, cfg.ChatID, cfg.Stream)
	if err != nil {
		return "", err
	}
	src := &deltas{stream: stream}
	err = chunkstream.Pump(ctx, src.Recv, s)
	return src.text.String(), err
}

// replayServer serves the recorded completion as an OpenAI-compatible
// POST /v1/chat/completions answer.
func replayServer() *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v1/chat/completions" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		flusher, _ := w.(http.Flusher)
		for event := range strings.SplitAfterSeq(string(recorded), "\n\n") {
			_, _ = io.WriteString(w, event)
			if flusher != nil {
				flusher.Flush()
			}
		}
	}))
}

// stdout prints every message it is given.
func stdout(_ context.Context, msg realtime.Message) error {
	env, err := msg.Encode()
	if err != nil {
		return err
	}
	fmt.Printf("%s → %s\n", msg.Room, env)
	return nil
}

func main() {
	var (
		prompt     = flag.String("prompt", "How do I publish a video with Mux?", "the user's message")
		chatID     = flag.String("chat", "chat_demo", "the chat id: the request id and the room")
		to         = flag.String("to", "stdout", `where the text goes: "stdout", "inngest" or "partykit"`)
		textStream = flag.Bool("text-stream", false, "with -to inngest, use Inngest's streaming publish")
	)
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := mainErr(ctx, *prompt, *chatID, *to, *textStream); err != nil {
		fmt.Fprintln(os.Stderr, "openaistream:", err)
		os.Exit(1)
	}
}

func mainErr(ctx context.Context, prompt, chatID, to string, textStream bool) error {
	cfg := config{
		BaseURL: os.Getenv("OPENAI_BASE_URL"),
		APIKey:  os.Getenv("OPENAI_API_KEY"),
		Model:   os.Getenv("OPENAI_MODEL"),
		Prompt:  prompt,
		ChatID:  chatID,
		Stream:  &chunkstream.Options{TextStream: textStream},
	}
	if cfg.Model == "" {
		cfg.Model = openai.GPT4oMini
	}
	if cfg.APIKey == "" {
		srv := replayServer()
		defer srv.Close()
		cfg.BaseURL, cfg.APIKey = srv.URL+"/v1", "replay"
		fmt.Fprintln(os.Stderr, "openaistream: OPENAI_API_KEY is not set; replaying testdata/chat-completion.sse")
	}
	switch to {
	case "stdout":
		cfg.Provider = realtime.ProviderFunc(stdout)
	case "inngest":
		p, err := inngest.New(nil)
		if err != nil {
			return err
		}
		defer p.Close()
		cfg.Provider = p
	case "partykit":
		p, err := legacyparty.New(nil)
		if err != nil {
			return err
		}
		defer p.Close()
		cfg.Provider = p
	default:
		return errors.New(`-to must be "stdout", "inngest" or "partykit"`)
	}
	text, err := run(ctx, cfg)
	fmt.Fprintf(os.Stderr, "openaistream: streamed %d bytes of text\n", len(text))
	return err
}
