#!/usr/bin/env bash
# run.sh compares sandboxd with wazero's CLI and Node's node:wasi on this
# machine: ucase (examples/ucase) over a large file, and the start-to-exit
# latency of a hello-world program. It builds every binary and module from
# source, prints the machine, and then the Markdown table from
# bench/compare.
#
#   bench/run.sh                      # 256 MiB input, 5 ucase runs, 50 starts
#   SIZE_MIB=64 RUNS=3 STARTS=20 bench/run.sh
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SIZE_MIB=${SIZE_MIB:-256}
RUNS=${RUNS:-5}
STARTS=${STARTS:-50}
WORK=${WORK:-$(mktemp -d -t sandboxd-bench-XXXXXX)}
WAZERO_VERSION=$(cd "$ROOT" && go list -m -f '{{.Version}}' github.com/tetratelabs/wazero)
mkdir -p "$WORK/bin" "$WORK/in"

echo "building into $WORK" >&2
(cd "$ROOT" && CGO_ENABLED=0 go build -o "$WORK/bin/sandboxd" ./cmd/sandboxd)
(cd "$ROOT" && go build -o "$WORK/bin/compare" ./bench/compare)
# wazero's CLI as `go run github.com/tetratelabs/wazero/cmd/wazero@VERSION`
# builds it (with cgo where a C compiler is installed), and once more without
# cgo, statically linked as sandboxd is, so that neither build choice hides
# in the start-up numbers.
GOBIN="$WORK/bin" go install "github.com/tetratelabs/wazero/cmd/wazero@$WAZERO_VERSION"
mkdir -p "$WORK/static"
GOBIN="$WORK/static" CGO_ENABLED=0 go install "github.com/tetratelabs/wazero/cmd/wazero@$WAZERO_VERSION"
clang --target=wasm32-wasi --sysroot=/usr -O2 -o "$WORK/ucase.wasm" "$ROOT/examples/ucase/ucase.c"
clang --target=wasm32-wasi --sysroot=/usr -O2 -o "$WORK/hello.wasm" "$ROOT/bench/hello.c"

# Mixed-case ASCII text with punctuation and digits, SIZE_MIB MiB.
if [ ! -s "$WORK/in/input.txt" ]; then
	awk -v size=$((SIZE_MIB * 1024 * 1024)) 'BEGIN {
		srand(1)
		chars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ,.;"
		for (i = 0; i < 512; i++) {
			line = ""
			for (j = 0; j < 63; j++) line = line substr(chars, int(rand() * length(chars)) + 1, 1)
			lines[i] = line
		}
		n = 0
		while (n < size) { printf "%s\n", lines[n / 64 % 512]; n += 64 }
	}' >"$WORK/in/input.txt"
fi

echo "## Machine"
echo
echo "- date: $(date -u +%Y-%m-%dT%H:%MZ)"
echo "- cpu: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) CPUs"
echo "- memory: $(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)"
echo "- $(go version | cut -d' ' -f3), wazero $WAZERO_VERSION, node $(node --version), $(clang --version | head -1)"
echo "- sandboxd: $(cd "$ROOT" && git rev-parse --short HEAD)"
echo
"$WORK/bin/compare" -sandboxd "$WORK/bin/sandboxd" -wazero "$WORK/bin/wazero" -wazero-static "$WORK/static/wazero" \
	-node "$(command -v node)" -node-runner "$ROOT/bench/wasi-run.mjs" \
	-ucase "$WORK/ucase.wasm" -hello "$WORK/hello.wasm" -input "$WORK/in/input.txt" \
	-work "$WORK" -runs "$RUNS" -starts "$STARTS"
