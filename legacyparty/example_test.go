package legacyparty_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"

	"github.com/coursebuilder/realtime-go/legacyparty"
	"github.com/coursebuilder/realtime-go/realtime"
)

// A stand-in for an app's party server prints what it was sent.
func ExampleProvider_Publish_sent() {
	party := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		fmt.Printf("%s %s %s\n", r.Method, r.URL.EscapedPath(), body)
	}))
	defer party.Close()

	p, err := legacyparty.New(&legacyparty.Options{BaseURL: party.URL})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer p.Close()

	err = p.Publish(context.Background(), realtime.Message{
		Room:      "vid_123",
		Name:      "video.asset.ready",
		RequestID: "vid_123",
		Body:      map[string]string{"status": "ready"},
		ID:        "video-ready-vid_123",
	})
	fmt.Println("error:", err)
	// Output:
	// POST /party/vid_123 {"body":{"status":"ready"},"requestId":"vid_123","name":"video.asset.ready","id":"video-ready-vid_123"}
	// error: <nil>
}

// A party server that refuses the request: the error says so, and is not
// retried.
func ExampleProvider_Publish() {
	party := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "Invalid payload, please send JSON body", http.StatusBadRequest)
	}))
	defer party.Close()

	p, err := legacyparty.New(&legacyparty.Options{BaseURL: party.URL})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer p.Close()

	err = p.Publish(context.Background(), realtime.Message{Room: "vid_123", Name: "video.asset.ready"})
	var pe *realtime.PublishError
	fmt.Println(errors.Is(err, realtime.ErrRejected), errors.As(err, &pe) && pe.StatusCode == 400)
	fmt.Println(err)
	// Output:
	// true true
	// realtime: publish to partykit failed: status 400 Bad Request: "Invalid payload, please send JSON body": realtime: rejected
}

// The base URL, like NEXT_PUBLIC_PARTY_KIT_URL, may be a host without a
// scheme.
func ExampleNew() {
	for _, v := range []string{"my-party.user.partykit.dev", "localhost:1999", "https://my-party.user.partykit.dev/", "ftp://my-party.user.partykit.dev"} {
		p, err := legacyparty.New(&legacyparty.Options{BaseURL: v})
		if err != nil {
			fmt.Println(errors.Is(err, realtime.ErrNotConfigured), err)
			continue
		}
		fmt.Println(p.BaseURL())
		_ = p.Close()
	}
	// Output:
	// https://my-party.user.partykit.dev
	// http://localhost:1999
	// https://my-party.user.partykit.dev
	// true realtime: not configured: partykit base URL: scheme "ftp" is not http or https
}

// Rooms are one path segment spelled as partysocket spells it; a room
// partysocket would not join under its own id is refused.
func ExampleProvider_PublishURL() {
	p, err := legacyparty.New(&legacyparty.Options{BaseURL: "localhost:1999"})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer p.Close()
	for _, room := range []string{"vid_123", "a b é", "a!b", "../admin", ".."} {
		u, err := p.PublishURL(room)
		fmt.Println(u, errors.Is(err, legacyparty.ErrRoomNotRoutable))
	}
	// Output:
	// http://localhost:1999/party/vid_123 false
	// http://localhost:1999/party/a%20b%20%C3%A9 false
	// http://localhost:1999/party/a!b false
	//  true
	//  true
}
