#!/bin/sh
# Regenerates the Go code for schemas/*.capnp with the pinned tools:
# capnp 0.9.2 (Debian's capnproto package) and capnpc-go at the exact
# version of the capnproto.org/go/capnp/v3 library in go.mod. The output
# is byte-for-byte reproducible; scripts/check-generated.sh proves it.
#
# Usage: scripts/gen-schemas.sh [OUTDIR]   (default: schemas/)
set -eu

CAPNP_VERSION="Cap'n Proto version 0.9.2"
CAPNPC_GO="capnproto.org/go/capnp/v3/capnpc-go"

root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-"$root/schemas"}
mkdir -p "$out"
out=$(cd "$out" && pwd)

if ! command -v capnp >/dev/null 2>&1; then
	echo "gen-schemas: capnp not found; install it with: apt-get install -y capnproto" >&2
	exit 1
fi
have=$(capnp --version)
if [ "$have" != "$CAPNP_VERSION" ]; then
	echo "gen-schemas: need \"$CAPNP_VERSION\", found \"$have\" (apt-get install -y capnproto on Debian bookworm)" >&2
	exit 1
fi

cd "$root"
# The generator must match the library the code is compiled against.
version=$(go list -m -f '{{.Version}}' capnproto.org/go/capnp/v3)
std=$(go list -m -f '{{.Dir}}' capnproto.org/go/capnp/v3)/std

gobin=$(mktemp -d)
trap 'rm -rf "$gobin"' EXIT
GOBIN="$gobin" GOFLAGS=-mod=mod go install "$CAPNPC_GO@$version"

cd "$root/schemas"
for f in *.capnp; do
	capnp compile -I "$std" -o"$gobin/capnpc-go:$out" "$f"
done
