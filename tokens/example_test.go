package tokens_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/coursebuilder/realtime-go/broadcast"
	"github.com/coursebuilder/realtime-go/flags"
	"github.com/coursebuilder/realtime-go/realtime"
	"github.com/coursebuilder/realtime-go/realtime/inngest"
	"github.com/coursebuilder/realtime-go/tokens"
)

// fixedMinter stands in for the *inngest.Provider of an app: it mints a
// fixed token.
type fixedMinter struct{ realtime.Provider }

func (fixedMinter) SubscriptionToken(_ context.Context, room string, names []string) (inngest.Token, error) {
	return inngest.Token{JWT: "eyJ.example.jwt", Channel: room, Topics: names,
		Expires: time.Date(2026, 1, 1, 0, 1, 0, 0, time.UTC)}, nil
}

func ExampleHandler() {
	// In an app the Broadcast is the one that publishes, over the PartyKit
	// and Inngest providers; here stand-ins drop messages and mint a fixed
	// token. Its Resolver says which scopes browsers read from Inngest.
	b, err := broadcast.New(realtime.NewNoop(nil), fixedMinter{realtime.NewNoop(nil)}, &broadcast.Options{
		Resolver: flags.Fixed(flags.Primary),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer b.Close(context.Background())
	h := tokens.NewHandler(b, &tokens.HandlerOptions{
		Authenticate: func(r *http.Request) (tokens.Subject, error) {
			if c, err := r.Cookie("session"); err == nil && c.Value == "alice-session" {
				return tokens.Subject{ID: "alice"}, nil
			}
			return tokens.Subject{}, errors.New("no session")
		},
		Authorize: func(_ context.Context, s tokens.Subject, room string, _ flags.Scope) error {
			if s.ID == "alice" && room == "vid_1" {
				return nil
			}
			return errors.New("not the owner")
		},
		// Where browsers reach Inngest; with a *inngest.Provider in the
		// Broadcast it defaults to its BaseURL.
		BrowserBaseURL: "http://localhost:8288",
	})
	if err := h.Err(); err != nil {
		fmt.Println(err)
		return
	}
	srv := httptest.NewServer(h)
	defer srv.Close()

	get := func(query string, withSession bool) {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/api/realtime/token?"+query, nil)
		if withSession {
			req.AddCookie(&http.Cookie{Name: "session", Value: "alice-session"})
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			fmt.Println(err)
			return
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		fmt.Print(resp.StatusCode, " ", resp.Header.Get("Cache-Control"), " ", string(body))
	}
	get("room=vid_1&scope=video-ready", true)
	get("room=vid_1&scope=video-ready", false)
	get("room=vid_2&scope=video-ready", true)
	get("room=vid_1&scope=everything", true)
	// Output:
	// 200 no-store {"channel":"vid_1","topics":["video.asset.ready"],"key":"eyJ.example.jwt","apiBaseUrl":"http://localhost:8288","expires":"2026-01-01T00:01:00Z"}
	// 401 no-store {"error":"not authenticated"}
	// 403 no-store {"error":"not authorized"}
	// 400 no-store {"error":"invalid query: scope is not one of video-upload, video-ready, video-errored, transcript, ai-stream, default"}
}
