package chunkstream_test

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/coursebuilder/realtime-go/chunkstream"
	"github.com/coursebuilder/realtime-go/chunkstream/chunkstreamtest"
	"github.com/coursebuilder/realtime-go/realtime/realtimetest"
)

func ExampleNew() {
	ctx := context.Background()
	// Any realtime.Provider: legacyparty, realtime.Inngest, a broadcast.
	provider := realtimetest.NewRecorder()
	// A fake clock decides when the 250 ms windows end; in production,
	// leave Clock nil.
	clock := chunkstreamtest.NewClock(time.Time{})

	s, err := chunkstream.New(ctx, provider, "chat_42", &chunkstream.Options{Clock: clock})
	if err != nil {
		fmt.Println(err)
		return
	}
	_ = s.PublishChunk("Hello")
	_ = s.PublishChunk(", wor")
	clock.Tick() // a window ends: "Hello, wor" is published
	if _, err := provider.WaitFor(ctx, 1); err != nil {
		fmt.Println(err)
		return
	}
	_ = s.PublishChunk("ld!")
	if err := s.Close(ctx); err != nil { // "ld!", then the end marker
		fmt.Println(err)
		return
	}
	for _, rec := range provider.Records() {
		fmt.Printf("%s %s\n", rec.Message.Room, rec.Envelope)
	}
	// Output:
	// chat_42 {"body":"Hello, wor","requestId":"chat_42","name":"ai.message","seq":1}
	// chat_42 {"body":"ld!","requestId":"chat_42","name":"ai.message","seq":2}
	// chat_42 {"body":"\\ok","requestId":"chat_42","name":"ai.message","seq":3}
}

func ExamplePump() {
	ctx := context.Background()
	provider := realtimetest.NewRecorder()
	s, err := chunkstream.New(ctx, provider, "chat_42", nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	// A DeltaSource: here a fixed list; see the DeltaSource doc for an
	// OpenAI stream.
	deltas := []string{"The ", "answer ", "is ", "42."}
	src := chunkstream.DeltaFunc(func() (string, error) {
		if len(deltas) == 0 {
			return "", io.EOF
		}
		d := deltas[0]
		deltas = deltas[1:]
		return d, nil
	})
	if err := chunkstream.Pump(ctx, src, s); err != nil {
		fmt.Println(err)
		return
	}
	// However the windows fell, the bodies in seq order rebuild the text.
	var text strings.Builder
	for _, m := range provider.Messages() {
		if body := m.Body.(string); body != chunkstream.EndMarker {
			text.WriteString(body)
		}
	}
	fmt.Println(text.String())
	// Output: The answer is 42.
}

func ExampleDecodeStreamText() {
	// The data of the chunk messages of a text-stream mode Stream, in order.
	chunks := []string{`Caf\u00e9 \ud83d`, `\ude00 \"ok\"`}
	text, err := chunkstream.DecodeStreamText(strings.Join(chunks, ""))
	fmt.Println(text, err)
	// Output: Café 😀 "ok" <nil>
}
