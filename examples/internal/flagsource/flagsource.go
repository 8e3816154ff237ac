// Package flagsource builds, for the examples' operational commands (canary,
// parity), the same flag Resolver the app builds: a flags.Evaluator over the
// app's flag source, so that what they check is the mode the app would be
// in. The source is either the app's flags file and process environment
// (flags.EnvProvider with EnvOptions.File) or the app's flag service through
// its OpenFeature provider.
//
// No flag-service provider ships with the examples: the OpenFeature
// providers of flag services (OFREP, flagd, LaunchDarkly, …) are modules of
// their own that this repository does not depend on. A deployment with a
// flag service passes its provider as Options.Provider — in the canary and
// parity, by adding to the command's directory a file whose init sets
// ServiceProvider — and the commands then read exactly what the app reads.
package flagsource

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/open-feature/go-sdk/openfeature"
	"github.com/open-feature/go-sdk/openfeature/isolated"
	"go.uber.org/zap"

	"github.com/coursebuilder/realtime-go/flags"
)

// ServiceProvider, when set before a command runs, is the OpenFeature
// provider of the app's flag service; Open then uses it for every Options
// whose Provider is nil. It is the hook for deployments with a flag
// service: a file added to a command's package main sets it in an init
// function.
var ServiceProvider openfeature.FeatureProvider

// Options says where the app's flags live.
type Options struct {
	// File is the app's flags file (flags.EnvOptions.File): KEY=VALUE
	// lines re-read while the process runs. Empty reads the process
	// environment only.
	File string
	// Provider is the app's flag-service provider. When set (or when
	// ServiceProvider is), it is the source and File is not read.
	Provider openfeature.FeatureProvider
	// App and Environment are the evaluation context attributes the app
	// sends (flags.Options.App, Environment), which a flag service may
	// target on.
	App, Environment string
	// Logger receives the Evaluator's fallback lines. Defaults to
	// zap.NewNop().
	Logger *zap.Logger
}

// Source is an open flag source and the Evaluator over it.
type Source struct {
	api  *openfeature.EvaluationAPI
	env  *flags.EnvProvider
	desc string
	// Evaluator resolves modes as the app does (default cache of 1s,
	// dropped on every change event of the provider).
	Evaluator *flags.Evaluator
}

// Open sets the provider on an isolated OpenFeature API and returns the
// source once the provider is ready.
func Open(ctx context.Context, o Options) (*Source, error) {
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.Provider == nil {
		o.Provider = ServiceProvider
	}
	s := &Source{}
	provider := o.Provider
	if provider == nil {
		if o.File != "" {
			if _, err := os.Stat(o.File); err != nil {
				return nil, fmt.Errorf("flags file: %w", err)
			}
		}
		s.env = flags.NewEnvProvider(&flags.EnvOptions{File: o.File})
		provider = s.env
		s.desc = "the process environment"
		if o.File != "" {
			s.desc = "flags file " + o.File + " (re-read every 250ms), then the process environment"
		}
	} else {
		s.desc = "flag service (OpenFeature provider " + provider.Metadata().Name + ")"
	}
	s.api = isolated.NewAPI()
	if err := s.api.SetProviderAndWait(ctx, provider); err != nil {
		_ = s.api.Shutdown(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("flag provider: %w", err)
	}
	s.Evaluator = flags.NewEvaluator(s.api.NewClient(), &flags.Options{App: o.App, Environment: o.Environment, Logger: o.Logger})
	return s, nil
}

// String says where the flags are read from.
func (s *Source) String() string { return s.desc }

// Refresh re-reads the flags file now (flags.EnvProvider.Refresh); a no-op
// for a flag service.
func (s *Source) Refresh() error {
	if s.env == nil {
		return nil
	}
	return s.env.Refresh()
}

// Close stops the Evaluator and shuts the provider down.
func (s *Source) Close() error {
	if s == nil {
		return nil
	}
	_ = s.Evaluator.Close()
	return s.api.Shutdown(context.Background())
}

// ScopeMode is the mode of one scope.
type ScopeMode struct {
	Scope flags.Scope
	Mode  flags.Mode
}

// Modes resolves every scope of flags.Scopes for room, as the app would
// for a publish to that room.
func Modes(ctx context.Context, r flags.Resolver, room string) []ScopeMode {
	out := make([]ScopeMode, 0, len(flags.Scopes))
	for _, sc := range flags.Scopes {
		out = append(out, ScopeMode{sc, r.Mode(ctx, sc, room).OrLegacy()})
	}
	return out
}

// Format renders modes as "video-upload=legacy video-ready=shadow …".
func Format(modes []ScopeMode) string {
	parts := make([]string, len(modes))
	for i, m := range modes {
		parts[i] = string(m.Scope) + "=" + m.Mode.String()
	}
	return strings.Join(parts, " ")
}

// EnvSet reports whether any variable the flags package reads
// (flags.EnvVariables) is set in the process environment.
func EnvSet() bool {
	for _, k := range flags.EnvVariables() {
		if strings.TrimSpace(os.Getenv(k)) != "" {
			return true
		}
	}
	return false
}

// Setflag is the runbook's setflag shell function for the flags file at
// path: "setflag VAR VALUE" sets one variable and keeps the other lines,
// through a temporary file and a rename, so that undoing the kill switch
// gives each scope back its mode.
func Setflag(path string) string {
	return `setflag() { f=` + shellQuote(path) + `; { grep -v -E "^[[:space:]]*(export[[:space:]]+)?$1[[:space:]]*=" "$f"; echo "$1=$2"; } > "$f.tmp" && mv "$f.tmp" "$f"; }`
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// Choice is how a command picks the modes it checks: the app's flags, or a
// mode fixed on its command line.
type Choice struct {
	// Mode is the command's -mode: "", "flags" or "env" read the app's
	// flags (Options); a mode name fixes every scope to it.
	Mode string
	// Unset, when not empty, makes the command check shadow mode (both
	// transports) when no flags are given at all — no file, no flag
	// variable, no flag service — and ends the line that says so.
	Unset string
	Options
}

// Choose returns the Resolver of c, the line that says where its modes come
// from ("" when there is nothing to say), and the func that closes the
// flag source.
func Choose(ctx context.Context, c Choice) (r flags.Resolver, desc string, closeFn func() error, err error) {
	none := func() error { return nil }
	m := strings.ToLower(c.Mode)
	if m == "" && c.Unset != "" && c.File == "" && c.Provider == nil && ServiceProvider == nil && !EnvSet() {
		return flags.Fixed(flags.Shadow), "none given (no -flags, no flag variable, no flag service)" + c.Unset, none, nil
	}
	switch m {
	case "", "flags", "env":
		src, err := Open(ctx, c.Options)
		if err != nil {
			return nil, "", none, err
		}
		return src.Evaluator, src.String(), src.Close, nil
	}
	mode, err := flags.ParseMode(m)
	if err != nil {
		return nil, "", none, fmt.Errorf("-mode: %w", err)
	}
	return flags.Fixed(mode), "not read (-mode " + mode.String() + ")", none, nil
}

// WriteFile replaces the flags file at path with content atomically (a
// temporary file beside it, then a rename), so that the provider never
// reads it half-written.
func WriteFile(path, content string) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".flags-*")
	if err != nil {
		return err
	}
	if _, err := tmp.WriteString(content); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return os.Rename(tmp.Name(), path)
}
