#!/usr/bin/env bash
# sock.sh measures guests that use granted sockets against the same
# programs built natively, on this machine, in one run:
#   - examples/httpd (net/http) under sandboxd (listen: grant), natively
#     (socket-activated by bench/httpload) and under wazero's CLI (-listen),
#     loaded by bench/httpload: requests/s and p99;
#   - examples/redis (go-redis) GET round trips, one after the other, under
#     sandboxd (sock:…:dial grant) and natively, against Debian's
#     redis-server on a loopback port.
#
#   bench/sock.sh                      # 10,000 requests on 100 connections, 20,000 round trips
#   REQUESTS=20000 CONNS=50 TRIPS=50000 bench/sock.sh
#   SKIP_WAZERO=1 bench/sock.sh        # without the wazero CLI attempt (up to 120 s)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
REQUESTS=${REQUESTS:-10000}
CONNS=${CONNS:-100}
TRIPS=${TRIPS:-20000}
WORK=${WORK:-$(mktemp -d -t sandboxd-sock-XXXXXX)}
WAZERO_VERSION=$(cd "$ROOT" && go list -m -f '{{.Version}}' github.com/tetratelabs/wazero)
mkdir -p "$WORK/bin" "$WORK/redis"

echo "building into $WORK" >&2
(cd "$ROOT" && CGO_ENABLED=0 go build -o "$WORK/bin/sandboxd" ./cmd/sandboxd)
(cd "$ROOT" && go build -o "$WORK/bin/httpload" ./bench/httpload)
(cd "$ROOT/examples/httpd" && go build -o "$WORK/bin/httpd" . && GOOS=wasip1 GOARCH=wasm go build -o "$WORK/httpd.wasm" .)
(cd "$ROOT/examples/redis" && go build -o "$WORK/bin/redis" . && GOOS=wasip1 GOARCH=wasm go build -o "$WORK/redis.wasm" .)
GOBIN="$WORK/bin" go install "github.com/tetratelabs/wazero/cmd/wazero@$WAZERO_VERSION"
SBX=("$WORK/bin/sandboxd" run --cache-dir "$WORK/cache")

echo "## Machine"
echo
echo "- date: $(date -u +%Y-%m-%dT%H:%MZ)"
echo "- cpu: $(lscpu | sed -n 's/^Model name: *//p') × $(nproc), load before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "- go: $(go version | cut -d' ' -f3), wazero $WAZERO_VERSION, $(redis-server --version | cut -d' ' -f1-3)"
echo
echo "## HTTP: $REQUESTS requests over $CONNS connections"
echo
load() { "$WORK/bin/httpload" -conns "$CONNS" -requests "$REQUESTS" "$@" 2>/dev/null; }
echo "- native: $(load -addr 127.0.0.1:18090 -activate -- "$WORK/bin/httpd")"
# A wasm guest runs its goroutines on one thread: the same server held to one
# (GOMAXPROCS=1) is the like-for-like limit.
echo "- native, one thread: $(load -addr 127.0.0.1:18093 -activate -- env GOMAXPROCS=1 "$WORK/bin/httpd")"
echo "- sandboxd: $(load -addr 127.0.0.1:18091 -- "${SBX[@]}" --grant listen:127.0.0.1:18091=web "$WORK/httpd.wasm")"
if [ "${SKIP_WAZERO:-}" = 1 ]; then
	echo "- wazero: skipped (SKIP_WAZERO=1)"
elif out=$("$WORK/bin/httpload" -timeout 120s -conns 1 -requests 100 -warmup 1 -addr 127.0.0.1:18092 -- \
	"$WORK/bin/wazero" run -env LISTEN_FDS=1 -env LISTEN_FDNAMES=web -listen 127.0.0.1:18092 "$WORK/httpd.wasm" 2>/dev/null); then
	echo "- wazero: $out"
else
	echo "- wazero: no answer within 120 s even on one connection (its listener blocks the guest in accept)"
fi
echo
echo "## Redis: $TRIPS GET round trips, one at a time"
echo
redis-server --port 16390 --bind 127.0.0.1 --dir "$WORK/redis" --save '' --appendonly no >"$WORK/redis/log" 2>&1 &
REDIS=$!
trap 'kill $REDIS 2>/dev/null || true' EXIT
for _ in $(seq 100); do redis-cli -p 16390 ping >/dev/null 2>&1 && break; sleep 0.05; done
echo "- native: $(REDIS_ADDR=127.0.0.1:16390 "$WORK/bin/redis" bench "$TRIPS")"
echo "- sandboxd: $("${SBX[@]}" --grant sock:tcp:127.0.0.1:16390=db:dial "$WORK/redis.wasm" bench "$TRIPS")"
