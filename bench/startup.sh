#!/usr/bin/env bash
# startup.sh times the CLI's own start (docs/BENCHMARKS.md, "The CLI's own
# start"): `sandboxd help` against a static Go hello world, and `sandboxd
# launch` of a small guest through a running daemon against a cold `wazero
# run` of the same module (wazero's CLI at the go.mod version, built
# without cgo as sandboxd is), and against bench/startup/testdata/launchonly, the same
# launch from a program that links only the client library. Every binary is
# built from source; runs are interleaved by bench/startup.
#
#   bench/startup.sh             # 300 rounds
#   ROUNDS=100 bench/startup.sh
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
ROUNDS=${ROUNDS:-300}
WORK=$(mktemp -d -t sandboxd-startup-XXXXXX)
WAZERO_VERSION=$(cd "$ROOT" && go list -m -f '{{.Version}}' github.com/tetratelabs/wazero)
daemon=
cleanup() {
	if [ -n "$daemon" ]; then kill "$daemon" 2>/dev/null || true; wait "$daemon" 2>/dev/null || true; fi
	rm -rf "$WORK"
}
trap cleanup EXIT

echo "building into $WORK" >&2
cd "$ROOT"
CGO_ENABLED=0 go build -o "$WORK/sandboxd" ./cmd/sandboxd
CGO_ENABLED=0 go build -o "$WORK/hello" ./bench/startup/hello
CGO_ENABLED=0 go build -o "$WORK/launchonly" ./bench/startup/testdata/launchonly
go build -o "$WORK/startup" ./bench/startup
GOBIN="$WORK" CGO_ENABLED=0 go install "github.com/tetratelabs/wazero/cmd/wazero@$WAZERO_VERSION"
wat2wasm -o "$WORK/hello_wasi.wasm" daemon/testdata/server/hello_wasi.wat

"$WORK/sandboxd" serve --socket "$WORK/s.sock" --state "$WORK/state" --log-level warn 2>"$WORK/serve.log" &
daemon=$!
for _ in $(seq 100); do [ -S "$WORK/s.sock" ] && break; sleep 0.1; done
[ -S "$WORK/s.sock" ] || { echo "the daemon did not start:" >&2; cat "$WORK/serve.log" >&2; exit 1; }

echo "## The CLI's own start: $(date -u +%F), commit $(git rev-parse --short=12 HEAD)"
echo
echo "Machine: $(nproc) CPUs, $(lscpu | sed -n 's/^Model name: *//p'), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr), $(go version | cut -d' ' -f3), load average $(cut -d' ' -f1-3 /proc/loadavg) at the start."
echo
cd "$WORK"
./startup -n "$ROUNDS" -inittrace help \
	-cmd "hello=./hello" \
	-cmd "help=./sandboxd help" \
	-cmd "wazero-run:7=./wazero run hello_wasi.wasm" \
	-cmd "launch:7=./sandboxd launch --socket s.sock hello_wasi.wasm" \
	-cmd "launchonly:7=./launchonly s.sock hello_wasi.wasm" \
	-pair help/hello -pair launch/wazero-run -pair launchonly/wazero-run
echo
echo "Load average $(cut -d' ' -f1-3 /proc/loadavg) at the end."
