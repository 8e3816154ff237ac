package realtime_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/coursebuilder/realtime-go/realtime"
)

func ExampleMessage_Encode() {
	msg := realtime.Message{Room: "vid_1", Name: "video.asset.ready", RequestID: "vid_1", Body: map[string]string{"status": "ready"}}
	b, err := msg.Encode()
	fmt.Println(string(b), err)
	// Output: {"body":{"status":"ready"},"requestId":"vid_1","name":"video.asset.ready"} <nil>
}

func ExampleNewInngest() {
	// A stand-in for Inngest's publish route that prints what it receives.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		fmt.Println(r.Method, r.URL.Path, r.URL.Query().Get("channel"), r.URL.Query().Get("topic"))
		fmt.Println(strings.HasPrefix(r.Header.Get("Authorization"), "Bearer signkey-test-"), string(body))
	}))
	defer srv.Close()

	p, err := realtime.NewInngest(&realtime.InngestOptions{
		BaseURL:    srv.URL,
		SigningKey: "signkey-test-0123456789abcdef",
		// Shared by every instance of the app, never by a client;
		// defaults to REALTIME_CHANNEL_SECRET.
		ChannelSecret: "the app's own secret, 32 bytes or more",
		Mapping:       realtime.Mapping{Channel: func(room string) string { return "video:" + room }},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer p.Close()
	err = p.Publish(context.Background(), realtime.Message{Room: "vid_1", Name: "video.asset.ready", Body: "ready"})
	fmt.Println(err)
	// Output:
	// POST /v1/realtime/publish rtk1_pbRXQpjViB6I2XMdZlgH3kctXLNodnNqKupL_-uj9O8 video.asset.ready
	// true {"body":"ready","requestId":"","name":"video.asset.ready"}
	// <nil>
}

func ExampleTooLargeError() {
	err := realtime.NewNoop(nil).Publish(context.Background(), realtime.Message{
		Room: "vid_1", Name: "transcript.ready", Body: strings.Repeat("word ", 200_000),
	})
	var tl *realtime.TooLargeError
	fmt.Println(errors.As(err, &tl), errors.Is(err, realtime.ErrPayloadTooLarge), tl.Limit)
	// Output: true true 524288
}
