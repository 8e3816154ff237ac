// Command rehearsal walks the runbook's rollback, from a fault of Inngest to
// PartyKit only and back, on loopback with short intervals, and prints how
// long each step took:
//
//	cd examples && go run ./rehearsal
//
// It needs Debian's prometheus package (/usr/bin/prometheus) and the
// PartyKit dev server (npm ci --prefix harness/partykit/server, from the
// repository root), and takes about half a minute (up to a minute with
// -fault hang).
//
// It starts the real Inngest realtime server (harness/inngestrt) behind a
// fault proxy, the real PartyKit dev server, an app whose Broadcast reads a
// flags file (video-ready in primary mode: browsers read Inngest) and
// serves its metrics on /metrics through the OpenTelemetry Prometheus
// exporter, a real Prometheus that scrapes it every second with a copy of
// monitoring/alerts.yml shortened by promtest.Short, and a Go subscriber on
// each transport for the room. The app publishes a video.asset.ready every
// 150 ms. Then, as docs/runbook.md says:
//
//  1. Fault: the real server refuses the app's signing key (-fault key; or
//     down, hang). The page, RealtimePublishErrorRateHigh for video-ready
//     and transport inngest, goes pending, then firing.
//  2. Kill switch: the runbook's own setflag function and command text,
//     run with sh against the flags file: setflag REALTIME_KILL_SWITCH true.
//     PartyKit only: the gauge realtime_broadcast_mode says legacy (and
//     the runbook's query of modes other than legacy returns nothing), and
//     a message published after it reached PartyKit, logged in legacy mode
//     on PartyKit alone, while Inngest receives nothing new. The page clears.
//  3. The fault is removed; all clear once no alert is pending or firing
//     and no Inngest failure of the scope is left in the page's window
//     (so that undoing the kill switch does not page again).
//  4. Undo: setflag REALTIME_KILL_SWITCH false. The gauge says primary
//     again and a message published after it is delivered on Inngest; the
//     page stays quiet.
//
// It exits non-zero when the steps of a phase (those it waits for together)
// do not all happen within -deadline.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	cfg := config{Out: os.Stdout}
	flag.StringVar(&cfg.Runbook, "runbook", "../docs/runbook.md", "the runbook whose setflag function and commands are run")
	flag.StringVar(&cfg.Rules, "rules", "../monitoring/alerts.yml", "the alerting rules (shortened with promtest.Short before loading)")
	flag.StringVar(&cfg.Fault, "fault", faultKey, "the fault of Inngest: key (the key refused), down or hang")
	flag.DurationVar(&cfg.Every, "every", 150*time.Millisecond, "how often the app publishes")
	flag.DurationVar(&cfg.Limit, "deadline", 3*time.Minute, "how long each phase (the steps waited for together) may take before the rehearsal fails")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if _, err := run(ctx, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "rehearsal:", err)
		os.Exit(1)
	}
}
