// Package legacyimport is a go/analysis pass that stops PartyKit from creeping
// back into code that has moved to Inngest Realtime, and moves direct
// PartyKit publishes onto the app's Broadcast with a suggested fix.
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
// # Publishes, and their fix
//
// In the same packages, when -deny denies legacyparty, every call of
// (*legacyparty.Provider).Publish is reported too (through a variable, a
// field, any expression, or a type that embeds the provider): it goes to
// PartyKit only, whatever the scope's mode flag says, so once the scope
// moves to Inngest Realtime no browser sees it. The call should go through
// the app's Broadcast, which realtime.Middleware puts into every Inngest
// function's context, and the diagnostic comes with a suggested fix, the
// plan's codemod, that does so:
//
//	return s.party.Publish(ctx, msg)
//
// becomes
//
//	return func() error {
//		rt, ok := realtime.FromContext(ctx)
//		if !ok {
//			return realtime.ErrNotConfigured
//		}
//		return rt.Publish(ctx, msg)
//	}()
//
// realtime.FromContext also says whether ctx carries a provider at all, so
// the fix is a function literal, called at once, that fails with
// realtime.ErrNotConfigured where the middleware is missing rather than
// dropping the message. Review the diff: the literal can usually be
// folded into the code around it. The fix keeps what the call evaluates:
// the context argument (reused inside the literal) must be a variable or
// a field; a message that is not one is passed to the literal as its
// argument, so it is evaluated once, before the lookup, as before. The
// receiver is dropped. The literal's names (rt, ok, msg) get a number when
// the call's arguments, or the file's name for package realtime, use them
// already.
//
// The fix imports github.com/coursebuilder/realtime-go/realtime when the
// file lacks it, and uses the file's name for it when it has it (an
// alias included). It deletes the legacyparty import only when the call's
// receiver held the file's last use of it; otherwise the import stays, and
// so does its diagnostic. (The -fix drivers below also delete an import
// that all the fixes of a file together leave unused.)
//
// A publish is reported without a fix when the rewrite could change what
// the program does or would not compile: the context argument is a call or
// another expression with effects, the call is the one of a go or defer
// statement (which evaluates its arguments at once; the literal would read
// them later), package realtime is dot-imported, or the name the fix needs
// for it means something else at the call (a variable named realtime, or
// another package imported as realtime, such as inngestgo's). The message
// then ends with the reason.
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
// To apply the fixes, any of (Go 1.26; -diff prints the patch instead of
// writing it):
//
//	legacyimport -fix ./...
//	go vet -vettool=$(which legacyimport) -fix ./...
//	go fix -fixtool=$(which legacyimport) ./...
//
// With -fix the findings without a fix (the imports, the publishes it
// cannot rewrite) are not printed and the status is 0, so run the check
// again without -fix to see what is left.
//
// # Concurrency
//
// An [*analysis.Analyzer] from [New] holds its configuration in fields that
// are read-only once analysis starts; the driver may run it on many packages
// at once. Set flags before running, never during.
package legacyimport
