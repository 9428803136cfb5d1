#!/usr/bin/env bash
# fuzz.sh runs every fuzz target of the module in turn, each for FUZZTIME
# (default 30s), with `go test -fuzz`: the parsers (grants, policies, audit
# records, argdata, the wasm binary reader and rewriter), the native and WASI
# calls, whole modules run by abi, the control server's input, and what a
# guest sends to the daemon over Cap'n Proto. A target
# that fails leaves its input in that package's testdata/fuzz/FuzzNAME/, where
# `go test` replays it from then on; the script goes on with the others and
# exits 1, naming each target that failed. A package whose tests do not build
# fails too (its targets cannot run). Ctrl-C stops the whole run.
#
#   scripts/fuzz.sh                       # every target, 30s each
#   FUZZTIME=5m scripts/fuzz.sh           # longer
#   scripts/fuzz.sh 'Policy|Grant'        # only the targets whose name matches
set -uo pipefail
cd "$(dirname "$0")/.."
trap 'echo "fuzz.sh: interrupted" >&2; exit 130' INT TERM

GO=${GO:-go}
FUZZTIME=${FUZZTIME:-30s}
match=${1:-.}
failed=()

# One listing of every package's fuzz targets: `go test -list` prints each
# package's targets, then "ok PKG" (or FAIL for a package that does not build).
listing=$("$GO" test -list '^Fuzz' ./... 2>&1)
listed=$?
targets=()
pending=()
while IFS= read -r line; do
	case "$line" in
	Fuzz*) pending+=("$line") ;;
	"ok "*)
		pkg=$(awk '{print $2}' <<<"$line")
		for t in "${pending[@]}"; do
			if grep -qE -e "$match" <<<"$t"; then targets+=("$pkg $t"); fi
		done
		pending=()
		;;
	FAIL$'\t'*)
		failed+=("$(awk '{print $2}' <<<"$line") (its tests do not build)")
		pending=()
		;;
	esac
done <<<"$listing"
if [ "$listed" -ne 0 ] && [ "${#failed[@]}" -eq 0 ]; then
	echo "$listing" >&2
	echo "fuzz.sh: listing the fuzz targets failed" >&2
	exit 1
fi

for entry in "${targets[@]}"; do
	read -r pkg target <<<"$entry"
	echo "fuzz.sh: $pkg $target for $FUZZTIME" >&2
	if ! "$GO" test -run '^$' -fuzz "^${target}\$" -fuzztime "$FUZZTIME" "$pkg"; then
		failed+=("$pkg $target")
	fi
done
if [ "${#targets[@]}" -eq 0 ] && [ "${#failed[@]}" -eq 0 ]; then
	echo "fuzz.sh: no fuzz target matches '$match'" >&2
	exit 2
fi
if [ "${#failed[@]}" -gt 0 ]; then
	printf 'fuzz.sh: failed: %s\n' "${failed[@]}" >&2
	exit 1
fi
echo "fuzz.sh: ${#targets[@]} targets ran $FUZZTIME each without a failure" >&2
