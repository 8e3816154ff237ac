#!/usr/bin/env bash
# Runs every benchmark that BENCHMARKS.md reports, in its order, against the
# real servers of the harness (loopback only). Takes about four minutes.
#
#   ./scripts/bench.sh | tee bench.txt
#
# Installs the PartyKit dev server from its package-lock when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -d harness/partykit/server/node_modules ]; then
	npm ci --prefix harness/partykit/server --no-audit --no-fund >&2
fi

run() {
	echo
	echo "\$ $*"
	"$@"
}

go version
echo "cores: $(getconf _NPROCESSORS_ONLN)"

# Facade overhead, in memory (BENCHMARKS.md: "Facade overhead").
run go test -run '^$' -bench 'Direct|Broadcast' -benchtime 200000x -count 3 ./broadcast/
run go test -run '^$' -bench 'ShadowLatency' -benchtime 200x ./broadcast/
run go test -run '^$' -bench 'Evaluator|ClientDirect' -benchtime 20000x ./flags/

# The Inngest provider against bare clients.
run go test -run '^$' -bench 'Encode' -benchtime 100000x -count 3 ./realtime/
run go test -run '^$' -bench 'InngestPublish$|BareHTTPPost' -benchtime 20000x -count 3 ./realtime/inngest/
(cd harness && run go test -run '^$' -bench 'Throughput' -benchtime 27000x ./bench/)

# Publish to subscriber, and shadow mode end to end.
(cd harness && run go test -run '^$' -bench 'DeliveryLatency' -benchtime 2000x ./bench/)
(cd harness && run go test -run '^$' -bench 'ShadowEndToEnd' -benchtime 2000x ./bench/)

# The replay log in Redis (needs redis-server; the benchmarks start their own),
# and delivery under faults against the real servers.
run go test -run '^$' -bench 'AppendVsBare|MemoryAppend' -count 5 ./replay/redislog/ ./replay/
(cd harness && run go test -race -v -run 'TestDelivery$' ./e2e/ | grep -E '^\||delivery_test|^(---|ok|FAIL)')

# Chunk streaming.
run go test -run '^$' -bench 'PublishChunk' ./chunkstream/
run go test -v -run 'TestPublishesPer1000Deltas' ./chunkstream/
run go test -run '^$' -bench 'TimeToFirstPublish' -benchtime 500x ./chunkstream/

# The load test, with its figures in the log (the servers' own lines left out).
(cd harness && run go test -run 'TestShadowLoad' -count 1 -v ./load/ -load.publishers 16 -load.messages 100 |
	grep -E 'load_test.go|^(---|ok|FAIL)|^ +---')
