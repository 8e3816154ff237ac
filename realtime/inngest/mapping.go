package inngest

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"io"
	"sync"

	"github.com/coursebuilder/realtime-go/internal/field"
	"github.com/coursebuilder/realtime-go/internal/transport"
	"github.com/coursebuilder/realtime-go/realtime"
)

// Mapping turns a PartyKit room into an Inngest Realtime channel and an event
// name into a topic. The zero value maps the room to itself and the name to
// itself, so a browser that watched room "abc" cares about the same topics,
// such as "video.asset.ready", as before.
//
// Override it to namespace channels, for example per app:
//
//	inngest.Mapping{Channel: func(room string) string { return "astro-party:" + room }}
//
// # Keyed channels
//
// A provider made by [New] does not put that name on the wire as it is: it
// sends a keyed channel, "rtk1_" followed by the unpadded base64url
// HMAC-SHA256 (43 characters) of the mapped name under the provider's
// channel secret ([Options.ChannelSecret]). The Inngest server routes
// subscriptions by an unseeded 64-bit hash of the channel name; when
// clients can predict channels, a client can compute, in under a second, a
// room whose channel hashes like another room's, and a token for it then
// receives that room's messages. Keyed channels cannot be predicted without
// the secret. Browsers keep working: they subscribe to the channel of the
// token they are given (tokens.Response.Channel), never to a room.
// [Provider.Channel] returns a room's wire channel.
//
// Set Unkeyed to send the mapped names as they are (the behaviour before
// keyed channels): only for apps that must keep readable channels and whose
// every token is for a room the app chose itself.
//
// The same Mapping, and the same secret, must be used where messages are
// published and where subscription tokens are minted; one [Provider] does
// both.
type Mapping struct {
	// Channel maps a room to a channel name. Nil means the room itself.
	Channel func(room string) string
	// Topic maps an event name to a topic. Nil means the name itself.
	Topic func(name string) string
	// Unkeyed sends channel names as they are instead of keyed (see
	// "Keyed channels" above). Its risk: with predictable channels, anyone
	// who can get a token for a room of their choosing can pick a room
	// whose channel collides with another room's on the Inngest server and
	// receive that room's messages (a [Subscriber] of this package drops
	// such messages; browsers do not). Defaults to false.
	Unkeyed bool

	macs *sync.Pool // of HMAC-SHA256 hashes keyed with the channel secret; set by New, nil otherwise
}

// Keyed channels and their secret (see Options.ChannelSecret).
const (
	// keyedChannelPrefix starts every keyed channel; the rest is the
	// unpadded base64url encoding of a 256-bit HMAC-SHA256, 43 characters.
	keyedChannelPrefix = "rtk1_"
	// minChannelSecretBytes is the shortest channel secret New accepts.
	minChannelSecretBytes = 32
	// channelSecretEnv is the variable New reads the channel secret from
	// when Options.ChannelSecret is empty.
	channelSecretEnv = "REALTIME_CHANNEL_SECRET"
)

// devChannelSecret is the channel secret New uses when none is configured
// and no signing key is either, that is against the Inngest dev server. It
// is public, so channels are not unpredictable there; the dev server's own
// token secret is public too, so isolation between rooms is not a security
// property of a dev server anyway.
const devChannelSecret = "realtime-go development channel secret, public: never use it in production"

// ErrMappingPanicked is the Reason of the [*realtime.ValidationError] returned when a
// Mapping's Channel or Topic function panics. Like every validation error it
// matches [realtime.ErrInvalidMessage]. The panic value is not part of the error.
var ErrMappingPanicked = errors.New("realtime: mapping function panicked")

// withKey returns m keyed with secret, unless m is Unkeyed.
func (m Mapping) withKey(secret []byte) Mapping {
	if !m.Unkeyed {
		key := append([]byte(nil), secret...)
		m.macs = &sync.Pool{New: func() any { return hmac.New(sha256.New, key) }}
	}
	return m
}

// ChannelFor returns the channel for room: the mapped name validated like a
// room and, for the Mapping of a provider made by [New] that is not
// Unkeyed, the keyed channel of that name. A Mapping value of the caller's
// own holds no secret, so its ChannelFor returns the readable name; use
// [Provider.Channel] for what goes on the wire.
//
// A Channel function that panics yields a [*realtime.ValidationError] with Reason
// [ErrMappingPanicked] instead of the panic.
func (m Mapping) ChannelFor(room string) (string, error) {
	ch := room
	if m.Channel != nil {
		var err error
		if ch, err = callMapping("channel", m.Channel, room); err != nil {
			return "", err
		}
	}
	if err := transport.Validate("channel", ch, field.RoomBytes); err != nil {
		return "", err
	}
	if m.macs != nil {
		ch = keyedChannel(m.macs, ch)
	}
	return ch, nil
}

// TopicFor returns the topic for an event name, validated like a name. A
// Topic function that panics yields a [*realtime.ValidationError] with Reason
// [ErrMappingPanicked] instead of the panic.
func (m Mapping) TopicFor(name string) (string, error) {
	t := name
	if m.Topic != nil {
		var err error
		if t, err = callMapping("topic", m.Topic, name); err != nil {
			return "", err
		}
	}
	if err := transport.Validate("topic", t, field.NameBytes); err != nil {
		return "", err
	}
	return t, nil
}

// callMapping calls a user's mapping function, turning a panic into a
// validation error of field.
func callMapping(field string, f func(string) string, in string) (out string, err error) {
	defer func() {
		if recover() != nil {
			out, err = "", &realtime.ValidationError{Field: field, Reason: ErrMappingPanicked}
		}
	}()
	return f(in), nil
}

// keyedChannel is keyedChannelPrefix and the base64url HMAC-SHA256 of
// channel under the key of macs.
func keyedChannel(macs *sync.Pool, channel string) string {
	mac := macs.Get().(hash.Hash)
	mac.Reset()
	_, _ = io.WriteString(mac, channel)
	var sum [sha256.Size]byte
	mac.Sum(sum[:0])
	macs.Put(mac)
	var out [len(keyedChannelPrefix) + 43]byte
	copy(out[:], keyedChannelPrefix)
	base64.RawURLEncoding.Encode(out[len(keyedChannelPrefix):], sum[:])
	return string(out[:])
}

// resolveChannelSecret returns the channel secret of a provider: explicit,
// else channelSecretEnv, else devChannelSecret when the provider has no
// signing key (the dev server). It fails with ErrNotConfigured when a
// signing key is configured without a secret, or when the secret is shorter
// than minChannelSecretBytes. Its errors never contain the secret. An
// Unkeyed mapping needs no secret.
func resolveChannelSecret(m Mapping, explicit string, getenv func(string) string, hasSigningKey bool) ([]byte, error) {
	if m.Unkeyed {
		return nil, nil
	}
	secret := firstNonEmpty(explicit, getenv(channelSecretEnv))
	switch {
	case secret == "" && hasSigningKey:
		return nil, fmt.Errorf("%w: a channel secret is required with a signing key (set %s to a random string of at least %d bytes shared by every instance of the app, or Options.ChannelSecret)",
			realtime.ErrNotConfigured, channelSecretEnv, minChannelSecretBytes)
	case secret == "":
		return []byte(devChannelSecret), nil
	case len(secret) < minChannelSecretBytes:
		return nil, fmt.Errorf("%w: the channel secret (%s) is too short; at least %d bytes are required",
			realtime.ErrNotConfigured, channelSecretEnv, minChannelSecretBytes)
	}
	return []byte(secret), nil
}

// Channel returns the channel that room is published to and that tokens for
// room grant: the provider's [Mapping] applied and, unless it is Unkeyed,
// keyed with the channel secret. It fails like [Mapping.ChannelFor]. Use it
// to subscribe by channel or to name a channel in logs; browsers take it
// from the token response.
func (p *Provider) Channel(room string) (string, error) {
	if err := transport.Validate("room", room, field.RoomBytes); err != nil {
		return "", err
	}
	return p.mapping.ChannelFor(room)
}

// Topic returns the topic messages named name are published on and that
// tokens for name grant: the provider's [Mapping] applied. It fails like
// [Mapping.TopicFor].
func (p *Provider) Topic(name string) (string, error) {
	if err := transport.Validate("name", name, field.NameBytes); err != nil {
		return "", err
	}
	return p.mapping.TopicFor(name)
}
