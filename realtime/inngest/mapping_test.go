package inngest_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/coursebuilder/realtime-go/internal/field"
	"github.com/coursebuilder/realtime-go/internal/transport"
	"github.com/coursebuilder/realtime-go/realtime"
	"github.com/coursebuilder/realtime-go/realtime/inngest"
)

// testChannelSecret is a channel secret of the minimum length.
const testChannelSecret = "0123456789abcdef0123456789abcdef"

func keyed(secret, channel string) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(channel))
	return "rtk1_" + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

func TestMappingOverrideIsValidated(t *testing.T) {
	m := inngest.Mapping{
		Channel: func(room string) string { return "app:" + room },
		Topic:   func(name string) string { return strings.ReplaceAll(name, ".", "/") },
	}
	ch, err := m.ChannelFor("vid_1")
	require.NoError(t, err)
	assert.Equal(t, "app:vid_1", ch, "a Mapping of the caller's own holds no secret: the readable name")
	topic, err := m.TopicFor("video.asset.ready")
	require.NoError(t, err)
	assert.Equal(t, "video/asset/ready", topic)

	_, err = inngest.Mapping{Channel: func(string) string { return "" }}.ChannelFor("x")
	assert.ErrorIs(t, err, realtime.ErrEmpty)
	var ve *realtime.ValidationError
	require.ErrorAs(t, err, &ve)
	assert.Equal(t, "channel", ve.Field)
}

// TestMappingPanicIsAValidationError: a user's Channel or Topic function
// that panics gives every caller (ChannelFor, TopicFor, Publish,
// PublishURL, SubscriptionToken, Channel) a typed error, and nothing is
// sent.
func TestMappingPanicIsAValidationError(t *testing.T) {
	var requests atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()

	boom := func(string) string { panic("mapping bug with a secret value") }
	check := func(t *testing.T, err error, field string) {
		t.Helper()
		require.Error(t, err)
		assert.ErrorIs(t, err, realtime.ErrInvalidMessage)
		assert.ErrorIs(t, err, inngest.ErrMappingPanicked)
		var ve *realtime.ValidationError
		require.ErrorAs(t, err, &ve)
		assert.Equal(t, field, ve.Field)
		assert.NotContains(t, err.Error(), "secret value", "the panic value is not part of the error")
	}
	for _, c := range []struct {
		field   string
		mapping inngest.Mapping
	}{
		{"channel", inngest.Mapping{Channel: boom}},
		{"topic", inngest.Mapping{Topic: boom}},
	} {
		t.Run(c.field, func(t *testing.T) {
			if c.field == "channel" {
				_, err := c.mapping.ChannelFor("vid_1")
				check(t, err, c.field)
			} else {
				_, err := c.mapping.TopicFor("video.asset.ready")
				check(t, err, c.field)
			}
			p := newInngest(t, srv.URL, inngest.Options{SigningKey: testKey, ChannelSecret: testChannelSecret, Mapping: c.mapping})
			ctx := context.Background()
			check(t, p.Publish(ctx, realtime.Message{Room: "vid_1", Name: "video.asset.ready", RequestID: "r", Body: 1}), c.field)
			_, err := inngest.PublishURL(p, "vid_1", "video.asset.ready")
			check(t, err, c.field)
			_, err = p.SubscriptionToken(ctx, "vid_1", []string{"video.asset.ready"})
			check(t, err, c.field)
			if c.field == "channel" {
				_, err = p.Channel("vid_1")
				check(t, err, c.field)
			}
		})
	}
	assert.Zero(t, requests.Load(), "nothing is sent when the mapping panics")
}

// TestChannelsAreKeyedByDefault: a provider puts on the wire, for publishes
// and tokens alike, the HMAC-SHA256 of the mapped name under the channel
// secret, so that no client can predict a channel (or craft one whose
// hash collides with another room's); the readable name is not in it.
func TestChannelsAreKeyedByDefault(t *testing.T) {
	var tokenBody atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/token") {
			b := make([]byte, 4096)
			n, _ := r.Body.Read(b)
			tokenBody.Store(string(b[:n]))
			w.WriteHeader(http.StatusCreated)
			_, _ = w.Write([]byte(`{"jwt":"eyJhbGciOiJIUzI1NiJ9.eyJleHAiOjQxMDI0NDQ4MDB9.c2ln"}`))
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()

	app := inngest.Mapping{Channel: func(room string) string { return "app:" + room }}
	p := newInngest(t, srv.URL, inngest.Options{SigningKey: testKey, ChannelSecret: testChannelSecret, Mapping: app})
	want := keyed(testChannelSecret, "app:vid_1")

	ch, err := p.Channel("vid_1")
	require.NoError(t, err)
	assert.Equal(t, want, ch)
	assert.Len(t, ch, len("rtk1_")+43)
	assert.NotContains(t, ch, "vid_1")
	require.NoError(t, transport.Validate("channel", ch, field.RoomBytes))

	u, err := inngest.PublishURL(p, "vid_1", "video.asset.ready")
	require.NoError(t, err)
	assert.Contains(t, u, "channel="+want+"&")

	tok, err := p.SubscriptionToken(context.Background(), "vid_1", []string{"video.asset.ready"})
	require.NoError(t, err)
	assert.Equal(t, want, tok.Channel, "tokens grant the channel publishes go to")
	assert.Contains(t, tokenBody.Load(), `"channel":"`+want+`"`)

	other := newInngest(t, srv.URL, inngest.Options{SigningKey: testKey, ChannelSecret: strings.Repeat("z", 32), Mapping: app})
	och, err := other.Channel("vid_1")
	require.NoError(t, err)
	assert.NotEqual(t, ch, och, "another secret, other channels")

	_, err = p.Channel("")
	assert.ErrorIs(t, err, realtime.ErrEmpty)
}

// TestUnkeyedMappingKeepsReadableChannels is the explicit opt-out.
func TestUnkeyedMappingKeepsReadableChannels(t *testing.T) {
	p := newInngest(t, "http://127.0.0.1:1", inngest.Options{SigningKey: testKey, Mapping: inngest.Mapping{Unkeyed: true}})
	ch, err := p.Channel("vid_1")
	require.NoError(t, err)
	assert.Equal(t, "vid_1", ch)
}

// TestChannelSecretConfiguration: with a signing key (a real deployment)
// a missing or short secret is a start-up error naming
// REALTIME_CHANNEL_SECRET, never showing the secret; the variable is read
// when the option is empty; against the dev server (no key) the public
// DevChannelSecret is used.
func TestChannelSecretConfiguration(t *testing.T) {
	_, err := inngest.New(&inngest.Options{BaseURL: "http://a", SigningKey: testKey})
	require.ErrorIs(t, err, realtime.ErrNotConfigured)
	assert.Contains(t, err.Error(), "REALTIME_CHANNEL_SECRET")

	short := "short-but-secret"
	t.Setenv("REALTIME_CHANNEL_SECRET", short)
	_, err = inngest.New(&inngest.Options{BaseURL: "http://a", SigningKey: testKey})
	require.ErrorIs(t, err, realtime.ErrNotConfigured)
	assert.NotContains(t, err.Error(), short)

	t.Setenv("REALTIME_CHANNEL_SECRET", " "+testChannelSecret+"\n")
	p, err := inngest.New(&inngest.Options{BaseURL: "http://a", SigningKey: testKey})
	require.NoError(t, err)
	ch, err := p.Channel("vid_1")
	require.NoError(t, err)
	assert.Equal(t, keyed(testChannelSecret, "vid_1"), ch, "read from the environment, trimmed")

	t.Setenv("REALTIME_CHANNEL_SECRET", testChannelSecret)
	p, err = inngest.New(&inngest.Options{BaseURL: "http://a", SigningKey: testKey, ChannelSecret: strings.Repeat("o", 40)})
	require.NoError(t, err)
	ch, err = p.Channel("vid_1")
	require.NoError(t, err)
	assert.Equal(t, keyed(strings.Repeat("o", 40), "vid_1"), ch, "the option wins over the environment")

	t.Setenv("REALTIME_CHANNEL_SECRET", "")
	p, err = inngest.New(&inngest.Options{BaseURL: "http://a"})
	require.NoError(t, err)
	ch, err = p.Channel("vid_1")
	require.NoError(t, err)
	assert.Equal(t, keyed(inngest.DevChannelSecret, "vid_1"), ch, "dev server: the public development secret")
}

// BenchmarkKeyedChannel is the cost keyed channels add to every publish and
// token: one HMAC-SHA256 of the mapped name.
func BenchmarkKeyedChannel(b *testing.B) {
	for _, c := range []struct {
		name string
		opts inngest.Options
	}{
		{"keyed", inngest.Options{ChannelSecret: testChannelSecret}},
		{"unkeyed", inngest.Options{Mapping: inngest.Mapping{Unkeyed: true}}},
	} {
		b.Run(c.name, func(b *testing.B) {
			opts := c.opts
			opts.BaseURL = "http://127.0.0.1:1"
			p, err := inngest.New(&opts)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := p.Channel("vid_123"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
