package realtime_test

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/coursebuilder/realtime-go/realtime"
)

func ExampleMessage_Encode() {
	msg := realtime.Message{Room: "vid_1", Name: "video.asset.ready", RequestID: "vid_1", Body: map[string]string{"status": "ready"}, ID: "video-ready-vid_1"}
	b, err := msg.Encode()
	fmt.Println(string(b), err)
	// Output: {"body":{"status":"ready"},"requestId":"vid_1","name":"video.asset.ready","id":"video-ready-vid_1"} <nil>
}

func ExampleTooLargeError() {
	err := realtime.NewNoop(nil).Publish(context.Background(), realtime.Message{
		Room: "vid_1", Name: "transcript.ready", Body: strings.Repeat("word ", 200_000),
	})
	var tl *realtime.TooLargeError
	fmt.Println(errors.As(err, &tl), errors.Is(err, realtime.ErrPayloadTooLarge), tl.Limit)
	// Output: true true 524288
}
