#!/usr/bin/env bash
# Tests the browser client (client/, @coursebuilder/realtime-client): installs
# it from its package-lock, runs its unit tests (node --test, no browser),
# checks that the checked-in bundle dist/realtime-client.js is what the
# sources build, then runs its browser tests in headless Chromium (Debian's
# chromium package, through playwright-core). Exits non-zero on any failure.
#
#   ./scripts/client.sh                           # all of it
#   REALTIME_CLIENT_BROWSER=skip ./scripts/client.sh   # without the browser tests
#   CHROMIUM_PATH=/path/to/chromium ./scripts/client.sh
#
# Screenshots of the browser tests go to $REALTIME_CLIENT_ARTIFACTS
# (default client/test/browser/artifacts).
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "npm ci (client)"
npm ci --prefix client --no-audit --no-fund

step "npm test (client: unit tests)"
npm test --prefix client

step "npm run check-bundle (client: dist/realtime-client.js is what the sources build)"
npm run check-bundle --prefix client

if [ "${REALTIME_CLIENT_BROWSER:-}" = "skip" ]; then
	step "client browser tests: skipped (REALTIME_CLIENT_BROWSER=skip)"
	exit 0
fi
chromium=${CHROMIUM_PATH:-/usr/bin/chromium}
if [ ! -x "$chromium" ]; then
	msg="client browser tests: no Chromium at $chromium; install Debian's (apt-get install -y chromium) or set REALTIME_CLIENT_BROWSER=skip"
	if [ -n "${CI:-}" ]; then
		echo "$msg" >&2
		exit 1 # CI installs it (.ci/run): its absence is a failure there
	fi
	step "client browser tests: SKIPPED, $msg"
	exit 0
fi
step "npm run test:browser (client: headless $("$chromium" --version 2>/dev/null | head -n1))"
npm run test:browser --prefix client
