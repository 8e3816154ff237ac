package flags

import (
	"context"
	"fmt"
	"slices"
	"strings"
)

// Mode is how one scope publishes during the migration. The order is the
// rollout order; the zero value is Legacy, the safe default.
type Mode uint8

const (
	// Legacy publishes to PartyKit only. The default, and the answer to a
	// failure to evaluate a flag while no mode is known yet.
	Legacy Mode = iota
	// Shadow publishes to both; the UI still reads PartyKit, so only the
	// PartyKit outcome counts and a realtime failure never fails the call.
	Shadow
	// Primary publishes to both; the UI reads Inngest Realtime, so only the
	// realtime outcome counts and a PartyKit failure never fails the call.
	Primary
	// Realtime publishes to Inngest Realtime only.
	Realtime
)

var modeNames = [...]string{Legacy: "legacy", Shadow: "shadow", Primary: "primary", Realtime: "realtime"}

// String returns the flag value for m: "legacy", "shadow", "primary" or
// "realtime".
func (m Mode) String() string {
	if int(m) < len(modeNames) {
		return modeNames[m]
	}
	return fmt.Sprintf("Mode(%d)", uint8(m))
}

// ParseMode reads a flag value, case-insensitively and ignoring surrounding
// space. It also accepts the aliases "party"/"partykit"/"off" for Legacy and
// "realtime-only"/"inngest" for Realtime.
func ParseMode(s string) (Mode, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "legacy", "party", "partykit", "off":
		return Legacy, nil
	case "shadow":
		return Shadow, nil
	case "primary", "realtime-primary":
		return Primary, nil
	case "realtime", "realtime-only", "inngest":
		return Realtime, nil
	}
	return Legacy, fmt.Errorf("flags: unknown mode %q (want legacy, shadow, primary or realtime)", s)
}

// Known reports whether m is one of the four modes. A [Resolver] may answer
// any value; everything that consumes a mode treats an unknown one as
// Legacy, the safe default.
func (m Mode) Known() bool { return m <= Realtime }

// OrLegacy returns m when it is [Mode.Known], and Legacy otherwise.
func (m Mode) OrLegacy() Mode {
	if m.Known() {
		return m
	}
	return Legacy
}

// PublishesLegacy reports whether m sends to PartyKit.
func (m Mode) PublishesLegacy() bool { return m != Realtime }

// PublishesRealtime reports whether m sends to Inngest Realtime.
func (m Mode) PublishesRealtime() bool { return m != Legacy }

// RealtimeCounts reports whether the realtime outcome decides the result of
// a publish (Primary and Realtime); otherwise the PartyKit outcome does.
func (m Mode) RealtimeCounts() bool { return m == Primary || m == Realtime }

// Scope is a group of events rolled out together, with a flag of its own.
type Scope string

// The scopes the migration plan names, and Default for any other event.
const (
	ScopeVideoUpload  Scope = "video-upload"
	ScopeVideoReady   Scope = "video-ready"
	ScopeVideoErrored Scope = "video-errored"
	ScopeTranscript   Scope = "transcript"
	ScopeAIStream     Scope = "ai-stream"
	ScopeDefault      Scope = "default"
)

// Scopes lists every scope, Default last.
var Scopes = []Scope{ScopeVideoUpload, ScopeVideoReady, ScopeVideoErrored, ScopeTranscript, ScopeAIStream, ScopeDefault}

// ScopeOf returns the scope of an event name as the TypeScript apps use them:
// videoResource.created (and video.upload.*) → video-upload,
// video.asset.ready → video-ready, video.asset.errored → video-errored,
// transcript.* → transcript, ai.message → ai-stream; anything else → default.
func ScopeOf(name string) Scope {
	switch {
	case name == "videoResource.created" || strings.HasPrefix(name, "video.upload."):
		return ScopeVideoUpload
	case name == "video.asset.ready":
		return ScopeVideoReady
	case name == "video.asset.errored":
		return ScopeVideoErrored
	case strings.HasPrefix(name, "transcript."):
		return ScopeTranscript
	case name == "ai.message":
		return ScopeAIStream
	}
	return ScopeDefault
}

// scopeNames is the table behind [Scope.Names].
var scopeNames = map[Scope][]string{
	ScopeVideoUpload:  {"videoResource.created"},
	ScopeVideoReady:   {"video.asset.ready"},
	ScopeVideoErrored: {"video.asset.errored"},
	ScopeTranscript:   {"transcript.ready"},
	ScopeAIStream:     {"ai.message"},
}

// Names returns the event names the course-builder apps publish in the
// scope, which a subscription token for the scope covers when a browser
// names none (package tokens):
//
//	video-upload   videoResource.created
//	video-ready    video.asset.ready
//	video-errored  video.asset.errored
//	transcript     transcript.ready
//	ai-stream      ai.message
//	default        (none: a token request in this scope must name its events)
//
// [ScopeOf] gives each of them back its scope. The result is a copy; nil for
// an unknown scope and for ScopeDefault.
func (s Scope) Names() []string {
	return slices.Clone(scopeNames[s])
}

// ModeKey returns the OpenFeature flag key that holds the scope's mode, a
// string flag such as "realtime-video-ready-mode".
func (s Scope) ModeKey() string { return "realtime-" + string(s) + "-mode" }

// KillSwitchKey is the boolean flag that, when true, forces every scope to
// Legacy, whatever the scope flags say.
const KillSwitchKey = "realtime-kill-switch"

// Resolver decides the mode of a publish. It never fails: an evaluation
// problem resolves to the last known mode, or Legacy when none is known.
// [*Evaluator] is the OpenFeature-backed one;
// [Fixed] is for tests and for apps without flags.
type Resolver interface {
	Mode(ctx context.Context, scope Scope, room string) Mode
}

// Fixed is a Resolver that always returns the same mode.
type Fixed Mode

// Mode returns Mode(f).
func (f Fixed) Mode(context.Context, Scope, string) Mode { return Mode(f) }
