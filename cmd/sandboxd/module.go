package main

import (
	"fmt"
	"io"
	"os"

	"github.com/sandboxd/sandboxd/abi"
)

// readModule reads the module file at path for run, launch and compile,
// at most abi.MaxModuleBytes of it (the most a guest's proc_spawn reads):
// a larger file is refused before it is read, and a device or pipe that
// never ends (/dev/zero) is read no further than that. It fails as
// "cannot read module PATH: WHY: WHAT TO DO".
func readModule(path string) ([]byte, error) { return readModuleAtMost(path, abi.MaxModuleBytes) }

// readCoreModule is readModule for a module to compile (run, launch,
// compile): it also refuses a WebAssembly component, whose header says so
// (version 0x0d, layer 1), naming what it is and the target to build for.
// sandboxd runs core modules of WASI preview1, and toolchains that build
// components by default (Rust's wasm32-wasip2) build those too; the
// decoder would only say that the version is not 1.
func readCoreModule(path string) ([]byte, error) {
	wasm, err := readModule(path)
	if err == nil && len(wasm) >= 8 && string(wasm[:4]) == "\x00asm" && wasm[6] == 1 && wasm[7] == 0 {
		return nil, fmt.Errorf("%s is a WebAssembly component (the component model, WASI 0.2), and sandboxd runs core modules of WASI preview1: "+
			"build it as a WebAssembly command module for wasm32-wasip1 (Rust: --target wasm32-wasip1; Go: GOOS=wasip1 GOARCH=wasm)", path)
	}
	return wasm, err
}

func readModuleAtMost(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read module %s: %v: check the path", path, reason(err))
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() && fi.Size() > limit {
		return nil, tooLarge(path, limit)
	}
	wasm, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("cannot read module %s: %v: check the path", path, reason(err))
	}
	if int64(len(wasm)) > limit {
		return nil, tooLarge(path, limit)
	}
	return wasm, nil
}

func tooLarge(path string, limit int64) error {
	return fmt.Errorf("cannot read module %s: it is larger than %s, the most sandboxd compiles: give a WebAssembly module", path, sizeText(int(limit)))
}
