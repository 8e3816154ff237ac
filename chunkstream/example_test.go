package chunkstream_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/coursebuilder/realtime-go/chunkstream"
	"github.com/coursebuilder/realtime-go/realtime/realtimetest"
)

func ExampleNew() {
	ctx := context.Background()
	// Any realtime.Provider: legacyparty, inngest.Provider, a broadcast.
	provider := realtimetest.NewRecorder()

	s, err := chunkstream.New(ctx, provider, "chat_42", nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	// Every 250 ms, the text received since the last flush is published
	// as one message.
	_ = s.PublishChunk("Hello")
	_ = s.PublishChunk(", wor")
	_ = s.PublishChunk("ld!")
	if err := s.Close(ctx); err != nil { // what is left, then the end marker
		fmt.Println(err)
		return
	}
	// However the 250 ms windows fell, the bodies in seq order rebuild
	// the text, and the end marker comes last.
	var text strings.Builder
	msgs := provider.Messages()
	for i, m := range msgs {
		if i == len(msgs)-1 {
			fmt.Printf("%q %s\n", text.String(), m.Body)
			break
		}
		text.WriteString(m.Body.(string))
	}
	// Output:
	// "Hello, world!" \ok
}

func ExamplePump() {
	ctx := context.Background()
	provider := realtimetest.NewRecorder()
	s, err := chunkstream.New(ctx, provider, "chat_42", nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	// The deltas: here a fixed list; see Pump's doc for an OpenAI stream.
	deltas := []string{"The ", "answer ", "is ", "42."}
	recv := func() (string, error) {
		if len(deltas) == 0 {
			return "", io.EOF
		}
		d := deltas[0]
		deltas = deltas[1:]
		return d, nil
	}
	if err := chunkstream.Pump(ctx, recv, s); err != nil {
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

// Example_decodeTextStream decodes what a Stream in text-stream mode
// published, as the package documentation says.
func Example_decodeTextStream() {
	// The data of the chunk messages of a text-stream mode Stream, in order.
	chunks := []string{`Caf\u00e9 \ud83d`, `\ude00 \"ok\"`}
	var text string
	err := json.Unmarshal([]byte(`"`+strings.Join(chunks, "")+`"`), &text)
	fmt.Println(text, err)
	// Output: Café 😀 "ok" <nil>
}
