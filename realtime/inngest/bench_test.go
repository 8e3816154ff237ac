package inngest_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/coursebuilder/realtime-go/realtime"
	"github.com/coursebuilder/realtime-go/realtime/inngest"
)

// loopback answers every publish with 200, reading the body like a server.
func loopback(b *testing.B) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
	}))
	b.Cleanup(srv.Close)
	return srv
}

var benchMsg = realtime.Message{Room: "vid_123", Name: "video.asset.ready", RequestID: "req_1",
	Body: map[string]any{"id": "vid_123", "status": "ready", "muxPlaybackId": "pb_1", "duration": 93.4}}

// BenchmarkInngestPublish is one publish through the provider to a loopback
// endpoint: validation, encoding, mapping, the request and its answer.
func BenchmarkInngestPublish(b *testing.B) {
	srv := loopback(b)
	p, err := inngest.New(&inngest.Options{BaseURL: srv.URL, SigningKey: testKey, ChannelSecret: testChannelSecret})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := p.Publish(ctx, benchMsg); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBareHTTPPost is the baseline for BenchmarkInngestPublish: the same
// bytes posted with a keep-alive http.Client and nothing else.
func BenchmarkBareHTTPPost(b *testing.B) {
	srv := loopback(b)
	body, _ := benchMsg.Encode()
	target := srv.URL + "/v1/realtime/publish?channel=vid_123&topic=video.asset.ready"
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	defer client.CloseIdleConnections()
	b.ReportAllocs()
	for b.Loop() {
		resp, err := client.Post(target, "application/json", bytes.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
	}
}
