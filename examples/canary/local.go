package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"

	"github.com/coursebuilder/realtime-go/broadcast"
	"github.com/coursebuilder/realtime-go/harness/inngestrt"
	"github.com/coursebuilder/realtime-go/harness/partykit"
	"github.com/coursebuilder/realtime-go/legacyparty"
	"github.com/coursebuilder/realtime-go/realtime/inngest"
)

// localOptions configures startLocal.
type localOptions struct {
	// NoPartyKit leaves PartyKit out even when it is installed.
	NoPartyKit bool
	// PartyKitDir is the node project of the dev server ("" means the
	// harness's own).
	PartyKitDir string
	// Wrap wraps the Inngest endpoint's handler (inngestrt.Options.Wrap),
	// for the tests' fault injection.
	Wrap func(http.Handler) http.Handler
	// Logf receives the servers' diagnostics; nil discards them.
	Logf func(format string, args ...any)
	// Out receives one line per server started.
	Out io.Writer
}

// local is the in-process Inngest endpoint and, when installed, the
// PartyKit dev server, with a provider for each.
type local struct {
	inngest  *inngestrt.Server
	party    *partykit.Server
	Inngest  *inngest.Provider
	PartyKit *legacyparty.Provider

	mu   sync.Mutex
	subs map[[2]string]int // WaitSubscribed calls per channel and topic
}

// startLocal starts the servers. Without PartyKit (not installed, or
// NoPartyKit) the PartyKit provider is nil and the canary checks Inngest
// alone.
func startLocal(ctx context.Context, o localOptions) (l *local, err error) {
	if o.Out == nil {
		o.Out = io.Discard
	}
	l = &local{subs: map[[2]string]int{}}
	defer func() {
		if err != nil {
			_ = l.Close()
			l = nil
		}
	}()
	key := inngestrt.NewSigningKey()
	if l.inngest, err = inngestrt.Start(ctx, inngestrt.Options{SigningKeys: []string{key}, Wrap: o.Wrap, Logf: o.Logf}); err != nil {
		return nil, err
	}
	fmt.Fprintf(o.Out, "local: Inngest realtime endpoint (real server code, in-process) at %s\n", l.inngest.URL())
	if l.Inngest, err = inngest.New(&inngest.Options{BaseURL: l.inngest.URL(), SigningKey: key, ChannelSecret: rand.Text() + rand.Text()}); err != nil {
		return nil, err
	}

	why := partykit.Available(o.PartyKitDir)
	switch {
	case o.NoPartyKit:
		fmt.Fprintln(o.Out, "local: PartyKit left out (-no-partykit): checking Inngest alone")
	case why != nil:
		fmt.Fprintf(o.Out, "local: PartyKit not available (%v): checking Inngest alone\n", why)
	default:
		fmt.Fprintln(o.Out, "local: starting the PartyKit dev server (the first build can take a minute)...")
		if l.party, err = partykit.Start(ctx, partykit.Options{Dir: o.PartyKitDir, Logf: o.Logf}); err != nil {
			return nil, err
		}
		fmt.Fprintf(o.Out, "local: PartyKit dev server (real partykit CLI) at %s\n", l.party.URL())
		if l.PartyKit, err = legacyparty.New(&legacyparty.Options{BaseURL: l.party.URL()}); err != nil {
			return nil, err
		}
	}
	return l, nil
}

// config returns the canary configuration over the local servers.
func (l *local) config() Config {
	return Config{Inngest: l.Inngest, PartyKit: l.PartyKit, WaitSubscribed: l.waitSubscribed}
}

// waitSubscribed is Config.WaitSubscribed for the local servers. Inngest:
// the server has completed one more subscription to channel and topic than
// before this call (the canary's room is its own, so the count is the
// canary's connections). PartyKit: the party registers a connection before
// the websocket handshake completes, so an open websocket is subscribed.
func (l *local) waitSubscribed(ctx context.Context, transport, channel, topic string) error {
	if transport != broadcast.TransportInngest {
		return nil
	}
	l.mu.Lock()
	k := [2]string{channel, topic}
	l.subs[k]++
	n := l.subs[k]
	l.mu.Unlock()
	return l.inngest.WaitSubscribed(ctx, channel, topic, n)
}

// Close closes the providers and the servers.
func (l *local) Close() error {
	var errs []error
	if l.PartyKit != nil {
		errs = append(errs, l.PartyKit.Close())
	}
	if l.Inngest != nil {
		errs = append(errs, l.Inngest.Close())
	}
	if l.party != nil {
		errs = append(errs, l.party.Close())
	}
	if l.inngest != nil {
		errs = append(errs, l.inngest.Close())
	}
	return errors.Join(errs...)
}
