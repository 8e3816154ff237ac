// Command demo publishes the four video-pipeline notifications through the
// Inngest Realtime provider and prints what a browser-style subscriber
// received, and how long each took.
//
// It needs nothing but Go: the Inngest realtime endpoint is the real server
// code (github.com/inngest/inngest's realtime API over miniredis), started
// in-process on a loopback port by the harness module.
//
//	go run ./demo            # from the examples directory
package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"time"

	"github.com/coursebuilder/realtime-go/harness/inngestrt"
	"github.com/coursebuilder/realtime-go/realtime"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

// events are what the TypeScript video pipeline broadcasts today, in order.
var events = []realtime.Message{
	{Name: "videoResource.created", Body: map[string]any{"id": "vid_demo", "status": "processing"}},
	{Name: "video.asset.ready", Body: map[string]any{"id": "vid_demo", "muxPlaybackId": "pb_123", "duration": 93.4}},
	{Name: "transcript.ready", Body: map[string]any{"id": "vid_demo", "transcript": "Welcome to the course."}},
	{Name: "video.asset.errored", Body: map[string]any{"id": "vid_demo", "error": "unsupported codec"}},
}

func run() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	key := inngestrt.NewSigningKey()
	srv, err := inngestrt.Start(ctx, inngestrt.Options{SigningKeys: []string{key}})
	if err != nil {
		return err
	}
	defer srv.Close()
	fmt.Printf("Inngest realtime endpoint (real server code, in-process) at %s\n", srv.URL())

	provider, err := realtime.NewInngest(&realtime.InngestOptions{BaseURL: srv.URL(), SigningKey: key})
	if err != nil {
		return err
	}
	defer provider.Close()

	const room = "vid_demo"
	topics := make([]string, len(events))
	for i, e := range events {
		topics[i] = e.Name
	}
	// A browser gets a token from the app's /api/realtime/token and connects.
	token, err := srv.Token(ctx, room, topics...)
	if err != nil {
		return err
	}
	sub, err := srv.Subscribe(ctx, token)
	if err != nil {
		return err
	}
	defer sub.Close()

	for i, e := range events {
		e.Room, e.RequestID = room, fmt.Sprintf("req_%d", i+1)
		start := time.Now()
		if err := provider.Publish(ctx, e); err != nil {
			return fmt.Errorf("publish %s: %w", e.Name, err)
		}
		published := time.Since(start)
		got, err := sub.NextData(ctx)
		if err != nil {
			return fmt.Errorf("receive %s: %w", e.Name, err)
		}
		delivered := time.Since(start)
		want, _ := e.Encode()
		match := "identical to the envelope"
		if !bytes.Equal(got.Data, want) {
			match = "DIFFERS from the envelope"
		}
		fmt.Printf("%-22s channel=%s topic=%s publish=%v delivered=%v (%s)\n  %s\n",
			e.Name, got.Channel, got.Topic, published.Round(time.Microsecond), delivered.Round(time.Microsecond), match, got.Data)
		if !bytes.Equal(got.Data, want) {
			return fmt.Errorf("payload for %s differs", e.Name)
		}
	}
	fmt.Println("all four video-pipeline notifications delivered through Inngest Realtime")
	return nil
}
