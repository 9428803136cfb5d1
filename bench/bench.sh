#!/usr/bin/env bash
# bench.sh runs bench/harness: every comparison of docs/BENCHMARKS.md on
# this machine, one Markdown table of ratios against bench/baseline.tsv.
#
#   bench/bench.sh                          # quick mode (make bench)
#   BENCH_FULL=1 bench/bench.sh             # the long one
#   BENCH_WRITE_BASELINE=1 bench/bench.sh   # rewrite bench/baseline.tsv (make bench-baseline)
#   bench/bench.sh -only 'hostcall|ucase'   # only some steps
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
exec go run ./bench/harness -root "$ROOT" "$@"
