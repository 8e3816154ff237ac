package flags

import (
	"context"
	"fmt"
	"os"
	"strings"
	"unicode/utf8"

	"github.com/open-feature/go-sdk/openfeature"
)

// Environment variables the [EnvProvider] reads besides the per-scope ones
// (see the package documentation for the full table).
const (
	// EnvKillSwitch holds [KillSwitchKey]: a boolean, unset means false.
	EnvKillSwitch = "REALTIME_KILL_SWITCH"
	// EnvVideoRealtime is the plan's per-app switch for every video-* scope,
	// below the per-scope variables in precedence.
	EnvVideoRealtime = "ENABLE_REALTIME_VIDEO_REALTIME"
)

// EnvOptions configures an [EnvProvider]. A nil *EnvOptions means every
// default.
type EnvOptions struct {
	// LookupEnv reads one environment variable. Defaults to os.LookupEnv.
	LookupEnv func(key string) (string, bool)
}

// EnvProvider is an OpenFeature provider backed by environment variables,
// for deployments without a flag service. It serves [KillSwitchKey] and
// ModeKey(s) for every scope s, reads the environment on every evaluation
// (a changed variable takes effect on the next publish, without a restart)
// and ignores the evaluation context: every room of a process gets the same
// answer. Create one with [NewEnvProvider].
//
// A mode flag whose variables are all unset or empty resolves to the
// caller's default value with reason DEFAULT; a variable holding something
// unparseable resolves to a PARSE_ERROR naming it, which an [Evaluator]
// turns into Legacy. A flag key it does not serve is FLAG_NOT_FOUND.
type EnvProvider struct {
	lookup func(string) (string, bool)
}

var _ openfeature.FeatureProvider = (*EnvProvider)(nil)

// NewEnvProvider returns an EnvProvider.
func NewEnvProvider(opts *EnvOptions) *EnvProvider {
	p := &EnvProvider{lookup: os.LookupEnv}
	if opts != nil && opts.LookupEnv != nil {
		p.lookup = opts.LookupEnv
	}
	return p
}

// Metadata names the provider "flags.EnvProvider".
func (p *EnvProvider) Metadata() openfeature.Metadata {
	return openfeature.Metadata{Name: "flags.EnvProvider"}
}

// Hooks returns no hooks.
func (p *EnvProvider) Hooks() []openfeature.Hook { return nil }

// envSource is one variable a mode flag reads, with what it accepts.
type envSource struct {
	name     string
	modeOnly bool                     // REALTIME_<SCOPE>_MODE: mode names only
	meta     openfeature.FlagMetadata // {"source": name}; shared, read-only
}

// envSources lists, most important first, the variables of each known
// scope's mode flag; computed once because it is read on every evaluation.
var envSources = func() map[string][]envSource {
	m := make(map[string][]envSource, len(Scopes))
	for _, s := range Scopes {
		m[ModeKey(s)] = sourcesOf(s)
	}
	return m
}()

// sourcesOf derives the variables of scope s: REALTIME_<S>_MODE, then
// ENABLE_REALTIME_<S> (not for default), then ENABLE_REALTIME_VIDEO_REALTIME
// for the video-* scopes.
func sourcesOf(s Scope) []envSource {
	up := strings.ToUpper(strings.ReplaceAll(string(s), "-", "_"))
	src := func(name string, modeOnly bool) envSource {
		return envSource{name: name, modeOnly: modeOnly, meta: openfeature.FlagMetadata{"source": name}}
	}
	out := []envSource{src("REALTIME_"+up+"_MODE", true)}
	if s != ScopeDefault {
		out = append(out, src("ENABLE_REALTIME_"+up, false))
	}
	if strings.HasPrefix(string(s), "video-") {
		out = append(out, src(EnvVideoRealtime, false))
	}
	return out
}

// sources returns the variables of a mode flag key, and false for a key
// that is not a mode flag.
func sources(flag string) ([]envSource, bool) {
	if src, ok := envSources[flag]; ok {
		return src, true
	}
	s, ok := strings.CutPrefix(flag, "realtime-")
	if !ok {
		return nil, false
	}
	s, ok = strings.CutSuffix(s, "-mode")
	if !ok || s == "" {
		return nil, false
	}
	return sourcesOf(Scope(s)), true
}

// StringEvaluation resolves a mode flag from the first of its variables that
// is set and not blank, as a mode name ("shadow").
func (p *EnvProvider) StringEvaluation(_ context.Context, flag string, defaultValue string, _ openfeature.FlattenedContext) openfeature.StringResolutionDetail {
	src, ok := sources(flag)
	if !ok {
		if flag == KillSwitchKey {
			return stringError(defaultValue, openfeature.NewTypeMismatchResolutionError(KillSwitchKey+" is a boolean flag"))
		}
		return stringError(defaultValue, notFound(flag))
	}
	for _, v := range src {
		raw, ok := p.lookup(v.name)
		if !ok || strings.TrimSpace(raw) == "" {
			continue
		}
		var m Mode
		var err error
		if v.modeOnly {
			m, err = ParseMode(raw)
		} else {
			m, err = parseEnvMode(raw)
		}
		if err != nil {
			return stringError(defaultValue, openfeature.NewParseErrorResolutionError(
				fmt.Sprintf("%s=%q: %v", v.name, clip(raw), err)))
		}
		return openfeature.StringResolutionDetail{
			Value: m.String(),
			ProviderResolutionDetail: openfeature.ProviderResolutionDetail{
				Reason: openfeature.StaticReason, Variant: m.String(), FlagMetadata: v.meta,
			},
		}
	}
	return openfeature.StringResolutionDetail{
		Value:                    defaultValue,
		ProviderResolutionDetail: openfeature.ProviderResolutionDetail{Reason: openfeature.DefaultReason},
	}
}

var killMeta = openfeature.FlagMetadata{"source": EnvKillSwitch}

// BooleanEvaluation resolves [KillSwitchKey] from REALTIME_KILL_SWITCH; unset
// or blank is the caller's default value.
func (p *EnvProvider) BooleanEvaluation(_ context.Context, flag string, defaultValue bool, _ openfeature.FlattenedContext) openfeature.BoolResolutionDetail {
	if flag != KillSwitchKey {
		if _, ok := sources(flag); ok {
			return boolError(defaultValue, openfeature.NewTypeMismatchResolutionError(flag+" is a string flag"))
		}
		return boolError(defaultValue, notFound(flag))
	}
	raw, ok := p.lookup(EnvKillSwitch)
	if !ok || strings.TrimSpace(raw) == "" {
		return openfeature.BoolResolutionDetail{
			Value:                    defaultValue,
			ProviderResolutionDetail: openfeature.ProviderResolutionDetail{Reason: openfeature.DefaultReason},
		}
	}
	b, err := parseEnvBool(raw)
	if err != nil {
		return boolError(defaultValue, openfeature.NewParseErrorResolutionError(
			fmt.Sprintf("%s=%q: %v", EnvKillSwitch, clip(raw), err)))
	}
	variant := "off"
	if b {
		variant = "on"
	}
	return openfeature.BoolResolutionDetail{
		Value: b,
		ProviderResolutionDetail: openfeature.ProviderResolutionDetail{
			Reason: openfeature.StaticReason, Variant: variant, FlagMetadata: killMeta,
		},
	}
}

// FloatEvaluation serves no float flag.
func (p *EnvProvider) FloatEvaluation(_ context.Context, flag string, defaultValue float64, _ openfeature.FlattenedContext) openfeature.FloatResolutionDetail {
	return openfeature.FloatResolutionDetail{Value: defaultValue, ProviderResolutionDetail: wrongKind(flag)}
}

// IntEvaluation serves no integer flag.
func (p *EnvProvider) IntEvaluation(_ context.Context, flag string, defaultValue int64, _ openfeature.FlattenedContext) openfeature.IntResolutionDetail {
	return openfeature.IntResolutionDetail{Value: defaultValue, ProviderResolutionDetail: wrongKind(flag)}
}

// ObjectEvaluation serves no object flag.
func (p *EnvProvider) ObjectEvaluation(_ context.Context, flag string, defaultValue any, _ openfeature.FlattenedContext) openfeature.InterfaceResolutionDetail {
	return openfeature.InterfaceResolutionDetail{Value: defaultValue, ProviderResolutionDetail: wrongKind(flag)}
}

func wrongKind(flag string) openfeature.ProviderResolutionDetail {
	if _, ok := sources(flag); ok || flag == KillSwitchKey {
		return errDetail(openfeature.NewTypeMismatchResolutionError(flag + " is not of this type"))
	}
	return errDetail(notFound(flag))
}

func notFound(flag string) openfeature.ResolutionError {
	return openfeature.NewFlagNotFoundResolutionError("flags.EnvProvider serves no flag " + flag)
}

func errDetail(e openfeature.ResolutionError) openfeature.ProviderResolutionDetail {
	return openfeature.ProviderResolutionDetail{ResolutionError: e, Reason: openfeature.ErrorReason}
}

func stringError(def string, e openfeature.ResolutionError) openfeature.StringResolutionDetail {
	return openfeature.StringResolutionDetail{Value: def, ProviderResolutionDetail: errDetail(e)}
}

func boolError(def bool, e openfeature.ResolutionError) openfeature.BoolResolutionDetail {
	return openfeature.BoolResolutionDetail{Value: def, ProviderResolutionDetail: errDetail(e)}
}

// clip shortens a value quoted in an error message.
func clip(s string) string {
	const n = 64
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// parseEnvBool reads a boolean variable: true/1/yes/on/enabled or
// false/0/no/off/disabled, case-insensitively and ignoring surrounding space.
func parseEnvBool(s string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true", "1", "yes", "on", "enabled":
		return true, nil
	case "false", "0", "no", "off", "disabled":
		return false, nil
	}
	return false, fmt.Errorf("flags: not a boolean %q (want true or false)", clip(s))
}

// parseEnvMode reads an ENABLE_REALTIME_* variable: a boolean (true →
// Shadow, false → Legacy) or any value [ParseMode] accepts.
func parseEnvMode(s string) (Mode, error) {
	if b, err := parseEnvBool(s); err == nil {
		if b {
			return Shadow, nil
		}
		return Legacy, nil
	}
	m, err := ParseMode(s)
	if err != nil {
		return Legacy, fmt.Errorf("flags: %q is neither a boolean nor a mode (want true, false, legacy, shadow, primary or realtime)", clip(s))
	}
	return m, nil
}
