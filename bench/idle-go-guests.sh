#!/usr/bin/env bash
# idle-go-guests.sh measures what an idle Go guest costs a running daemon
# (docs/BENCHMARKS.md, "Idle Go guests"): it builds sandboxd and the guest
# daemon/testdata/guests/gosleep (GOOS=wasip1; it prints "ready" and
# sleeps), starts `sandboxd serve`, launches GUESTS of it with `sandboxd
# launch --detach`, waits until every one has printed "ready", and reports
# the growth of the daemon's resident memory (VmRSS) per guest. The first
# guest is launched before the baseline is read, so that the compiled
# module and what every guest shares are not counted. Then, as
# BenchmarkIdleGoGuests does in-process:
#
#   go test ./daemon -run '^$' -bench IdleGoGuests -benchtime 200x
#
#   bench/idle-go-guests.sh          # 200 guests
#   GUESTS=50 bench/idle-go-guests.sh
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
GUESTS=${GUESTS:-200}
WORK=$(mktemp -d -t sandboxd-idle-XXXXXX)
daemon=
cleanup() {
	if [ -n "$daemon" ]; then kill "$daemon" 2>/dev/null || true; wait "$daemon" 2>/dev/null || true; fi
	rm -rf "$WORK"
}
trap cleanup EXIT

cd "$ROOT"
CGO_ENABLED=0 go build -o "$WORK/sandboxd" ./cmd/sandboxd
(cd daemon/testdata/guests/gosleep && GOOS=wasip1 GOARCH=wasm go build -o "$WORK/gosleep.wasm" .)
sbx() { local verb=$1; shift; "$WORK/sandboxd" "$verb" --socket "$WORK/s.sock" "$@"; }

"$WORK/sandboxd" serve --socket "$WORK/s.sock" --state "$WORK/state" --log-level warn --max-guests $((GUESTS + 10)) 2>"$WORK/serve.log" &
daemon=$!
for _ in $(seq 100); do [ -S "$WORK/s.sock" ] && break; sleep 0.1; done
[ -S "$WORK/s.sock" ] || { echo "the daemon did not start:" >&2; cat "$WORK/serve.log" >&2; exit 1; }

rss() { awk '/^VmRSS/ {print $2}' "/proc/$daemon/status"; } # KiB
# ready waits until guest $1 has printed "ready".
ready() {
	for _ in $(seq 600); do
		[ "$(sbx logs --stdout "$1" 2>/dev/null)" = ready ] && return 0
		sleep 0.1
	done
	echo "guest $1 did not print ready" >&2
	exit 1
}

ready "$(sbx launch --detach "$WORK/gosleep.wasm")"
before=$(rss)
start=$(date +%s.%N)
ids=()
for _ in $(seq "$GUESTS"); do ids+=("$(sbx launch --detach "$WORK/gosleep.wasm")"); done
for id in "${ids[@]}"; do ready "$id"; done
took=$(echo "$(date +%s.%N) - $start" | bc)
after=$(rss)

echo "## Idle Go guests: $(date -u +%F), commit $(git rev-parse --short=12 HEAD)"
echo
echo "Machine: $(nproc) CPUs, $(lscpu | sed -n 's/^Model name: *//p'), $(uname -sr), $(go version | cut -d' ' -f3), load average $(cut -d' ' -f1-3 /proc/loadavg)."
echo "Guest: gosleep.wasm, $(stat -c %s "$WORK/gosleep.wasm") bytes."
echo
echo "| guests | daemon VmRSS before | after | per guest | launch to ready, all |"
echo "|---|---|---|---|---|"
printf '| %d | %.1f MB | %.1f MB | **%.2f MB** | %.1f s |\n' "$GUESTS" "$(echo "$before/1024" | bc -l)" "$(echo "$after/1024" | bc -l)" \
	"$(echo "($after-$before)/1024/$GUESTS" | bc -l)" "$took"
