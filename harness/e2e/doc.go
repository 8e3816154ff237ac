// Package e2e holds the end-to-end tests of github.com/coursebuilder/realtime-go
// against real peers: the Inngest Realtime API served in-process by
// harness/inngestrt (the Inngest server's own realtime package over
// miniredis) and the PartyKit dev server (npm partykit with workerd) serving
// course-builder's party from harness/partykit/server.
//
// The package has no code of its own; everything is in its _test.go files:
//
//   - the realtimetest conformance suite against both real transports;
//   - Inngest faults (wrong and rotated signing keys, oversize payloads,
//     server down, slow server, 503, 400, branch environments);
//   - PartyKit faults (server down, room escaping);
//   - broadcast end to end in every migration mode, with outages of either
//     transport and a flag flipped between publishes.
//
// Run them from the harness module:
//
//	npm ci --prefix partykit/server --no-audit --no-fund   # once
//	go test -race -count=1 ./e2e/
//
// Without node_modules the PartyKit tests skip, unless CI is set: then they
// fail. One PartyKit dev server and one Inngest endpoint are shared by the
// whole test binary; tests that inject faults start Inngest endpoints of
// their own. Every test uses rooms of its own, so the tests stay independent.
package e2e
