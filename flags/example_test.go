package flags_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/open-feature/go-sdk/openfeature/isolated"
	"github.com/open-feature/go-sdk/openfeature/memprovider"

	"github.com/coursebuilder/realtime-go/flags"
)

// modeFlag is an in-memory string flag serving mode.
func modeFlag(mode string) memprovider.InMemoryFlag {
	return memprovider.InMemoryFlag{
		State:          memprovider.Enabled,
		DefaultVariant: mode,
		Variants:       map[string]any{mode: mode},
	}
}

// An in-memory provider flips video-ready from legacy to shadow between two
// publishes; the kill switch then sends it back to legacy.
func ExampleEvaluator() {
	ctx := context.Background()
	api := isolated.NewAPI() // never the global singleton
	defer func() { _ = api.Shutdown(ctx) }()

	provider := memprovider.NewInMemoryProvider(map[string]memprovider.InMemoryFlag{
		flags.ScopeVideoReady.ModeKey(): modeFlag("legacy"),
	})
	if err := api.SetProviderAndWait(ctx, provider); err != nil {
		fmt.Println(err)
		return
	}
	// By default a resolved mode is reused for up to a second, or until the
	// provider's change event arrives (the SDK delivers it asynchronously,
	// within microseconds). CacheTTL < 0 evaluates on every call, so that
	// each line below is certain to see the flag set just before it.
	ev := flags.NewEvaluator(api.NewClient(), &flags.Options{App: "astro-party", Environment: "staging", CacheTTL: -1})
	defer ev.Close()

	scope := flags.ScopeOf("video.asset.ready")
	fmt.Println(scope, ev.Mode(ctx, scope, "video-123"))

	provider.UpdateFlags(map[string]memprovider.InMemoryFlag{
		flags.ScopeVideoReady.ModeKey(): modeFlag("shadow"),
	})
	m := ev.Mode(ctx, scope, "video-123")
	fmt.Println(scope, m, "partykit:", m.PublishesLegacy(), "realtime:", m.PublishesRealtime())

	kill := memprovider.InMemoryFlag{State: memprovider.Enabled, DefaultVariant: "on", Variants: map[string]any{"on": true}}
	provider.UpdateFlags(map[string]memprovider.InMemoryFlag{
		flags.ScopeVideoReady.ModeKey(): modeFlag("shadow"),
		flags.KillSwitchKey:             kill,
	})
	fmt.Println(scope, ev.Mode(ctx, scope, "video-123"))
	// Output:
	// video-ready legacy
	// video-ready shadow partykit: true realtime: true
	// video-ready legacy
}

// The environment provider serves the migration plan's variables from the
// process environment. In a deployment they are set where the process
// starts and apply from its next start (use EnvOptions.File for variables
// that change while it runs); here the example sets them itself.
func ExampleNewEnvProvider() {
	ctx := context.Background()
	for k, v := range map[string]string{
		"ENABLE_REALTIME_VIDEO_REALTIME": "true",     // every video-* scope → shadow
		"REALTIME_VIDEO_READY_MODE":      "primary",  // … but video-ready is further along
		"ENABLE_REALTIME_TRANSCRIPT":     "false",    // transcript stays on PartyKit
		"REALTIME_DEFAULT_MODE":          "realtime", // everything else is migrated
	} {
		_ = os.Setenv(k, v)
		defer os.Unsetenv(k)
	}
	provider := flags.NewEnvProvider(nil)

	api := isolated.NewAPI()
	defer func() { _ = api.Shutdown(ctx) }()
	if err := api.SetProviderAndWait(ctx, provider); err != nil {
		fmt.Println(err)
		return
	}
	ev := flags.NewEvaluator(api.NewClient(), nil)
	defer ev.Close()
	for _, s := range flags.Scopes {
		fmt.Printf("%-13s %s\n", s, ev.Mode(ctx, s, "room"))
	}
	// Output:
	// video-upload  shadow
	// video-ready   primary
	// video-errored shadow
	// transcript    legacy
	// ai-stream     realtime
	// default       realtime
}

// A flags file changes while the process runs: the provider re-reads it
// every PollInterval (250ms by default) and at once on Refresh, and the
// Evaluator drops its cache on the provider's change event. Here polling is
// off and the cache too, so the output does not depend on timing.
func ExampleEnvOptions_file() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "flags-example-")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "realtime.flags")
	write := func(content string) {
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			fmt.Println(err)
		}
	}
	write("# rollout of video.asset.ready\nREALTIME_VIDEO_READY_MODE=primary\n")

	provider := flags.NewEnvProvider(&flags.EnvOptions{File: path, PollInterval: -1})
	api := isolated.NewAPI()
	defer func() { _ = api.Shutdown(ctx) }()
	if err := api.SetProviderAndWait(ctx, provider); err != nil {
		fmt.Println(err)
		return
	}
	ev := flags.NewEvaluator(api.NewClient(), &flags.Options{CacheTTL: -1})
	defer ev.Close()
	fmt.Println("before:", ev.Mode(ctx, flags.ScopeVideoReady, "room"))

	write("REALTIME_VIDEO_READY_MODE=primary\nREALTIME_KILL_SWITCH=true\n") // rollback, no restart
	if err := provider.Refresh(); err != nil {
		fmt.Println(err)
	}
	fmt.Println("killed:", ev.Mode(ctx, flags.ScopeVideoReady, "room"))
	// Output:
	// before: primary
	// killed: legacy
}

// Without a provider every scope is legacy: the safe default.
func ExampleNewEvaluator_noProvider() {
	ev := flags.NewEvaluator(nil, nil)
	fmt.Println(ev.Mode(context.Background(), flags.ScopeAIStream, "room"))
	// Output: legacy
}
