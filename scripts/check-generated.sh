#!/bin/sh
# Fails if the committed Go code generated from the Cap'n Proto schemas
# differs from what scripts/gen-schemas.sh produces with the pinned tools.
# Run by `make test`.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$root/scripts/gen-schemas.sh" "$tmp"
status=0
for f in $(cd "$tmp" && find . -name '*.capnp.go' | sort); do
	rel=${f#./}
	if ! cmp -s "$tmp/$rel" "$root/$rel"; then
		echo "check-generated: $rel is stale or edited; run: go generate ./schemas/..." >&2
		diff -u "$root/$rel" "$tmp/$rel" | head -40 >&2 || true
		status=1
	fi
done
for f in $(cd "$root" && find schemas examples -name '*.capnp.go' | sort); do
	[ -e "$tmp/$f" ] || { echo "check-generated: $f has no schema; delete it" >&2; status=1; }
done
[ "$status" = 0 ] && echo "check-generated: generated code matches its .capnp sources"
exit "$status"
