#!/bin/sh
# Regenerates the Go code for the Cap'n Proto schemas with the pinned tools:
# capnp 0.9.2 (Debian's capnproto package) and capnpc-go at the exact
# version of the capnproto.org/go/capnp/v3 library in go.mod. The output
# is byte-for-byte reproducible; scripts/check-generated.sh proves it.
#
# Each schema becomes one Go package (go-capnp's generated code declares
# package-level names, so two schemas cannot share a package):
#   schemas/sandboxd.capnp          -> schemas/                     (the control API)
#   schemas/guest.capnp             -> schemas/guest/               (the guest-facing API)
#   examples/pipeline/pipeline.capnp -> examples/pipeline/pipelineapi/
#
# Usage: scripts/gen-schemas.sh [OUTROOT]   (default: the repository root;
# each file goes to its directory above, under OUTROOT)
set -eu

CAPNP_VERSION="Cap'n Proto version 0.9.2"
CAPNPC_GO="capnproto.org/go/capnp/v3/capnpc-go"

root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-"$root"}
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

# gen SCHEMA OUTDIR: both relative to the repository root. Schemas import
# each other by absolute name from schemas/ ("/guest.capnp").
gen() {
	mkdir -p "$out/$2"
	(cd "$root/$(dirname "$1")" && capnp compile -I "$std" -I "$root/schemas" -o"$gobin/capnpc-go:$out/$2" "$(basename "$1")")
}
gen schemas/sandboxd.capnp schemas
gen schemas/guest.capnp schemas/guest
gen examples/pipeline/pipeline.capnp examples/pipeline/pipelineapi
