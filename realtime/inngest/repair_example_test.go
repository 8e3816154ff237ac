package inngest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/coursebuilder/realtime-go/flags"
	"github.com/coursebuilder/realtime-go/realtime"
	"github.com/coursebuilder/realtime-go/realtime/inngest"
	"github.com/coursebuilder/realtime-go/replay"
	"github.com/coursebuilder/realtime-go/tokens"
)

// A Go program that must not miss a video's "ready" catches up from the
// app's catch-up endpoint (package tokens, after=<seq>) whenever it
// reconnects or sees a gap (compiled, not run: it needs an Inngest
// endpoint and the app).
func ExampleSubscribe_catchUp() {
	const endpoint = "https://app.example/api/realtime/token?room=vid_1&scope=video-ready"
	client := &http.Client{Timeout: 10 * time.Second}
	get := func(ctx context.Context, after uint64) (tokens.CatchUp, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet,
			endpoint+"&after="+url.QueryEscape(strconv.FormatUint(after, 10)), nil)
		if err != nil {
			return tokens.CatchUp{}, err
		}
		resp, err := client.Do(req)
		if err != nil {
			return tokens.CatchUp{}, err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return tokens.CatchUp{}, fmt.Errorf("catch-up endpoint: %s", resp.Status)
		}
		var page tokens.CatchUp
		err = json.NewDecoder(resp.Body).Decode(&page)
		return page, err
	}
	catchUp := func(ctx context.Context, after uint64) (replay.Page, error) {
		for {
			page, err := get(ctx, after)
			if err != nil {
				return replay.Page{}, err
			}
			// The endpoint leaves out the names the request does not
			// cover; a page it read in full without one of ours is not
			// the end: ask again after it.
			if len(page.Messages) == 0 && page.More && page.Next > after {
				after = page.Next
				continue
			}
			out := replay.Page{Head: page.Head, Epoch: page.Epoch, Truncated: page.Truncated}
			for _, raw := range page.Messages {
				m, err := realtime.DecodeEnvelope(raw)
				if err != nil {
					return replay.Page{}, err
				}
				out.Entries = append(out.Entries, replay.Entry{ID: m.ID, Seq: m.Seq, Epoch: m.Epoch, Envelope: raw})
			}
			return out, nil
		}
	}

	p, err := inngest.New(nil) // INNGEST_* variables
	if err != nil {
		fmt.Println(err)
		return
	}
	defer p.Close()
	connectCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sub, err := inngest.Subscribe(connectCtx, p.BaseURL(), p.TokenFunc("vid_1", flags.ScopeVideoReady.Names()...),
		func(m inngest.Message) { fmt.Println(m.Topic, m.Seq) },
		&inngest.SubscriberOptions{
			CatchUp: catchUp,
			Topic:   p.Topic,
			OnReset: func() { fmt.Println("messages were lost: reload the video's state") },
		})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer sub.Close()
	// During shadow mode, each message the PartyKit websocket of the same
	// room receives goes through the same order: each is handled once,
	// whichever transport brought it first.
	onPartyKitMessage := func(b []byte) {
		if err := sub.Offer(b); err != nil {
			fmt.Println(err) // not an envelope
		}
	}
	_ = onPartyKitMessage
}
