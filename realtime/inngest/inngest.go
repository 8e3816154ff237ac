package inngest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/coursebuilder/realtime-go/internal/httpx"
	"github.com/coursebuilder/realtime-go/internal/transport"
	"github.com/coursebuilder/realtime-go/realtime"
)

// Base URLs the Inngest SDKs use when none is configured (see
// Options.BaseURL).
const (
	cloudURL     = "https://api.inngest.com"
	devServerURL = "http://localhost:8288"
)

// Options configures [New]. A nil *Options, or a zero
// field, means "resolve it as the official Inngest SDKs do", from the
// environment. New reads the process environment (os.Getenv) once; a
// field set here wins over its variable, and a variable set to "" counts as
// unset.
type Options struct {
	// BaseURL of the Inngest API. Defaults to INNGEST_BASE_URL, else
	// INNGEST_API_BASE_URL, else INNGEST_DEV when it is a URL, else the dev
	// server (http://localhost:8288) when INNGEST_DEV is true, else Inngest
	// Cloud (https://api.inngest.com). An INNGEST_DEV that is neither a URL with a
	// scheme and a host nor a boolean (strconv.ParseBool) is refused with
	// ErrNotConfigured when it is consulted, rather than read as false.
	BaseURL string
	// SigningKey authenticates publishes; it is sent hashed, never as is.
	// Defaults to INNGEST_SIGNING_KEY. Required for Inngest Cloud.
	SigningKey string
	// SigningKeyFallback is tried once when SigningKey is refused (401 or
	// 403), for key rotation. Defaults to INNGEST_SIGNING_KEY_FALLBACK.
	SigningKeyFallback string
	// Env selects a branch environment, sent as X-Inngest-Env. Defaults to
	// INNGEST_ENV.
	Env string
	// Mapping turns rooms into channel names and names into topics. The
	// zero value maps them unchanged. Channels are then keyed with
	// ChannelSecret unless Mapping.Unkeyed is set (see [Mapping]).
	Mapping Mapping
	// ChannelSecret keys the channels (see [Mapping]): a random string of
	// at least 32 bytes (it is exposed to offline guessing by anyone who
	// knows one room and its channel, as every browser does), the same for
	// every instance of the app, that no client knows. Changing it moves
	// every room to a new channel. Defaults to REALTIME_CHANNEL_SECRET; when
	// both are empty it is required if a signing key is configured, and
	// otherwise (the dev server) a development secret of this package's is
	// used, which is public. Not needed with Mapping.Unkeyed.
	ChannelSecret string
	// HTTPClient sends the requests. Defaults to a client of this provider's
	// own with dial and TLS handshake timeouts and keep-alive connections;
	// AttemptTimeout bounds each request as a whole. A client given here is
	// not changed: the provider sends with a shallow copy of it whose
	// CheckRedirect follows no redirect, so that no request (and no key)
	// goes anywhere else; a redirect fails with ErrRejected.
	HTTPClient *http.Client
	// AttemptTimeout bounds each request, retries excluded; the caller's
	// context bounds the whole publish. An attempt that runs out of it after
	// the request was sent fails with ErrMaybeDelivered and is not retried.
	// Defaults to 5s.
	AttemptTimeout time.Duration
	// Retry says how transient failures are retried; nil or zero fields
	// take the defaults of [realtime.RetryPolicy].
	Retry *realtime.RetryPolicy
	// Logger receives key-rotation and retry diagnostics; never a key or a
	// body. Defaults to zap.NewNop().
	Logger *zap.Logger
}

// Provider publishes messages to Inngest Realtime over HTTP:
//
//	POST {BaseURL}/v1/realtime/publish?channel=<channel>&topic=<topic>
//
// with the envelope as body and the hashed signing key as bearer token. It
// works inside and outside Inngest functions; inside one, publish from within
// step.Run so that a replayed function does not publish again.
//
// An Inngest is safe for concurrent use. Its String method never shows a key.
type Provider struct {
	publishEndpoint string
	baseURL         string
	env             string
	keys            *keyring
	mapping         Mapping
	http            httpx.Sender // the client and the attempt timeout
	retry           realtime.RetryPolicy
	log             *zap.Logger
	endpoint        transport.Endpoint
}

// keyring holds the hashed signing keys behind a pointer, so that printing an
// Inngest with %+v shows an address, not a key.
type keyring struct {
	hashed    []string // primary first; empty in dev mode without a key
	preferred atomic.Int32
}

var _ realtime.EnvelopePublisher = (*Provider)(nil)

// New returns an Inngest Realtime provider. It fails with an error
// matching [realtime.ErrNotConfigured] when the base URL is not a valid http(s) URL,
// when INNGEST_DEV is neither a URL nor a boolean, when a signing key is
// malformed, when Inngest Cloud would be used
// without a signing key, or when a signing key is configured without a
// channel secret (see Options.ChannelSecret) or the secret is too
// short.
func New(opts *Options) (*Provider, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	getenv := func(k string) string { return strings.TrimSpace(os.Getenv(k)) }

	base, from, cloud, err := resolveBaseURL(o.BaseURL, getenv)
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%w: inngest base URL %q (from %s) is not an http(s) URL", realtime.ErrNotConfigured, base, from)
	}
	base = strings.TrimRight(base, "/")

	primary := firstNonEmpty(o.SigningKey, getenv("INNGEST_SIGNING_KEY"))
	fallback := firstNonEmpty(o.SigningKeyFallback, getenv("INNGEST_SIGNING_KEY_FALLBACK"))
	keys := &keyring{}
	for _, k := range []struct{ name, key string }{{"signing key", primary}, {"fallback signing key", fallback}} {
		if k.key == "" {
			continue
		}
		h, err := transport.HashSigningKey(k.key)
		if err != nil {
			return nil, fmt.Errorf("%w: inngest %s: %w", realtime.ErrNotConfigured, k.name, err)
		}
		keys.hashed = append(keys.hashed, h)
	}
	if cloud && len(keys.hashed) == 0 {
		return nil, fmt.Errorf("%w: inngest signing key required for %s (set INNGEST_SIGNING_KEY, or INNGEST_DEV=1 for the dev server)", realtime.ErrNotConfigured, base)
	}
	channelSecret, err := resolveChannelSecret(o.Mapping, o.ChannelSecret, getenv, len(keys.hashed) > 0)
	if err != nil {
		return nil, err
	}

	p := &Provider{
		publishEndpoint: base + "/v1/realtime/publish",
		baseURL:         base,
		env:             firstNonEmpty(o.Env, getenv("INNGEST_ENV")),
		keys:            keys,
		mapping:         o.Mapping.withKey(channelSecret),
		http:            httpx.NewSender(o.HTTPClient, o.AttemptTimeout, transport.DefaultAttemptTimeout),
		retry:           transport.Retry(o.Retry),
		log:             o.Logger,
	}
	if p.log == nil {
		p.log = zap.NewNop()
	}
	p.endpoint = transport.Endpoint{
		Name:  "inngest",
		Limit: realtime.MaxEnvelopeBytes,
		Retry: p.retry,
		Route: func(msg realtime.Message) (string, error) { return p.publishURL(msg.Room, msg.Name) },
		Send: func(ctx context.Context, target string, env *realtime.Envelope) error {
			_, err := p.send(ctx, request{url: target, contentType: "application/json", body: env.Bytes()})
			return err
		},
	}
	return p, nil
}

// resolveBaseURL applies the SDKs' order, says where the result came from
// and reports whether it is Inngest Cloud by default (where a signing key is
// mandatory). An INNGEST_DEV that is neither a URL with a scheme and a host
// nor a boolean is an error matching ErrNotConfigured: "yes" or
// "localhost:8288" must not quietly mean Inngest Cloud.
func resolveBaseURL(explicit string, getenv func(string) string) (base, from string, cloud bool, err error) {
	for _, c := range []struct{ from, v string }{
		{"Options.BaseURL", explicit},
		{"INNGEST_BASE_URL", getenv("INNGEST_BASE_URL")},
		{"INNGEST_API_BASE_URL", getenv("INNGEST_API_BASE_URL")},
	} {
		if c.v != "" {
			return c.v, c.from, false, nil
		}
	}
	if dev := getenv("INNGEST_DEV"); dev != "" {
		if u, err := url.Parse(dev); err == nil && u.Scheme != "" && u.Host != "" {
			return dev, "INNGEST_DEV", false, nil
		}
		on, err := strconv.ParseBool(dev)
		if err != nil {
			return "", "", false, fmt.Errorf("%w: INNGEST_DEV=%q is neither a URL with a scheme and a host (http://localhost:8288) nor a boolean (1, true, 0, false)", realtime.ErrNotConfigured, dev)
		}
		if on {
			return devServerURL, "INNGEST_DEV", false, nil
		}
	}
	return cloudURL, "the default", true, nil
}

func firstNonEmpty(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}

// BaseURL returns the resolved Inngest API base URL.
func (p *Provider) BaseURL() string { return p.baseURL }

// String describes the provider without its keys.
func (p *Provider) String() string {
	return fmt.Sprintf("inngest.Provider{base: %s, env: %q, keys: %d}", p.baseURL, p.env, len(p.keys.hashed))
}

// GoString is String, so that %#v never shows a key either.
func (p *Provider) GoString() string { return p.String() }

// Close releases idle connections of the provider's own HTTP client. The
// provider stays usable; Close is safe to call more than once.
func (p *Provider) Close() error {
	p.http.Close()
	return nil
}

// Publish validates and encodes msg, maps its room and name to a channel and
// topic, and posts the envelope, retrying transient failures under the
// provider's [realtime.RetryPolicy] and trying the fallback key once when the
// signing key is refused.
func (p *Provider) Publish(ctx context.Context, msg realtime.Message) error {
	return p.endpoint.Publish(ctx, msg)
}

// PublishEnvelope posts an envelope encoded already (see
// [realtime.EnvelopePublisher]) as Publish does.
func (p *Provider) PublishEnvelope(ctx context.Context, env *realtime.Envelope) error {
	return p.endpoint.PublishEnvelope(ctx, env)
}

// publishURL returns the URL a message for room and name is posted to, after
// mapping and validation.
func (p *Provider) publishURL(room, name string) (string, error) {
	channel, err := p.mapping.ChannelFor(room)
	if err != nil {
		return "", err
	}
	topic, err := p.mapping.TopicFor(name)
	if err != nil {
		return "", err
	}
	// The same query url.Values{"channel", "topic"}.Encode() writes, without
	// its map and sort on every publish.
	return p.publishEndpoint + "?channel=" + url.QueryEscape(channel) + "&topic=" + url.QueryEscape(topic), nil
}

// request is one call to the Inngest API: the same for every attempt.
type request struct {
	url         string
	contentType string
	body        []byte
	limit       int64 // how much of a successful answer to keep
	// idempotent is set for a request that is safe to send twice (a token
	// request): one whose answer was lost (ErrMaybeDelivered) is retried.
	idempotent bool
}

// send makes one attempt: the preferred key first and, when it is refused,
// the other key once. It returns the answer of a 2xx, or a *PublishError.
func (p *Provider) send(ctx context.Context, req request) (httpx.Answer, error) {
	n := len(p.keys.hashed)
	if n == 0 {
		return p.sendWith(ctx, req, "")
	}
	first := int(p.keys.preferred.Load())
	ans, err := p.sendWith(ctx, req, p.keys.hashed[first])
	if n == 1 || !errors.Is(err, realtime.ErrUnauthorized) {
		return ans, err
	}
	other := 1 - first
	ans, err = p.sendWith(ctx, req, p.keys.hashed[other])
	if err != nil {
		return ans, err
	}
	if p.keys.preferred.CompareAndSwap(int32(first), int32(other)) {
		p.log.Warn("realtime: inngest refused one signing key and accepted the other; using the accepted one first",
			zap.Bool("fallback_preferred", other == 1))
	}
	return ans, nil
}

// call runs req under the provider's retry policy and returns the answer of
// the attempt that succeeded.
func (p *Provider) call(ctx context.Context, req request) (httpx.Answer, error) {
	var ans httpx.Answer
	err := transport.Do(ctx, p.retry, req.idempotent, func(ctx context.Context) error {
		var err error
		ans, err = p.send(ctx, req)
		return err
	})
	return ans, err
}

// errorDetailLimit bounds how much of an error answer is kept for
// PublishError.Detail.
const errorDetailLimit = 512

// header returns the request headers for a key.
func (p *Provider) header(contentType, hashedKey string) http.Header {
	h := http.Header{"Content-Type": {contentType}, "User-Agent": {transport.UserAgent}}
	if hashedKey != "" {
		h.Set("Authorization", "Bearer "+hashedKey)
	}
	if p.env != "" {
		h.Set("X-Inngest-Env", p.env)
	}
	return h
}

func (p *Provider) sendWith(ctx context.Context, req request, hashedKey string) (httpx.Answer, error) {
	h := p.header(req.contentType, hashedKey)
	ans, err := p.http.Post(ctx, req.url, h, req.body, max(req.limit, errorDetailLimit))
	if ans.Status == 0 {
		p.log.Debug("realtime: inngest request failed", zap.Error(err))
		return ans, transport.NetworkError("inngest", err)
	}
	if ans.Status >= 200 && ans.Status < 300 {
		// Accepted: a reply cut short is not worth a retry that would
		// deliver the message twice.
		if int64(len(ans.Body)) > req.limit {
			ans.Body = ans.Body[:req.limit]
		}
		return ans, nil
	}
	p.log.Debug("realtime: inngest request failed", zap.Int("status", ans.Status))
	return httpx.Answer{Status: ans.Status}, transport.StatusError("inngest", ans.Status, p.errorDetail(ans), ans.RetryAfter)
}

// errorDetailCut is how much of a redacted error answer PublishError.Detail
// shows.
const errorDetailCut = 200

// errorDetail is the Detail of an error answer: nothing for 401 and 403,
// else the start of the answer with every key the provider holds removed
// from the whole kept body before it is cut, so that no part of a key
// straddling the cut survives.
func (p *Provider) errorDetail(ans httpx.Answer) string {
	if ans.Status == http.StatusUnauthorized || ans.Status == http.StatusForbidden {
		return ""
	}
	return httpx.Snippet(p.redact(ans.Body), errorDetailCut)
}

// redact removes any key the provider holds from b, in case a server echoes
// a header back.
func (p *Provider) redact(b []byte) []byte {
	for _, k := range p.keys.hashed {
		b = bytes.ReplaceAll(b, []byte(k), []byte("[redacted]"))
	}
	return b
}
