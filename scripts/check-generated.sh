#!/bin/sh
# Fails if the committed Go code under schemas/ differs from what
# scripts/gen-schemas.sh produces from schemas/*.capnp with the pinned
# tools. Run by `make test`.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$root/scripts/gen-schemas.sh" "$tmp"
status=0
for f in "$tmp"/*.go; do
	name=$(basename "$f")
	if ! cmp -s "$f" "$root/schemas/$name"; then
		echo "check-generated: schemas/$name is stale or edited; run: go generate ./schemas/..." >&2
		diff -u "$root/schemas/$name" "$f" | head -40 >&2 || true
		status=1
	fi
done
for f in "$root"/schemas/*.capnp.go; do
	[ -e "$tmp/$(basename "$f")" ] || { echo "check-generated: schemas/$(basename "$f") has no schema; delete it" >&2; status=1; }
done
[ "$status" = 0 ] && echo "check-generated: schemas/ matches its .capnp sources"
exit "$status"
