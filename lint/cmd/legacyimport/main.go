// Command legacyimport reports imports of PartyKit packages — the deprecated
// github.com/coursebuilder/realtime-go/legacyparty above all — outside an
// allow-list, so that PartyKit does not creep back into code that has moved
// to Inngest Realtime. It also reports each publish through a
// *legacyparty.Provider there, with a suggested fix that publishes through
// the app's Broadcast (realtime.FromContext) instead. See package
// github.com/coursebuilder/realtime-go/lint/legacyimport for the rules.
//
// Standalone, on package patterns (test files included unless -test=false):
//
//	legacyimport -allow=github.com/coursebuilder/realtime-go/examples/... ./...
//
// As a vet tool, through the go command (test files always included):
//
//	go build -o /tmp/legacyimport github.com/coursebuilder/realtime-go/lint/cmd/legacyimport
//	go vet -vettool=/tmp/legacyimport -allow=github.com/coursebuilder/realtime-go/examples/... ./...
//
// It exits with status 3 (standalone) or 1 (go vet) when it reports
// anything, 0 when it reports nothing.
//
// To apply the suggested fixes (-diff prints the patch instead):
//
//	legacyimport -fix ./...
//	go vet -vettool=/tmp/legacyimport -fix ./...
//	go fix -fixtool=/tmp/legacyimport ./...
//
// With -fix, findings without a fix are not printed and the status is 0:
// run it again without -fix to see what is left.
package main

import (
	"golang.org/x/tools/go/analysis/singlechecker"

	"github.com/coursebuilder/realtime-go/lint/legacyimport"
)

func main() { singlechecker.Main(legacyimport.Analyzer) }
