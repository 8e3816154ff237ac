package inngest

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/coursebuilder/realtime-go/internal/field"
	"github.com/coursebuilder/realtime-go/internal/transport"
	"github.com/coursebuilder/realtime-go/realtime"
)

// maxTokenNames bounds how many event names one subscription token covers.
const maxTokenNames = 64

// maxTokenAnswer bounds how much of the answer to POST /v1/realtime/token is
// read: a JWT of maxTokenNames topics of the longest channel and topic is
// far below it.
const maxTokenAnswer = 64 << 10

// ErrInvalidToken matches an answer to a token request that is not a usable
// subscription token: not JSON, without a "jwt", or a JWT whose payload has
// no "exp". Its message never contains the answer or the token.
var ErrInvalidToken = errors.New("realtime: invalid subscription token")

// Token is a subscription token for Inngest Realtime: a short-lived JWT
// (Inngest issues them for one minute) that lets whoever holds it subscribe
// to the topics of one channel, and nothing else.
//
// The JWT is a credential. String, GoString, MarshalLogObject (zap) and
// LogValue (log/slog) leave it out, so a Token can be printed and logged;
// encoding/json, asked explicitly, does include it.
type Token struct {
	// JWT is the token itself, sent as "Authorization: Bearer <JWT>" to
	// /v1/realtime/connect (or as ?token=<JWT>, as browsers do). It is what
	// the official React hooks call the token's "key".
	JWT string
	// Channel is the channel the token grants, after the provider's
	// [Mapping].
	Channel string
	// Topics are the topics of Channel the token grants, after the
	// provider's Mapping, in the order of the names asked for, without
	// duplicates.
	Topics []string
	// Expires is when Inngest stops accepting the token for new
	// connections, from the JWT's "exp" claim. A connection opened before
	// then is not cut when the token expires.
	Expires time.Time
}

// String describes the token without its JWT.
func (t Token) String() string {
	return fmt.Sprintf("inngest.Token{channel: %q, topics: %q, expires: %s}",
		t.Channel, t.Topics, t.Expires.UTC().Format(time.RFC3339))
}

// GoString is String, so that %#v does not show the JWT either.
func (t Token) GoString() string { return t.String() }

// MarshalLogObject lets zap log a Token (zap.Object, zap.Any) without its
// JWT.
func (t Token) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	enc.AddString("channel", t.Channel)
	if err := enc.AddArray("topics", zapcore.ArrayMarshalerFunc(func(a zapcore.ArrayEncoder) error {
		for _, tp := range t.Topics {
			a.AppendString(tp)
		}
		return nil
	})); err != nil {
		return err
	}
	enc.AddTime("expires", t.Expires)
	return nil
}

// LogValue lets log/slog log a Token without its JWT.
func (t Token) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("channel", t.Channel),
		slog.Any("topics", t.Topics),
		slog.Time("expires", t.Expires),
	)
}

var (
	_ fmt.Stringer            = Token{}
	_ fmt.GoStringer          = Token{}
	_ zapcore.ObjectMarshaler = Token{}
	_ slog.LogValuer          = Token{}
)

// tokenTopic is one element of the body of POST /v1/realtime/token.
type tokenTopic struct {
	Kind    string `json:"kind"`
	Channel string `json:"channel"`
	Name    string `json:"name"`
}

// SubscriptionToken mints a token that lets a browser (or any subscriber)
// receive the messages published to room under the given event names, and
// nothing else. Room and names are validated like a [realtime.Message]'s and mapped
// to a channel and topics with the provider's [Mapping], the same as
// [Provider.Publish] does, so that what is published and what a token grants
// always agree.
//
// It posts
//
//	POST {BaseURL}/v1/realtime/token
//	[{"kind":"run","channel":<channel>,"name":<topic>}, ...]
//
// with the hashed signing key, trying the fallback key once when the key is
// refused, with X-Inngest-Env when an environment is configured, and
// retrying transient failures under the provider's [realtime.RetryPolicy] as a
// publish does. Unlike a publish, a token request whose answer was lost
// ([realtime.ErrMaybeDelivered]: sent in full, then no answer or the attempt timeout)
// is retried too: minting a token twice does no harm. Redirects are never
// followed. Inngest answers 201 {"jwt":"..."}; 200 is accepted too.
//
// Token.Expires is read from the JWT's "exp" claim by decoding the payload
// segment only. The signature is not verified: it is made with a secret of
// Inngest's that clients never hold, the token came from Inngest over the
// connection the signing key authenticated, and Inngest checks it again
// whenever it is used. Expires only tells the caller when to ask again.
//
// Errors: a [*realtime.ValidationError] (matching [realtime.ErrInvalidMessage]) for an invalid
// room, name or mapped channel or topic, or for no names or more than 64
// (the most one token covers); a wrapped [*realtime.PublishError] (matching [realtime.ErrUnauthorized],
// [realtime.ErrRejected] or [realtime.ErrUnavailable]) when Inngest could not be reached or
// refused the request; [ErrInvalidToken] when its answer is not a usable
// token. No error and no log line contains a key or the token.
func (p *Provider) SubscriptionToken(ctx context.Context, room string, names []string) (Token, error) {
	if err := ctx.Err(); err != nil {
		return Token{}, err
	}
	if err := transport.Validate("room", room, field.RoomBytes); err != nil {
		return Token{}, err
	}
	switch {
	case len(names) == 0:
		return Token{}, &realtime.ValidationError{Field: "names", Reason: realtime.ErrEmpty}
	case len(names) > maxTokenNames:
		return Token{}, &realtime.ValidationError{Field: "names", Reason: realtime.ErrTooLong}
	}
	channel, err := p.mapping.ChannelFor(room)
	if err != nil {
		return Token{}, err
	}
	topics := make([]string, 0, len(names))
	body := make([]tokenTopic, 0, len(names))
	for _, name := range names {
		if err := transport.Validate("name", name, field.NameBytes); err != nil {
			return Token{}, err
		}
		topic, err := p.mapping.TopicFor(name)
		if err != nil {
			return Token{}, err
		}
		if slices.Contains(topics, topic) {
			continue
		}
		topics = append(topics, topic)
		body = append(body, tokenTopic{Kind: "run", Channel: channel, Name: topic})
	}
	b, err := json.Marshal(body)
	if err != nil {
		return Token{}, fmt.Errorf("realtime: subscription token: %w", err)
	}
	ans, err := p.call(ctx, request{
		url:         p.baseURL + "/v1/realtime/token",
		contentType: "application/json",
		body:        b,
		limit:       maxTokenAnswer,
		idempotent:  true,
	})
	if err != nil {
		var pe *realtime.PublishError
		if errors.As(err, &pe) {
			pe.Op = "token request"
			return Token{}, err
		}
		return Token{}, fmt.Errorf("realtime: subscription token: %w", err)
	}
	jwt, exp, err := parseTokenAnswer(ans.Body)
	if err != nil {
		p.log.Warn("realtime: inngest answered a token request with something that is not a token",
			zap.Int("status", ans.Status), zap.String("reason", err.Error()))
		return Token{}, err
	}
	return Token{JWT: jwt, Channel: channel, Topics: topics, Expires: exp}, nil
}

// TokenFunc returns a function that mints a subscription token for room and
// names each time it is called, for [Subscribe]:
//
//	sub, err := inngest.Subscribe(ctx, p.BaseURL(), p.TokenFunc(room, "video.asset.ready"), handle, nil)
//
// Room and names are checked when a token is minted, with the errors of
// [Provider.SubscriptionToken].
func (p *Provider) TokenFunc(room string, names ...string) func(context.Context) (Token, error) {
	names = append([]string(nil), names...)
	return func(ctx context.Context) (Token, error) {
		return p.SubscriptionToken(ctx, room, names)
	}
}

// parseTokenAnswer reads {"jwt":"..."} and the JWT's expiry. Its errors
// match ErrInvalidToken and never quote the answer.
func parseTokenAnswer(body []byte) (string, time.Time, error) {
	var ans struct {
		JWT string `json:"jwt"`
	}
	if err := json.Unmarshal(body, &ans); err != nil {
		return "", time.Time{}, fmt.Errorf("%w: the answer is not a JSON object with a \"jwt\" string", ErrInvalidToken)
	}
	if ans.JWT == "" {
		return "", time.Time{}, fmt.Errorf("%w: the answer has no \"jwt\"", ErrInvalidToken)
	}
	exp, err := jwtExpiry(ans.JWT)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("%w: %s", ErrInvalidToken, err)
	}
	return ans.JWT, exp, nil
}

// jwtExpiry returns the "exp" claim of a compact JWS, decoding its payload
// segment without verifying the signature. It insists on three base64url
// segments, so the token is safe to put in a header.
func jwtExpiry(jwt string) (time.Time, error) {
	segs := strings.Split(jwt, ".")
	if len(segs) != 3 || segs[0] == "" || segs[1] == "" || segs[2] == "" {
		return time.Time{}, errors.New("the jwt does not have three segments")
	}
	for _, s := range segs {
		if strings.IndexFunc(s, notBase64URL) >= 0 {
			return time.Time{}, errors.New("the jwt has characters outside base64url")
		}
	}
	payload, err := base64.RawURLEncoding.DecodeString(segs[1])
	if err != nil {
		return time.Time{}, errors.New("the jwt payload is not base64url")
	}
	var claims struct {
		Exp *json.Number `json:"exp"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil {
		return time.Time{}, errors.New("the jwt payload is not a JSON object with a numeric \"exp\"")
	}
	if claims.Exp == nil {
		return time.Time{}, errors.New("the jwt has no \"exp\"")
	}
	secs, err := claims.Exp.Float64()
	// Bound it to what time.Time represents without overflow.
	if err != nil || math.IsNaN(secs) || secs <= 0 || secs > 1<<40 {
		return time.Time{}, errors.New("the jwt's \"exp\" is not a valid time")
	}
	whole, frac := math.Modf(secs)
	return time.Unix(int64(whole), int64(frac*1e9)).UTC(), nil
}

func notBase64URL(r rune) bool {
	return !(r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_')
}
