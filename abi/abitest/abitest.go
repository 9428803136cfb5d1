// Package abitest builds test guests from the sources in the repository at
// test time: WAT with wat2wasm, C with clang (freestanding against the
// native ABI header, or wasi-libc), Go with GOOS=wasip1. No .wasm file is
// committed; every guest a test runs comes from source here.
package abitest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

var (
	mu    sync.Mutex
	built = map[string][]byte{}
	dir   string
)

// RepoRoot returns the repository root (the directory holding go.mod).
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

func outDir(t testing.TB) string {
	if dir == "" {
		d, err := os.MkdirTemp("", "sandboxd-guests-")
		if err != nil {
			t.Fatalf("temp dir for guests: %v", err)
		}
		dir = d
	}
	return dir
}

func build(t testing.TB, key string, mk func(out string) *exec.Cmd) []byte {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	if b, ok := built[key]; ok {
		return b
	}
	h := sha256.Sum256([]byte(key))
	out := filepath.Join(outDir(t), hex.EncodeToString(h[:8])+".wasm")
	cmd := mk(out)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.Stdout = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("building test guest %s: %v\n%s\n(install the guest toolchains with: apt-get install -y clang lld wabt wasi-libc libclang-rt-14-dev-wasm32)", key, err, stderr.String())
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatalf("reading built guest: %v", err)
	}
	built[key] = b
	return b
}

// Path returns the absolute path of a file under the repository root.
func Path(rel string) string { return filepath.Join(RepoRoot(), rel) }

// WAT compiles a WebAssembly text file (path relative to the repo root).
func WAT(t testing.TB, rel string) []byte {
	src := Path(rel)
	return build(t, "wat:"+src, func(out string) *exec.Cmd {
		return exec.Command("wat2wasm", "--enable-all", "-o", out, src)
	})
}

// WATText compiles WebAssembly text given as src with wabt's wat2wasm and
// the given flags (default: --enable-all), for tests whose module is
// written out in the test itself.
func WATText(t testing.TB, src string, flags ...string) []byte {
	t.Helper()
	dir := t.TempDir()
	in, out := filepath.Join(dir, "m.wat"), filepath.Join(dir, "m.wasm")
	if err := os.WriteFile(in, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	if len(flags) == 0 {
		flags = []string{"--enable-all"}
	}
	if b, err := exec.Command("wat2wasm", append(flags, "-o", out, in)...).CombinedOutput(); err != nil {
		t.Fatalf("wat2wasm: %v\n%s", err, b)
	}
	wasm, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return wasm
}

// C compiles a freestanding C guest against the native ABI header
// (abi/include/sandboxd.h): clang --target=wasm32 -nostdlib.
func C(t testing.TB, rel string) []byte {
	src := Path(rel)
	inc := Path("abi/include")
	return build(t, "c:"+src, func(out string) *exec.Cmd {
		return exec.Command("clang", "--target=wasm32", "-nostdlib", "-O2", "-I", inc,
			"-Wl,--export=_start", "-Wl,--allow-undefined", "-o", out, src)
	})
}

// WASIC compiles a C program against Debian's wasi-libc.
func WASIC(t testing.TB, rel string) []byte {
	src := Path(rel)
	return build(t, "wasic:"+src, func(out string) *exec.Cmd {
		return exec.Command("clang", "--target=wasm32-wasi", "--sysroot=/usr", "-O2", "-o", out, src)
	})
}

// Go builds a Go main package (path relative to the repo root) for
// GOOS=wasip1 GOARCH=wasm.
func Go(t testing.TB, rel string) []byte {
	pkg := Path(rel)
	return build(t, "go:"+pkg, func(out string) *exec.Cmd {
		cmd := exec.Command("go", "build", "-o", out, ".")
		cmd.Dir = pkg
		cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
		return cmd
	})
}

// Source returns the wasm for a guest source file by its extension.
func Source(t testing.TB, rel string) []byte {
	switch filepath.Ext(rel) {
	case ".wat":
		return WAT(t, rel)
	case ".c":
		return C(t, rel)
	}
	panic(fmt.Sprintf("abitest: unknown guest source %s", rel))
}

// Buffer is a bytes.Buffer that a logger or a guest's output may write to
// from other goroutines while the test reads it.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *Buffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *Buffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// Watcher is a Buffer that closes Seen once what was written to it
// contains a string: a test waits on it for a line of output (a guest's
// "ready", a log line) instead of polling the buffer.
type Watcher struct {
	Buffer
	want string
	seen chan struct{}
	once sync.Once
}

// NewWatcher returns a Watcher for want.
func NewWatcher(want string) *Watcher {
	return &Watcher{want: want, seen: make(chan struct{})}
}

func (w *Watcher) Write(p []byte) (int, error) {
	n, err := w.Buffer.Write(p)
	if strings.Contains(w.Buffer.String(), w.want) {
		w.once.Do(func() { close(w.seen) })
	}
	return n, err
}

// Seen is closed once the output contains the string watched for.
func (w *Watcher) Seen() <-chan struct{} { return w.seen }

// Functions is a module of n functions of type () -> () whose bodies are
// body (its locals, then its code), for tests of what a module's
// declarations may cost.
func Functions(n int, body string) []byte {
	leb := func(b []byte, v uint64) []byte {
		for ; v >= 0x80; v >>= 7 {
			b = append(b, byte(v)|0x80)
		}
		return append(b, byte(v))
	}
	section := func(m []byte, id byte, content []byte) []byte {
		return append(leb(append(m, id), uint64(len(content))), content...)
	}
	m := []byte("\x00asm\x01\x00\x00\x00")
	m = section(m, 1, []byte("\x01\x60\x00\x00"))
	m = section(m, 3, append(leb(nil, uint64(n)), make([]byte, n)...))
	code := leb(nil, uint64(n))
	for range n {
		code = append(leb(code, uint64(len(body))), body...)
	}
	return section(m, 10, code)
}
