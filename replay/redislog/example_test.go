package redislog_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/coursebuilder/realtime-go/realtime"
	"github.com/coursebuilder/realtime-go/replay"
	"github.com/coursebuilder/realtime-go/replay/redislog"
)

// A publisher appends before it fans out; a catch-up request reads a page.
func Example() {
	client := redis.NewClient(&redis.Options{Addr: "localhost:6379", ContextTimeoutEnabled: true, DialerRetries: 1, MaxRetries: 1})
	defer client.Close()
	log := redislog.New(client, &redislog.Options{Retention: &replay.Retention{MaxMessages: 500}})

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	e, err := log.Append(ctx, "video-1", "evt-123/notify-browser", []byte(`{"name":"video.asset.ready"}`))
	if errors.Is(err, realtime.ErrUnavailable) {
		return // retry later under the same id: an append that did happen is a duplicate then
	}
	if err != nil {
		fmt.Println(err) // invalid arguments: a bug, retrying cannot help
		return
	}
	fmt.Printf("publish %s (seq %d of epoch %d)\n", e.Envelope, e.Seq, e.Epoch)

	page, err := log.After(ctx, "video-1", 0, 100)
	if err != nil {
		fmt.Println(err)
		return
	}
	if page.Truncated {
		fmt.Println("gap older than retention: reload the room's state")
	}
}
