#!/usr/bin/env bash
# fuzz.sh runs every fuzz target of the module in turn, each for FUZZTIME
# (default 30s), with `go test -fuzz`: the parsers (grants, policies, audit
# records, argdata, the wasm binary reader and rewriter), the native and WASI
# calls, whole modules run by abi, and the control server's input. A target
# that fails leaves its input in that package's testdata/fuzz/FuzzNAME/, where
# `go test` replays it from then on; the script goes on with the others and
# exits 1, naming each target that failed.
#
#   scripts/fuzz.sh                       # every target, 30s each
#   FUZZTIME=5m scripts/fuzz.sh           # longer
#   scripts/fuzz.sh 'Policy|Grant'        # only the targets whose name matches
set -uo pipefail
cd "$(dirname "$0")/.."

FUZZTIME=${FUZZTIME:-30s}
match=${1:-.}
failed=()
targets=0
for pkg in $(go list ./...); do
	for target in $(go test -list '^Fuzz' "$pkg" 2>/dev/null | grep '^Fuzz' | grep -E "$match"); do
		targets=$((targets + 1))
		echo "fuzz.sh: $pkg $target for $FUZZTIME" >&2
		if ! go test -run '^$' -fuzz "^${target}\$" -fuzztime "$FUZZTIME" "$pkg"; then
			failed+=("$pkg $target")
		fi
	done
done
if [ "$targets" -eq 0 ]; then
	echo "fuzz.sh: no fuzz target matches '$match'" >&2
	exit 2
fi
if [ "${#failed[@]}" -gt 0 ]; then
	printf 'fuzz.sh: failed: %s\n' "${failed[@]}" >&2
	exit 1
fi
echo "fuzz.sh: $targets targets ran $FUZZTIME each without a failure" >&2
