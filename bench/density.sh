#!/usr/bin/env bash
# density.sh measures one daemon holding many idle guests: memory per guest,
# launches per second from several client connections, `sandboxd ps` of all
# of them, and SIGTERM to exit with all of them running. It builds sandboxd,
# the idle guest (bench/idle.c, blocked in sleep) and bench/density, prints
# the machine as comments, then key=value lines (bench/density/main.go
# lists the keys).
#
#   bench/density.sh                  # 10,000 guests over 4 connections
#   N=100000 CONNS=4 bench/density.sh
#
# Past a quarter of vm.max_map_count guests, memories come from the Go heap
# (abi/linmem.go); for 100,000 guests and more raise it first:
#   sysctl -w vm.max_map_count=2097152
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
N=${N:-10000}
CONNS=${CONNS:-4}
INFLIGHT=${INFLIGHT:-8}
MEM=${MEM:-1048576}
WORK=${WORK:-$(mktemp -d -t sandboxd-density-XXXXXX)}
mkdir -p "$WORK/bin"

(cd "$ROOT" && CGO_ENABLED=0 go build -o "$WORK/bin/sandboxd" ./cmd/sandboxd)
(cd "$ROOT" && go build -o "$WORK/bin/density" ./bench/density)
clang --target=wasm32-wasi --sysroot=/usr -O2 -o "$WORK/idle.wasm" "$ROOT/bench/idle.c"

# The daemon holds a descriptor or two per connection only, but raise the
# limit anyway: the harness may run beside other load.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

echo "# date: $(date -u +%Y-%m-%dT%H:%MZ)"
echo "# cpu: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) CPUs"
echo "# memory: $(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)"
echo "# vm.max_map_count: $(cat /proc/sys/vm/max_map_count)"
echo "# $(go version | cut -d' ' -f3), sandboxd $(cd "$ROOT" && git rev-parse --short HEAD)"
echo "# N=$N CONNS=$CONNS INFLIGHT=$INFLIGHT MEM=$MEM"
"$WORK/bin/density" -sandboxd "$WORK/bin/sandboxd" -wasm "$WORK/idle.wasm" \
	-n "$N" -conns "$CONNS" -inflight "$INFLIGHT" -mem "$MEM" -work "$WORK/run"
rm -rf "$WORK"
