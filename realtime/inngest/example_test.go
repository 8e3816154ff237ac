package inngest_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/coursebuilder/realtime-go/flags"
	"github.com/coursebuilder/realtime-go/realtime"
	"github.com/coursebuilder/realtime-go/realtime/inngest"
	"github.com/coursebuilder/realtime-go/tokens"
)

func ExampleNew() {
	// A stand-in for Inngest's publish route that prints what it receives.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		fmt.Println(r.Method, r.URL.Path, r.URL.Query().Get("channel"), r.URL.Query().Get("topic"))
		fmt.Println(strings.HasPrefix(r.Header.Get("Authorization"), "Bearer signkey-test-"), string(body))
	}))
	defer srv.Close()

	p, err := inngest.New(&inngest.Options{
		BaseURL:    srv.URL,
		SigningKey: "signkey-test-0123456789abcdef",
		// Shared by every instance of the app, never by a client;
		// defaults to REALTIME_CHANNEL_SECRET.
		ChannelSecret: "the app's own secret, 32 bytes or more",
		Mapping:       inngest.Mapping{Channel: func(room string) string { return "video:" + room }},
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

// A TokenSource keeps the token it fetched until 10s (TokenSourceOptions.Margin)
// before it expires, and fetches a new one when Inngest refuses it.
func ExampleTokenSource() {
	minted := 0
	src := inngest.NewTokenSource(func(context.Context) (inngest.Token, error) {
		minted++
		return inngest.Token{JWT: fmt.Sprint("jwt-", minted), Expires: time.Now().Add(time.Hour)}, nil
	}, nil)
	defer src.Close()

	ctx := context.Background()
	tok, err := src.Token(ctx)
	fmt.Println(tok.JWT, err)
	tok, err = src.Token(ctx) // still fresh: no fetch
	fmt.Println(tok.JWT, err)
	src.Invalidate(tok) // e.g. the websocket connect was answered 401
	tok, err = src.Token(ctx)
	fmt.Println(tok.JWT, err)
	// Output:
	// jwt-1 <nil>
	// jwt-1 <nil>
	// jwt-2 <nil>
}

// A Go program that follows a video's pipeline through Inngest Realtime
// (compiled, not run: it needs an Inngest endpoint).
func ExampleSubscribe() {
	ctx := context.Background()
	p, err := inngest.New(nil) // INNGEST_* variables
	if err != nil {
		fmt.Println(err)
		return
	}
	defer p.Close()

	src := inngest.NewTokenSource(inngest.Mint(p, "vid_1", tokens.ScopeNames(flags.ScopeVideoReady)...), nil)
	defer src.Close()

	connectCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	sub, err := inngest.Subscribe(connectCtx, p.BaseURL(), src, func(m inngest.Message) {
		msg, err := realtime.DecodeEnvelope(m.Data)
		if err != nil {
			return
		}
		fmt.Println(m.Topic, msg.RequestID)
	}, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer sub.Close()
	// … until the program is done with it.
}
