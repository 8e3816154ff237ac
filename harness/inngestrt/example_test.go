package inngestrt_test

import (
	"context"
	"fmt"
	"log"

	"github.com/coursebuilder/realtime-go/harness/inngestrt"
)

// A program (or test) runs the real realtime API, subscribes to a topic and
// publishes to it.
func Example() {
	ctx := context.Background()
	key := inngestrt.NewSigningKey()
	srv, err := inngestrt.Start(ctx, inngestrt.Options{SigningKeys: []string{key}})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()

	token, err := srv.Token(ctx, "video-1", "video.asset.ready")
	if err != nil {
		log.Fatal(err)
	}
	sub, err := srv.Subscribe(ctx, token)
	if err != nil {
		log.Fatal(err)
	}
	defer sub.Close()

	// Any client would POST to srv.URL()+"/v1/realtime/publish?channel=video-1&topic=video.asset.ready"
	// with "Authorization: Bearer "+HashSigningKey(key).
	if err := srv.Publish(ctx, "video-1", "video.asset.ready", []byte(`{"id":"video-1"}`)); err != nil {
		log.Fatal(err)
	}
	msg, err := sub.NextData(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(msg.Kind, msg.Channel, msg.Topic, string(msg.Data))
	// Output: data video-1 video.asset.ready {"id":"video-1"}
}
