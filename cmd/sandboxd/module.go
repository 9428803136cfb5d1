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
