#!/usr/bin/env bash
# conformance.sh runs Go's own tests of standard packages, built for
# GOOS=wasip1 GOARCH=wasm from the local Go installation, once under
# sandboxd and once under wazero's CLI, and prints how many top-level tests
# pass, fail and are skipped per package under each.
#
#   scripts/conformance.sh                 # the default package list
#   PKGS="os net" scripts/conformance.sh   # some packages
#   SHORT=1 scripts/conformance.sh         # go test -short
#
# sandboxd runs each test binary with `sandboxd run`, the host's root
# directory granted as the guest's root (--grant dir:/=/), the caller's
# environment, run's default handle table (--max-fds 1024), the wasm32
# maximum of memory (--mem 0), as wazero gives: run's default of 256 MiB
# holds every package here but net, whose tests reach 250 MB of heap and
# then fail with "out of memory"; and the largest call stack run allows
# (--max-stack 64MiB), near wazero's own ceiling: at the default of 8 MiB,
# io/fs's and path/filepath's TestCVE202230630 and TestCVE202230632, which
# recurse 10,000 deep on purpose, trap.
# wazero runs it as Go's own lib/wasm/go_wasip1_wasm_exec does ("wazero
# run -mount /:/ -env-inherit"), with github.com/tetratelabs/wazero/cmd/wazero
# at the version go.mod pins, built once. Logs (go test -json) are kept in
# $OUT (default: a new temporary directory).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PKGS=${PKGS:-"os io/fs path/filepath bufio strings time encoding/json net"}
TIMEOUT=${TIMEOUT:-60m}
WAZERO_VERSION=${WAZERO_VERSION:-$(cd "$ROOT" && go list -m -f '{{.Version}}' github.com/tetratelabs/wazero)}
OUT=${OUT:-$(mktemp -d -t sandboxd-conformance-XXXXXX)}
mkdir -p "$OUT/bin"

echo "building sandboxd and wazero $WAZERO_VERSION into $OUT/bin" >&2
(cd "$ROOT" && go build -o "$OUT/bin/sandboxd" ./cmd/sandboxd)
GOBIN="$OUT/bin" go install "github.com/tetratelabs/wazero/cmd/wazero@$WAZERO_VERSION"

# The exec wrappers get the test binary and its arguments, as with any
# `go test -exec` program.
cat > "$OUT/bin/sandboxd-exec" <<WRAP
#!/usr/bin/env bash
envs=()
while IFS= read -r -d '' kv; do envs+=(--env "\$kv"); done < <(env -0)
exec "$OUT/bin/sandboxd" run --grant dir:/=/ "\${envs[@]}" --mem 0 --max-stack 64MiB \\
	--cache-dir "$OUT/sandboxd-cache" --log-level error "\$1" "\${@:2}"
WRAP
cat > "$OUT/bin/wazero-exec" <<WRAP
#!/usr/bin/env bash
exec "$OUT/bin/wazero" run -mount /:/ -env-inherit -cachedir "$OUT/wazero-cache" "\$1" "\${@:2}"
WRAP
chmod +x "$OUT/bin/sandboxd-exec" "$OUT/bin/wazero-exec"

flags=(-json -timeout "$TIMEOUT" -count=1)
if [ -n "${SHORT:-}" ]; then flags+=(-short); fi

for rt in sandboxd wazero; do
	for pkg in $PKGS; do
		log="$OUT/$rt-${pkg//\//_}.json"
		echo "$rt: go test $pkg" >&2
		start=$(date +%s)
		(cd "$ROOT" && GOOS=wasip1 GOARCH=wasm go test "${flags[@]}" -exec "$OUT/bin/$rt-exec" "$pkg" >"$log" 2>&1) || true
		echo "$(( $(date +%s) - start ))" >"$log.seconds"
	done
done

printf '%-16s %-28s %-28s\n' package "sandboxd pass/fail/skip" "wazero pass/fail/skip"
for pkg in $PKGS; do
	row=()
	for rt in sandboxd wazero; do
		log="$OUT/$rt-${pkg//\//_}.json"
		read -r _ p f s res < <(go run "$ROOT/scripts/confcount" <"$log" | grep -F "$pkg " || echo "$pkg 0 0 0 none")
		row+=("$p/$f/$s $res $(cat "$log.seconds")s")
	done
	printf '%-16s %-28s %-28s\n' "$pkg" "${row[0]}" "${row[1]}"
done
echo "logs: $OUT" >&2
