package flags_test

import (
	"context"
	"fmt"

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
		flags.ModeKey(flags.ScopeVideoReady): modeFlag("legacy"),
	})
	if err := api.SetProviderAndWait(ctx, provider); err != nil {
		fmt.Println(err)
		return
	}
	ev := flags.NewEvaluator(api.NewClient(), &flags.Options{App: "astro-party", Environment: "staging"})

	scope := flags.ScopeOf("video.asset.ready")
	fmt.Println(scope, ev.Mode(ctx, scope, "video-123"))

	provider.UpdateFlags(map[string]memprovider.InMemoryFlag{
		flags.ModeKey(flags.ScopeVideoReady): modeFlag("shadow"),
	})
	m := ev.Mode(ctx, scope, "video-123")
	fmt.Println(scope, m, "partykit:", m.PublishesLegacy(), "realtime:", m.PublishesRealtime())

	kill := memprovider.InMemoryFlag{State: memprovider.Enabled, DefaultVariant: "on", Variants: map[string]any{"on": true}}
	provider.UpdateFlags(map[string]memprovider.InMemoryFlag{
		flags.ModeKey(flags.ScopeVideoReady): modeFlag("shadow"),
		flags.KillSwitchKey:                  kill,
	})
	fmt.Println(scope, ev.Mode(ctx, scope, "video-123"))
	// Output:
	// video-ready legacy
	// video-ready shadow partykit: true realtime: true
	// video-ready legacy
}

// The environment provider serves the migration plan's variables. LookupEnv
// is injected here; by default it is os.LookupEnv, read on every publish.
func ExampleNewEnvProvider() {
	ctx := context.Background()
	env := map[string]string{
		"ENABLE_REALTIME_VIDEO_REALTIME": "true",     // every video-* scope → shadow
		"REALTIME_VIDEO_READY_MODE":      "primary",  // … but video-ready is further along
		"ENABLE_REALTIME_TRANSCRIPT":     "false",    // transcript stays on PartyKit
		"REALTIME_DEFAULT_MODE":          "realtime", // everything else is migrated
	}
	provider := flags.NewEnvProvider(&flags.EnvOptions{LookupEnv: func(k string) (string, bool) {
		v, ok := env[k]
		return v, ok
	}})

	api := isolated.NewAPI()
	defer func() { _ = api.Shutdown(ctx) }()
	if err := api.SetProviderAndWait(ctx, provider); err != nil {
		fmt.Println(err)
		return
	}
	ev := flags.NewEvaluator(api.NewClient(), nil)
	for _, s := range flags.Scopes {
		fmt.Printf("%-13s %s\n", s, ev.Mode(ctx, s, "room"))
	}

	env["REALTIME_KILL_SWITCH"] = "true" // rollback, no restart
	fmt.Println("killed:", ev.Mode(ctx, flags.ScopeVideoReady, "room"))
	// Output:
	// video-upload  shadow
	// video-ready   primary
	// video-errored shadow
	// transcript    legacy
	// ai-stream     realtime
	// default       realtime
	// killed: legacy
}

// Without a provider every scope is legacy: the safe default.
func ExampleNewEvaluator_noProvider() {
	ev := flags.NewEvaluator(nil, nil)
	fmt.Println(ev.Mode(context.Background(), flags.ScopeAIStream, "room"))
	// Output: legacy
}
