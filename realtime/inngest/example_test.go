package inngest_test

import (
	"context"
	"encoding/json"
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
	err = p.Publish(context.Background(), realtime.Message{Room: "vid_1", Name: "video.asset.ready", Body: "ready", ID: "vid_1-ready"})
	fmt.Println(err)
	// Output:
	// POST /v1/realtime/publish rtk1_pbRXQpjViB6I2XMdZlgH3kctXLNodnNqKupL_-uj9O8 video.asset.ready
	// true {"body":"ready","requestId":"","name":"video.asset.ready","id":"vid_1-ready"}
	// <nil>
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

	connectCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	token := p.TokenFunc("vid_1", flags.ScopeVideoReady.Names()...)
	sub, err := inngest.Subscribe(connectCtx, p.BaseURL(), token, func(m inngest.Message) {
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

// A Go program without the signing key gets its tokens where browsers do,
// from the app's token endpoint (package tokens), compiled, not run.
func ExampleSubscribe_tokenEndpoint() {
	const endpoint = "https://app.example/api/realtime/token?room=vid_1&scope=video-ready"
	client := &http.Client{Timeout: 10 * time.Second}
	token := func(ctx context.Context) (inngest.Token, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, endpoint, nil)
		if err != nil {
			return inngest.Token{}, err
		}
		// … the app's credentials, as a browser sends them.
		resp, err := client.Do(req)
		if err != nil {
			return inngest.Token{}, err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return inngest.Token{}, fmt.Errorf("token endpoint: %s", resp.Status)
		}
		var ans tokens.Response
		if err := json.NewDecoder(resp.Body).Decode(&ans); err != nil {
			return inngest.Token{}, err
		}
		return inngest.Token{JWT: ans.Key, Channel: ans.Channel, Topics: ans.Topics, Expires: ans.Expires}, nil
	}
	// The answers' apiBaseUrl: Inngest Cloud unless the app says otherwise.
	sub, err := inngest.Subscribe(context.Background(), "https://api.inngest.com", token,
		func(m inngest.Message) { fmt.Println(m.Topic) }, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer sub.Close()
}
