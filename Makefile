# sandboxd: `make demo` runs the example guest, `make test` runs every check
# CI runs. `make help` lists the targets.

GO ?= go
# staticcheck 2026.2 (v0.8.x) is the first release that type-checks Go 1.26.
STATICCHECK_VERSION := v0.8.2
STATICCHECK := $(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
# The suite takes a few minutes on 2 cores; the timeout only stops a hang.
TEST_TIMEOUT ?= 12m
# A freestanding C guest against the native ABI; abi/abitest.C builds test
# guests with the same flags.
WASM_CC := clang --target=wasm32 -nostdlib -O2 -I abi/include -Wl,--export=_start -Wl,--allow-undefined

.PHONY: all build examples demo test fmt-check generated-check vet staticcheck gotest fuzz bench bench-baseline clean help

all: build examples

help:
	@echo "make build       build bin/sandboxd"
	@echo "make examples    build the example guest bin/hello.wasm"
	@echo "make demo        run the example guest with one read-only directory grant"
	@echo "make test        gofmt check, generated code check, go vet, staticcheck, go test (-race but for the guest SDK and examples; what CI runs)"
	@echo "make fuzz        run every fuzz target for FUZZTIME each (30s by default; FUZZ=REGEXP: only those)"
	@echo "make bench       every comparison of docs/BENCHMARKS.md, one table of ratios against bench/baseline.tsv (BENCH_FULL=1: the long run)"
	@echo "make bench-baseline  the same, then rewrite bench/baseline.tsv with its ratios"
	@echo "make clean       remove bin/"

# The go tool's cache decides what to rebuild, so this always asks it. The
# binary is static (no cgo): it starts without the dynamic loader.
build:
	CGO_ENABLED=0 $(GO) build -ldflags "-X main.commit=$$(git rev-parse --short=12 HEAD 2>/dev/null)$$(git diff --quiet HEAD 2>/dev/null || echo +dirty)" -o bin/sandboxd ./cmd/sandboxd

examples: bin/hello.wasm

bin/hello.wasm: examples/hello/hello.c abi/include/sandboxd.h
	@mkdir -p bin
	$(WASM_CC) -o $@ examples/hello/hello.c

demo: build examples
	./bin/sandboxd run --grant dir:./examples/hello/data=data:ro bin/hello.wasm

test: fmt-check generated-check vet staticcheck gotest

# schemas/*.capnp.go must be what the pinned capnp and capnpc-go generate.
generated-check:
	scripts/check-generated.sh

fmt-check:
	@out="$$(gofmt -l .)"; if [ -n "$$out" ]; then echo "gofmt -w needed on:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

staticcheck:
	$(STATICCHECK) ./...

# Every package runs under the race detector but the guest SDK's and the
# examples'. Their tests build Go guests and run them on abi, whose host
# calls abi's own tests race-check with Go guests too (and daemon/guestrpc's
# the guest-facing server, with the test speaking for the guests); under
# -race wazero's compiler (instrumented itself) takes some 15 s per Go
# guest, and their seven would cost minutes of CPU for no host code of
# their own. For the same reason cmd/sandboxd's tests, which run under
# -race, build the sandboxd binary they run without it
# (cmd/sandboxd/main_test.go).
RACE_PKGS = $(shell $(GO) list ./... | grep -v -e '/abi/sdk/' -e '/examples/')

# Tests in files built only without -race (`//go:build !race`) run in a
# third pass, and only they: the test that serves 10,000 HTTP requests
# through a guest (daemon/http_e2e_test.go: under the race detector the
# load alone takes minutes, and the host code it crosses is race-checked
# by the socket and poll tests) and the loads of huge and tangled policy
# files (policies/scale_test.go: they parse on one goroutine, where the
# race detector finds nothing and costs minutes). The list of those tests
# is read from the files, so a test added to one runs without a change
# here; their packages' other tests ran in the first pass.
NORACE_FILES = $(shell grep -rl --include='*_test.go' --exclude-dir=third_party '^//go:build.*!race' .)
NORACE_RUN = ^($(shell sed -n 's/^func \(Test[A-Za-z0-9_]*\)[^A-Za-z0-9_].*/\1/p' $(NORACE_FILES) | paste -sd'|'))$$
NORACE_PKGS = $(sort $(dir $(NORACE_FILES)))
#
# The patched go-capnp (third_party/go-capnp, a module of its own that
# ./... does not reach) keeps the tests of its patches that need its
# internals beside them (PATCHES.md); the last pass runs them.
#
# -count=1: every run runs every test, never a result cached by an earlier one.
gotest:
	$(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) $(RACE_PKGS)
	$(GO) test -count=1 -timeout $(TEST_TIMEOUT) ./abi/sdk/... ./examples/...
	$(GO) test -count=1 -timeout $(TEST_TIMEOUT) -run '$(NORACE_RUN)' $(NORACE_PKGS)
	cd third_party/go-capnp && $(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) . ./rpc/

# Every fuzz target in turn (scripts/fuzz.sh): FUZZTIME=5m for longer,
# FUZZ='Policy|Grant' for some of them.
FUZZTIME ?= 30s
FUZZ ?= .
fuzz:
	GO=$(GO) FUZZTIME=$(FUZZTIME) scripts/fuzz.sh '$(FUZZ)'

# Benchmarks, not tests: not part of make test. A few minutes on 2 cores,
# more with BENCH_FULL=1 (docs/BENCHMARKS.md, "One command: make bench").
bench:
	bench/bench.sh

bench-baseline:
	BENCH_WRITE_BASELINE=1 bench/bench.sh

clean:
	rm -rf bin
