package inngestrt

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/coursebuilder/realtime-go/harness/internal/wsconn"
)

// Message kinds sent by the realtime server.
const (
	KindData            = "data"
	KindDataStreamStart = "datastream-start"
	KindChunk           = "chunk"
	KindDataStreamEnd   = "datastream-end"
	KindPing            = "ping"
	KindClosing         = "closing"
)

// maxFrame bounds one websocket frame read by Subscription; the server
// accepts published payloads up to 512 KiB, which JSON escaping may grow.
const maxFrame = 8 << 20

// Message is one decoded frame from the realtime websocket.
type Message struct {
	// Kind is "data", "datastream-start", "chunk", "datastream-end",
	// "ping", "closing", ...
	Kind string `json:"kind"`
	// Channel and Topic name the topic the message was published to (empty
	// for chunks).
	Channel string `json:"channel,omitempty"`
	Topic   string `json:"topic,omitempty"`
	// Data is the payload exactly as the server sent it: the published JSON,
	// a JSON string for non-JSON bodies and chunks, or the stream ID.
	Data json.RawMessage `json:"data"`
	// StreamID is set on chunks.
	StreamID  string          `json:"stream_id,omitempty"`
	Metadata  json.RawMessage `json:"metadata,omitempty"`
	CreatedAt time.Time       `json:"created_at"`
	EnvID     string          `json:"env_id,omitempty"`
	RunID     string          `json:"run_id,omitempty"`
	// Raw is the whole frame.
	Raw []byte `json:"-"`
}

// Subscription is a websocket connection to /v1/realtime/connect. A goroutine
// reads it continuously (so the server's pings are answered) and queues the
// frames until they are asked for.
type Subscription struct {
	c *wsconn.Conn
}

// Token mints a subscription JWT for the given channel and topics through
// POST /v1/realtime/token, authenticating with the first signing key, hashed.
func (s *Server) Token(ctx context.Context, channel string, topics ...string) (string, error) {
	type topic struct {
		Kind    string `json:"kind"`
		Channel string `json:"channel"`
		Name    string `json:"name"`
	}
	req := make([]topic, 0, len(topics))
	for _, t := range topics {
		req = append(req, topic{Kind: "run", Channel: channel, Name: t})
	}
	body, err := json.Marshal(req)
	if err != nil {
		return "", fmt.Errorf("inngestrt: token: %w", err)
	}
	status, answer, err := s.post(ctx, "/v1/realtime/token", "application/json", bytes.NewReader(body))
	if err != nil {
		return "", fmt.Errorf("inngestrt: token: %w", err)
	}
	if status != http.StatusCreated {
		return "", fmt.Errorf("inngestrt: token: status %d: %s", status, bytes.TrimSpace(answer))
	}
	var out struct {
		JWT string `json:"jwt"`
	}
	if err := json.Unmarshal(answer, &out); err != nil || out.JWT == "" {
		return "", fmt.Errorf("inngestrt: token: unexpected answer %q", answer)
	}
	return out.JWT, nil
}

// Publish posts data to POST /v1/realtime/publish?channel=&topic= with the
// first signing key, hashed, and returns an error unless the answer is 200.
func (s *Server) Publish(ctx context.Context, channel, topic string, data []byte) error {
	q := url.Values{"channel": {channel}, "topic": {topic}}
	status, answer, err := s.post(ctx, "/v1/realtime/publish?"+q.Encode(), "application/json", bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("inngestrt: publish: %w", err)
	}
	if status != http.StatusOK {
		return fmt.Errorf("inngestrt: publish: status %d: %s", status, bytes.TrimSpace(answer))
	}
	return nil
}

func (s *Server) post(ctx context.Context, path, contentType string, body io.Reader) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url+path, body)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", contentType)
	s.keyMu.RLock()
	first := ""
	if len(s.hashed) > 0 {
		first = s.hashed[0]
	}
	s.keyMu.RUnlock()
	if first != "" {
		req.Header.Set("Authorization", "Bearer "+first)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, answer, err
}

// Subscribe dials GET /v1/realtime/connect with "Authorization: Bearer
// <token>" and returns once the server has subscribed the connection to the
// token's topics, so that anything published afterwards is delivered. ctx
// bounds only that set-up; the subscription lives until Close or until the
// server ends it.
func (s *Server) Subscribe(ctx context.Context, token string) (*Subscription, error) {
	id := rand.Text()
	c, resp, err := wsconn.Dial(ctx, "ws"+s.url[len("http"):]+"/v1/realtime/connect",
		http.Header{"Authorization": {"Bearer " + token}, subscriberHeader: {id}}, maxFrame)
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("inngestrt: subscribe: status %d: %w", resp.StatusCode, err)
		}
		return nil, fmt.Errorf("inngestrt: subscribe: %w", err)
	}
	sub := &Subscription{c: c}
	if err := s.subs.wait(ctx, sub.Done(), func() bool { return s.subs.ids[id] }); err != nil {
		_ = sub.Close()
		return nil, fmt.Errorf("inngestrt: subscribe: server did not subscribe the connection: %w", err)
	}
	return sub, nil
}

// NextFrame returns the next raw frame the server sent, whatever its kind,
// waiting until ctx is done. After the connection ends and every queued
// frame was read it returns an error.
func (s *Subscription) NextFrame(ctx context.Context) ([]byte, error) {
	b, err := s.c.Next(ctx)
	if err != nil {
		return nil, fmt.Errorf("inngestrt: next frame: %w", err)
	}
	return b, nil
}

// NextMessage returns the next frame decoded, whatever its kind.
func (s *Subscription) NextMessage(ctx context.Context) (Message, error) {
	b, err := s.NextFrame(ctx)
	if err != nil {
		return Message{}, err
	}
	var m Message
	if err := json.Unmarshal(b, &m); err != nil {
		return Message{}, fmt.Errorf("inngestrt: frame is not a message: %w: %q", err, b)
	}
	m.Raw = b
	return m, nil
}

// NextKind returns the next message whose kind is one of kinds, skipping
// the others (pings and so on).
func (s *Subscription) NextKind(ctx context.Context, kinds ...string) (Message, error) {
	for {
		m, err := s.NextMessage(ctx)
		if err != nil {
			return Message{}, err
		}
		for _, k := range kinds {
			if m.Kind == k {
				return m, nil
			}
		}
	}
}

// NextData returns the next "data" message, skipping every other kind.
func (s *Subscription) NextData(ctx context.Context) (Message, error) {
	return s.NextKind(ctx, KindData)
}

// ExpectNoData waits for d and returns an error if a "data" message arrives
// meanwhile; other kinds are skipped.
func (s *Subscription) ExpectNoData(d time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	m, err := s.NextData(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		return nil
	}
	if err != nil {
		return err
	}
	return fmt.Errorf("inngestrt: unexpected data message: %s", m.Raw)
}

// Send writes a raw text frame to the server (for "sub"/"unsub" requests).
func (s *Subscription) Send(ctx context.Context, frame []byte) error {
	if err := s.c.Write(ctx, frame); err != nil {
		return fmt.Errorf("inngestrt: send: %w", err)
	}
	return nil
}

// Done is closed once the connection has ended.
func (s *Subscription) Done() <-chan struct{} { return s.c.Done() }

// Close closes the websocket (normal closure) and waits for its reader.
func (s *Subscription) Close() error {
	if err := s.c.Close(); err != nil {
		return fmt.Errorf("inngestrt: close subscription: %w", err)
	}
	return nil
}
