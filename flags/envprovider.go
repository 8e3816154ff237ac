package flags

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/open-feature/go-sdk/openfeature"
)

// Environment variables the [EnvProvider] reads besides the per-scope ones
// (the package documentation has the full table; [EnvVariables] lists them).
const (
	// envKillSwitch holds [KillSwitchKey]: a boolean, unset means false.
	envKillSwitch = "REALTIME_KILL_SWITCH"
	// envVideoRealtime is the plan's per-app switch for every video-* scope,
	// below the per-scope variables in precedence.
	envVideoRealtime = "ENABLE_REALTIME_VIDEO_REALTIME"
)

// defaultPollInterval is EnvOptions.PollInterval's default.
const defaultPollInterval = 250 * time.Millisecond

// maxFlagsFile bounds the size of a flags file.
const maxFlagsFile = 1 << 20

// EnvOptions configures an [EnvProvider]. A nil *EnvOptions means every
// default.
type EnvOptions struct {
	// File is a flags file of KEY=VALUE lines (blank lines, "# comments" and
	// an "export " prefix allowed; surrounding quotes are stripped; the last
	// line of a key wins) holding the same variables. A variable set in the
	// file wins over the process environment (os.LookupEnv). Unlike the
	// environment, the file can change while the process runs: the provider
	// re-reads it every PollInterval while it is registered with an
	// OpenFeature API (between Init and Shutdown) and on
	// [EnvProvider.Refresh], and when its content changed
	// emits a PROVIDER_CONFIGURATION_CHANGED event, on which an [Evaluator]
	// drops its cache. A missing file sets nothing; a file that cannot be
	// read makes every flag a GENERAL error until it can. Empty means no
	// file.
	File string
	// PollInterval is how often File is checked for changes. Defaults to
	// 250ms; zero means the default, negative turns polling off (changes
	// are then read on [EnvProvider.Refresh] only).
	PollInterval time.Duration
}

// EnvProvider is an OpenFeature provider backed by environment variables
// and, optionally, a flags file (EnvOptions.File), for deployments without a
// flag service. It serves [KillSwitchKey] and s.ModeKey() for every scope s
// and ignores the evaluation context: every room of a process gets the same
// answer. Create one with [NewEnvProvider].
//
// A mode flag whose variables are all unset or empty resolves to the
// caller's default value with reason DEFAULT; a variable holding something
// unparseable resolves to a PARSE_ERROR naming it, which an [Evaluator]
// counts as a fallback. A flag key it does not serve is FLAG_NOT_FOUND.
//
// EnvProvider implements openfeature.StateHandler (Init starts watching the
// file, Shutdown stops it; both are no-ops without a file) and
// openfeature.EventHandler.
type EnvProvider struct {
	file   string
	poll   time.Duration
	snap   atomic.Pointer[fileSnapshot]
	events chan openfeature.Event

	mu   sync.Mutex // serialises Refresh and the watcher's start and stop
	stop chan struct{}
	done chan struct{}
}

// fileSnapshot is what the flags file held at the last read; immutable.
type fileSnapshot struct {
	raw  []byte
	vars map[string]string
	err  error // a read error other than "does not exist"
}

var (
	_ openfeature.FeatureProvider = (*EnvProvider)(nil)
	_ openfeature.StateHandler    = (*EnvProvider)(nil)
	_ openfeature.EventHandler    = (*EnvProvider)(nil)
)

// NewEnvProvider returns an EnvProvider. With a file it reads the file once
// before returning.
func NewEnvProvider(opts *EnvOptions) *EnvProvider {
	p := &EnvProvider{poll: defaultPollInterval, events: make(chan openfeature.Event, 4)}
	if opts != nil {
		p.file = opts.File
		if opts.PollInterval != 0 {
			p.poll = opts.PollInterval
		}
	}
	if p.file != "" {
		_ = p.Refresh() // a read error is kept in the snapshot and reported per flag
	}
	return p
}

// Init starts watching the flags file (every EnvOptions.PollInterval), after
// reading it once more. It never fails: a file that cannot be read is
// reported by every evaluation until it can.
func (p *EnvProvider) Init(openfeature.EvaluationContext) error {
	if p.file == "" {
		return nil
	}
	_ = p.Refresh()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.poll < 0 || p.stop != nil {
		return nil
	}
	p.stop, p.done = make(chan struct{}), make(chan struct{})
	go p.watch(p.stop, p.done)
	return nil
}

// Shutdown stops watching the flags file and waits for the watcher to end.
// Safe to call more than once; a later Init starts watching again.
func (p *EnvProvider) Shutdown() {
	p.mu.Lock()
	stop, done := p.stop, p.done
	p.stop, p.done = nil, nil
	p.mu.Unlock()
	if stop != nil {
		close(stop)
		<-done
	}
}

func (p *EnvProvider) watch(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(p.poll)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			_ = p.Refresh()
		}
	}
}

// EventChannel returns the channel of the provider's events: one
// PROVIDER_CONFIGURATION_CHANGED each time the flags file is found changed.
// It is never closed. Events that find it full are dropped: one pending
// change event already tells a listener to re-read every flag.
func (p *EnvProvider) EventChannel() <-chan openfeature.Event { return p.events }

// Refresh reads the flags file now and, when its content (or whether it can
// be read) changed, makes the new variables current and emits a
// PROVIDER_CONFIGURATION_CHANGED event. A program that writes the file
// itself calls Refresh to apply it at once instead of at the next poll. It
// returns the read error, nil for a missing file, and nil without a file.
func (p *EnvProvider) Refresh() error {
	if p.file == "" {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	raw, err := readFlagsFile(p.file)
	old := p.snap.Load()
	if old != nil && bytes.Equal(old.raw, raw) && (old.err == nil) == (err == nil) {
		return err
	}
	next := &fileSnapshot{raw: raw, err: err}
	if err == nil {
		next.vars = parseFlagsFile(raw)
	} else if old != nil {
		next.raw, next.vars = old.raw, old.vars
	}
	p.snap.Store(next)
	if old != nil {
		select {
		case p.events <- openfeature.Event{
			ProviderName: envProviderName,
			EventType:    openfeature.ProviderConfigChange,
			ProviderEventDetails: openfeature.ProviderEventDetails{
				Message: "flags file " + p.file + " changed",
			},
		}:
		default:
		}
	}
	return err
}

// readFlagsFile returns the content of path: nil and no error when it does
// not exist.
func readFlagsFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("flags: flags file: %w", err)
	}
	defer f.Close()
	raw, err := io.ReadAll(io.LimitReader(f, maxFlagsFile+1))
	if err != nil {
		return nil, fmt.Errorf("flags: flags file: %w", err)
	}
	if len(raw) > maxFlagsFile {
		return nil, fmt.Errorf("flags: flags file %s is larger than %d bytes", path, maxFlagsFile)
	}
	return raw, nil
}

// parseFlagsFile reads KEY=VALUE lines: blank lines and # comments are
// skipped, an "export " prefix is allowed, surrounding space and one pair of
// matching quotes around the value are stripped, and a later line of the
// same key wins, as in a shell. A line without '=' sets nothing.
func parseFlagsFile(raw []byte) map[string]string {
	vars := map[string]string{}
	// Lines end in \n, \r\n or a lone \r (as an old editor may save them).
	text := strings.ReplaceAll(strings.ReplaceAll(string(raw), "\r\n", "\n"), "\r", "\n")
	for line := range strings.Lines(text) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		line = strings.TrimPrefix(line, "export ")
		k, v, ok := strings.Cut(line, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			continue
		}
		v = strings.TrimSpace(v)
		if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
			v = v[1 : len(v)-1]
		}
		vars[k] = v
	}
	return vars
}

// get reads one variable: from the flags file if it sets it, else from the
// process environment. While the file cannot be read, every variable is an
// error.
func (p *EnvProvider) get(name string) (string, bool, error) {
	if p.file != "" {
		if s := p.snap.Load(); s != nil {
			if s.err != nil {
				return "", false, s.err
			}
			if v, ok := s.vars[name]; ok {
				return v, true, nil
			}
		}
	}
	v, ok := os.LookupEnv(name)
	return v, ok, nil
}

const envProviderName = "flags.EnvProvider"

// Metadata names the provider "flags.EnvProvider".
func (p *EnvProvider) Metadata() openfeature.Metadata {
	return openfeature.Metadata{Name: envProviderName}
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
		m[s.ModeKey()] = sourcesOf(s)
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
		out = append(out, src(envVideoRealtime, false))
	}
	return out
}

// EnvVariables returns the names of the environment variables an
// [EnvProvider] reads for [KillSwitchKey] and the mode flags of [Scopes]:
// REALTIME_KILL_SWITCH, then for each scope in order REALTIME_<SCOPE>_MODE
// and ENABLE_REALTIME_<SCOPE> (none for default), with
// ENABLE_REALTIME_VIDEO_REALTIME after the first video-* scope. Mode flags
// of scopes outside [Scopes] read variables of the same form, not listed.
//
// A program whose flags must come from its flags file alone unsets these at
// start (os.Unsetenv), so that nothing from the shell it was started from
// applies; a test package does the same in TestMain and sets what a test
// needs with t.Setenv. The slice is new on every call.
func EnvVariables() []string {
	out := []string{envKillSwitch}
	seen := map[string]bool{envKillSwitch: true}
	for _, s := range knownScopes { // Scopes, but not a variable a caller can change
		for _, src := range envSources[s.ModeKey()] {
			if !seen[src.name] {
				seen[src.name] = true
				out = append(out, src.name)
			}
		}
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
		raw, ok, err := p.get(v.name)
		if err != nil {
			return stringError(defaultValue, openfeature.NewGeneralResolutionError(err.Error()))
		}
		if !ok || strings.TrimSpace(raw) == "" {
			continue
		}
		var m Mode
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

var killMeta = openfeature.FlagMetadata{"source": envKillSwitch}

// BooleanEvaluation resolves [KillSwitchKey] from REALTIME_KILL_SWITCH; unset
// or blank is the caller's default value.
func (p *EnvProvider) BooleanEvaluation(_ context.Context, flag string, defaultValue bool, _ openfeature.FlattenedContext) openfeature.BoolResolutionDetail {
	if flag != KillSwitchKey {
		if _, ok := sources(flag); ok {
			return boolError(defaultValue, openfeature.NewTypeMismatchResolutionError(flag+" is a string flag"))
		}
		return boolError(defaultValue, notFound(flag))
	}
	raw, ok, err := p.get(envKillSwitch)
	if err != nil {
		return boolError(defaultValue, openfeature.NewGeneralResolutionError(err.Error()))
	}
	if !ok || strings.TrimSpace(raw) == "" {
		return openfeature.BoolResolutionDetail{
			Value:                    defaultValue,
			ProviderResolutionDetail: openfeature.ProviderResolutionDetail{Reason: openfeature.DefaultReason},
		}
	}
	b, err := parseEnvBool(raw)
	if err != nil {
		return boolError(defaultValue, openfeature.NewParseErrorResolutionError(
			fmt.Sprintf("%s=%q: %v", envKillSwitch, clip(raw), err)))
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
