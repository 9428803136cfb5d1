package main

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// cPrograms are the C programs every runtime runs, built for wasm32-wasi
// and natively from the same source.
var cPrograms = map[string]string{
	"hello":    "bench/hello.c",
	"hostcall": "bench/hostcall.c",
	"touch":    "bench/touch.c",
	"ucase":    "examples/ucase/ucase.c",
}

// build builds every peer into the scratch directory: sandboxd as `make
// build` does (static), wazero's CLI at go.mod's version, the C programs
// for wasm32-wasi (Debian's wasi-libc) and natively, a static Go hello
// world, and ucase's input.
func (h *harness) build() error {
	bin := filepath.Join(h.work, "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		return err
	}
	h.logf("building sandboxd, wazero %s's CLI and the C programs into %s", h.wazeroVersion(), h.work)
	h.sandboxd = filepath.Join(bin, "sandboxd")
	if _, _, err := h.run(10*time.Minute, []string{"CGO_ENABLED=0"}, "go", "build", "-o", h.sandboxd, "./cmd/sandboxd"); err != nil {
		return err
	}
	// The version of the go.mod pin: the package is built from the module
	// graph of this checkout.
	h.wazero = filepath.Join(bin, "wazero")
	if _, _, err := h.run(10*time.Minute, nil, "go", "build", "-o", h.wazero, "github.com/tetratelabs/wazero/cmd/wazero"); err != nil {
		return err
	}
	if p, err := exec.LookPath("node"); err == nil {
		h.node = p
		h.runner = filepath.Join(h.root, "bench/wasi-run.mjs")
	} else {
		h.logf("node not found: its rows are n/a")
	}
	h.wasm, h.native = map[string]string{}, map[string]string{}
	for name, src := range cPrograms {
		w := filepath.Join(h.work, name+".wasm")
		if _, _, err := h.run(2*time.Minute, nil, "clang", "--target=wasm32-wasi", "--sysroot=/usr", "-O2", "-o", w, src); err != nil {
			return fmt.Errorf("%w (clang and Debian's wasi-libc build the wasm modules)", err)
		}
		n := filepath.Join(bin, name)
		if _, _, err := h.run(2*time.Minute, nil, "cc", "-O2", "-o", n, src); err != nil {
			return err
		}
		h.wasm[name], h.native[name] = w, n
	}
	dir := filepath.Join(h.work, "gohello")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte("package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(\"hello\") }\n"), 0o644); err != nil {
		return err
	}
	h.goHello = filepath.Join(bin, "gohello")
	cmd := exec.Command("go", "build", "-o", h.goHello, "main.go")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GO111MODULE=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build of a hello world: %v\n%s", err, out)
	}
	h.input = filepath.Join(h.work, "in", "input.txt")
	return writeInput(h.input, pick(h, 64, 256)<<20)
}

// writeInput writes size bytes of mixed-case ASCII text with digits and
// punctuation, 64-byte lines drawn from 512 fixed ones, as bench/run.sh's
// input.
func writeInput(path string, size int) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	const chars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ,.;"
	r := rand.New(rand.NewPCG(1, 2))
	var lines [512][64]byte
	for i := range lines {
		for j := 0; j < 63; j++ {
			lines[i][j] = chars[r.IntN(len(chars))]
		}
		lines[i][63] = '\n'
	}
	w := bufio.NewWriterSize(f, 1<<20)
	for n := 0; n < size; n += 64 {
		w.Write(lines[n/64%512][:])
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
