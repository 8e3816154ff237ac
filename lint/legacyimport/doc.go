// Package legacyimport is a go/analysis pass that stops PartyKit from creeping
// back into code that has moved to Inngest Realtime.
//
// It reports every import of a denied package — by default the deprecated
// PartyKit provider github.com/coursebuilder/realtime-go/legacyparty (and
// its subpackages) and any import path that mentions partykit or
// partysocket — from a package that is not on the allow-list. Named,
// dot and blank imports are reported like plain ones, and so are imports
// in _test.go files: a test that needs PartyKit belongs to an allowed
// package. The message names the import, the importing package, what to use
// instead and the migration guide (one line, wrapped here):
//
//	video/video.go:3:8: import of deprecated PartyKit package
//	  "github.com/coursebuilder/realtime-go/legacyparty" in example.com/app/video
//	  is not allowed: publish through inngest.Provider or broadcast.Broadcast
//	  instead (migration guide: https://github.com/coursebuilder/realtime-go/blob/main/docs/migration.md;
//	  to keep it during the migration, add example.com/app/video to -allow)
//
// # Flags
//
//	-allow    comma-separated patterns of importing packages that may import a
//	          denied package, e.g. github.com/coursebuilder/realtime-go/examples/...,.../internal/...
//	          (default: none)
//	-deny     comma-separated patterns of denied import paths (default
//	          github.com/coursebuilder/realtime-go/legacyparty/...,...partykit...,...partysocket...)
//	-guide    the migration guide the message points at
//
// Patterns follow the go command's package patterns: "..." matches any
// string, slashes included, and a trailing "/..." also matches the path
// before it (net/... matches net and net/http). A pattern without "..." is
// an exact import path. An external test package (path ending in _test) is
// matched by the path of the package it tests. A package that a deny
// pattern itself matches — the denied package's own tests and subpackages —
// may import what that pattern denies. The test main the go command
// generates (package main, path ending in .test) is not checked; the
// packages it imports are. Patterns are case-sensitive, as import paths are.
//
// A finding can be silenced only through -allow, never by a comment in the
// importing file: the allow-list stays in one place, where a reviewer sees
// it grow or shrink.
//
// # Running it
//
//	go install github.com/coursebuilder/realtime-go/lint/cmd/legacyimport@latest
//	legacyimport -allow=github.com/coursebuilder/realtime-go/examples/... ./...
//	go vet -vettool=$(which legacyimport) -allow=github.com/coursebuilder/realtime-go/examples/... ./...
//
// The command exits with status 3 (standalone) or 1 (go vet) when it
// reports anything, so either form can gate CI.
//
// # Concurrency
//
// An [*analysis.Analyzer] from [New] holds its configuration in fields that
// are read-only once analysis starts; the driver may run it on many packages
// at once. Set flags before running, never during.
package legacyimport
