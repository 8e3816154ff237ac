#!/usr/bin/env bash
# Runs every test of every module: gofmt, go vet, go test -race, one
# iteration of every benchmark, the browser client's tests (scripts/client.sh),
# and a short pass of each fuzz target. Installs the PartyKit dev server from the pinned
# package-lock first when it is missing. Exits non-zero on any failure.
#
#   FUZZTIME=1000000x ./scripts/test.sh   # longer fuzzing (default 20000x inputs per target, a count rather than a duration because of golang/go#75804; 0 skips)
set -euo pipefail
cd "$(dirname "$0")/.."

modules=(. harness examples lint)
party=harness/partykit/server

step() { printf '\n==> %s\n' "$*"; }

if [ ! -x "$party/node_modules/.bin/partykit" ]; then
	step "npm ci ($party)"
	npm ci --prefix "$party" --no-audit --no-fund
fi

jssdk=harness/jssdk
if [ ! -f "$jssdk/node_modules/inngest/package.json" ]; then
	step "npm ci ($jssdk)"
	npm ci --prefix "$jssdk" --no-audit --no-fund
fi

step "gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path '*/node_modules/*'))
if [ -n "$unformatted" ]; then
	echo "gofmt would change:"; echo "$unformatted"; exit 1
fi

for m in "${modules[@]}"; do
	step "go vet ($m)"
	(cd "$m" && go vet ./...)
done

for m in "${modules[@]}"; do
	step "go test -race ($m)"
	(cd "$m" && go test -race -count=1 -timeout 20m ./...)
done

# One iteration of every benchmark, so that the ones BENCHMARKS.md reports
# (scripts/bench.sh) keep running; their figures are not checked here.
for m in . harness; do
	step "benchmarks, one iteration each ($m)"
	(cd "$m" && go test -run '^$' -bench . -benchtime 1x -timeout 10m ./...)
done

step "browser client (client/): unit tests, bundle check, headless Chromium"
./scripts/client.sh

step "legacyimport: no PartyKit import outside the allow-list (root module)"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd lint && go build -o "$tmp/legacyimport" ./cmd/legacyimport)
# broadcast is the adapter the plan centralises PartyKit in: its tests run the
# conformance suite over the real legacyparty transport.
go vet -vettool="$tmp/legacyimport" -allow=github.com/coursebuilder/realtime-go/broadcast ./...

fuzztime=${FUZZTIME:-20000x}
if [ "$fuzztime" != "0" ]; then
	step "fuzz ($fuzztime per target)"
	# Every Fuzz function of every module, one at a time, as go test requires.
	for m in "${modules[@]}"; do
		(
			cd "$m"
			go list -f '{{.ImportPath}} {{.Dir}}' ./... | while read -r pkg dir; do
				{ grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null || true; } | sed 's/^func //' | while read -r fn; do
					echo "--- $pkg $fn"
					go test -run '^$' -fuzz "^${fn}\$" -fuzztime "$fuzztime" "$pkg"
				done
			done
		)
	done
fi

step "all tests passed"
