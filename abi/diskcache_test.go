package abi

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/sandboxd/sandboxd/abi/abitest"
	"github.com/sandboxd/sandboxd/caps"
	"golang.org/x/sys/unix"
)

// exitWASM is a module that exits with code (1 to 63): each code's module
// has bytes of its own, and all are of one size.
func exitWASM(t *testing.T, code int) []byte {
	return abitest.WATText(t, fmt.Sprintf(`(module
	  (import "sandboxd" "proc_exit" (func $exit (param i32)))
	  (memory (export "memory") 1)
	  (func (export "_start") (call $exit (i32.const %d))))`, code))
}

// cacheFiles are the regular files under dir, with their modification
// times.
func cacheFiles(t *testing.T, dir string) map[string]time.Time {
	t.Helper()
	files := map[string]time.Time{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		fi, err := d.Info()
		if err == nil {
			files[path] = fi.ModTime()
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// filesBytes is the size of files together.
func filesBytes(t *testing.T, files []string) int64 {
	t.Helper()
	var n int64
	for _, f := range files {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		n += fi.Size()
	}
	return n
}

// newFiles are the files of after that before does not have.
func newFiles(before, after map[string]time.Time) []string {
	var out []string
	for f := range after {
		if _, ok := before[f]; !ok {
			out = append(out, f)
		}
	}
	slices.Sort(out)
	return out
}

// logBuffer is a log a test reads, written by any goroutine.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// cacheRuntime is a runtime whose cache is dir, bounded to bound bytes
// (Config.MaxCacheBytes), logging to logs when it is not nil.
func cacheRuntime(t *testing.T, dir string, bound int64, logs *logBuffer) *Runtime {
	t.Helper()
	cfg := Config{CacheDir: dir, MaxCacheBytes: bound}
	if logs != nil {
		cfg.Logger = hclog.New(&hclog.LoggerOptions{Output: logs, Level: hclog.Warn})
	}
	rt, err := NewRuntime(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close(context.Background()) })
	return rt
}

// runExit compiles wasm on rt, runs it and checks that it exits with
// code. It returns the module, still held.
func runExit(t *testing.T, rt *Runtime, wasm []byte, code int) *Module {
	t.Helper()
	m, err := rt.Compile(context.Background(), "m", wasm)
	if err != nil {
		t.Fatal(err)
	}
	g := rt.NewGuest(m, GuestConfig{ID: "g", Table: caps.NewTable(caps.NewKernel(nil), &caps.Holder{ID: "g"}, 0)})
	if st := g.Run(context.Background()); st.Err() != nil || st.Code != uint32(code) {
		t.Fatalf("guest: %+v, want exit %d", st, code)
	}
	return m
}

// A full disk, here a file size limit of 0 that fails every write as
// ENOSPC would, used to fail the compile itself: wazero returns the error
// of writing its cache file, after it has compiled the module. The module
// compiles and runs, and the failure is a warning.
func TestACompileSucceedsWhenItsCodeCannotBeWrittenToTheCache(t *testing.T) {
	wasm := exitWASM(t, 7)
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_FSIZE, &lim); err != nil {
		t.Fatal(err)
	}
	low := lim
	low.Cur = 0
	if err := unix.Setrlimit(unix.RLIMIT_FSIZE, &low); err != nil {
		t.Fatal(err)
	}
	restored := false
	restore := func() {
		if !restored {
			restored = true
			if err := unix.Setrlimit(unix.RLIMIT_FSIZE, &lim); err != nil {
				t.Fatal(err)
			}
		}
	}
	defer restore()
	var logs logBuffer
	dir := t.TempDir()
	rt := cacheRuntime(t, dir, 0, &logs)
	m, err := rt.Compile(context.Background(), "m", wasm)
	restore()
	if err != nil {
		t.Fatalf("compile with the cache unwritable: %v", err)
	}
	m.Release()
	runExit(t, rt, wasm, 7).Release()
	if !strings.Contains(logs.String(), "[WARN]") {
		t.Errorf("no warning logged of the cache's failure; log:\n%s", logs.String())
	}
}

// A compiled code file the runtime cannot read (damaged, or of a format
// it does not know) used to fail every compile of its module: it is
// compiled anew, and the failure is a warning.
func TestADamagedCodeFileInTheCacheIsCompiledAnew(t *testing.T) {
	dir := t.TempDir()
	runExit(t, cacheRuntime(t, dir, 0, nil), exitWASM(t, 9), 9).Release()
	if err := os.WriteFile(codeFileOf(t, dir), []byte("damaged"), 0o600); err != nil {
		t.Fatal(err)
	}
	var logs logBuffer
	runExit(t, cacheRuntime(t, dir, 0, &logs), exitWASM(t, 9), 9).Release()
	if !strings.Contains(logs.String(), "[WARN]") {
		t.Errorf("no warning logged of the damaged file; log:\n%s", logs.String())
	}
}

// A module that does not compile, or that sandboxd refuses once compiled
// (here: no _start), used to leave its rewrite and its compiled code in
// the cache for good: any client could fill the disk with them.
func TestACompileThatFailsLeavesNothingInTheCache(t *testing.T) {
	dir := t.TempDir()
	rt := cacheRuntime(t, dir, 0, nil)
	for i, src := range []string{
		`(module (func (export "f")))`,
		`(module (memory (export "memory") 1) (func (export "_start") (i32.store (i32.const 0) (i64.const 1))))`,
	} {
		wasm := abitest.WATText(t, src, "--no-check")
		if m, err := rt.Compile(context.Background(), "m", wasm); err == nil {
			m.Release()
			t.Fatalf("module %d compiled", i)
		}
	}
	if files := cacheFiles(t, dir); len(files) != 0 {
		t.Fatalf("failed compiles left %d files in the cache: %v", len(files), files)
	}
}

// A runtime starting over a cache directory that earlier processes filled
// orders its files by their modification times, which each process sets
// when it compiles a module or loads it from the directory: past its
// bound it removes the least recently used module's files first.
func TestTheCacheOrderIsRebuiltFromFileTimes(t *testing.T) {
	dir := t.TempDir()
	rt := cacheRuntime(t, dir, -1, nil)
	files := map[int][]string{}
	for code := 1; code <= 3; code++ {
		before := cacheFiles(t, dir)
		runExit(t, rt, exitWASM(t, code), code).Release()
		if files[code] = newFiles(before, cacheFiles(t, dir)); len(files[code]) != 3 {
			t.Fatalf("module %d added files %v, want its rewrite, its code and the code's seal", code, files[code])
		}
	}
	// 2 is the least recently used, then 3, then 1.
	now := time.Now()
	for code, age := range map[int]time.Duration{2: 3 * time.Hour, 3: 2 * time.Hour, 1: time.Hour} {
		for _, f := range files[code] {
			if err := os.Chtimes(f, now.Add(-age), now.Add(-age)); err != nil {
				t.Fatal(err)
			}
		}
	}
	one := filesBytes(t, files[1])
	bound := 3*one + one/2
	rt = cacheRuntime(t, dir, bound, nil)
	runExit(t, rt, exitWASM(t, 4), 4).Release()
	have := cacheFiles(t, dir)
	for code, want := range map[int]bool{1: true, 2: false, 3: true} {
		for _, f := range files[code] {
			if _, ok := have[f]; ok != want {
				t.Errorf("module %d's %s kept: %v, want %v", code, filepath.Base(f), ok, want)
			}
		}
	}
	if len(have) != 9 {
		t.Errorf("%d files kept, want 9 (modules 1, 3 and 4): %v", len(have), have)
	}
}

// A compile of a module already compiled in memory, as a warm launch
// does, touches nothing in the cache directory: the bound costs a warm
// launch nothing.
func TestAWarmCompileDoesNotTouchTheCache(t *testing.T) {
	dir := t.TempDir()
	rt := cacheRuntime(t, dir, 0, nil)
	first := runExit(t, rt, exitWASM(t, 5), 5)
	first.Release()
	old := time.Now().Add(-time.Hour).Truncate(time.Second)
	for f := range cacheFiles(t, dir) {
		if err := os.Chtimes(f, old, old); err != nil {
			t.Fatal(err)
		}
	}
	before := cacheFiles(t, dir)
	again := runExit(t, rt, exitWASM(t, 5), 5)
	again.Release()
	if !sameCompilation(first, again) {
		t.Fatal("the module was compiled again")
	}
	after := cacheFiles(t, dir)
	if len(after) != len(before) {
		t.Fatalf("files before the warm compile %v, after %v", before, after)
	}
	for f, mt := range after {
		if !mt.Equal(before[f]) {
			t.Errorf("%s changed by a warm compile: modified %v, before %v", f, mt, before[f])
		}
	}
}

// The files a module is counted by are those it keeps in the cache
// directory: where wazero keeps its machine code (a name the runtime
// computes as wazero does; another wazero version may change it) and its
// rewrite.
func TestAModuleIsCountedByTheFilesItKeeps(t *testing.T) {
	for _, cfg := range []Config{{}, {NoDebugInfo: true}, {NoLoopChecks: true, NoStackChecks: true}} {
		dir := t.TempDir()
		cfg.CacheDir = dir
		rt, err := NewRuntime(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		m := runExit(t, rt, exitWASM(t, 3), 3)
		counted := m.disk.paths()
		m.Release()
		rt.Close(context.Background())
		var kept []string
		for f := range cacheFiles(t, dir) {
			kept = append(kept, f)
		}
		slices.Sort(kept)
		slices.Sort(counted)
		if want := 3 - btoi(cfg.NoLoopChecks); len(kept) != int(want) || !slices.Equal(kept, counted) {
			t.Errorf("%+v: the module is counted by %v, and keeps %v", cfg, counted, kept)
		}
	}
}

// Compiles of distinct modules at once keep the cache within its bound
// (run with -race).
func TestConcurrentCompilesKeepTheCacheWithinItsBound(t *testing.T) {
	probe := t.TempDir()
	runExit(t, cacheRuntime(t, probe, 0, nil), exitWASM(t, 60), 60).Release()
	var one int64
	for f := range cacheFiles(t, probe) {
		one += filesBytes(t, []string{f})
	}
	bound := 3*one + one/2
	dir := t.TempDir()
	rt := cacheRuntime(t, dir, bound, nil)
	mods := make([][]byte, 24)
	for i := range mods {
		mods[i] = exitWASM(t, i+1)
	}
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := w; i < len(mods); i += 4 {
				m, err := rt.Compile(context.Background(), "m", mods[i])
				if err != nil {
					t.Error(err)
					return
				}
				m.Release()
			}
		})
	}
	wg.Wait()
	var n int64
	for f := range cacheFiles(t, dir) {
		n += filesBytes(t, []string{f})
	}
	if n > bound {
		t.Fatalf("the cache holds %d bytes, past its bound of %d", n, bound)
	}
}

// The bound counts and removes only the cache's own files: a file of
// another name in its directories stays, and so does a temporary file
// young enough to be a write in progress; one old enough to be left by a
// process that ended is counted, and removed first when it is the least
// recently used.
func TestTheCacheRemovesOnlyItsOwnFiles(t *testing.T) {
	dir := t.TempDir()
	rt := cacheRuntime(t, dir, -1, nil)
	runExit(t, rt, exitWASM(t, 1), 1).Release()
	codeDir := rt.disk.codeDir
	rt.Close(context.Background())
	key := strings.Repeat("ab", 32)
	old := time.Now().Add(-time.Hour)
	files := map[string]bool{ // path: kept once another module is compiled
		filepath.Join(codeDir, key+".123.tmp"):                       false,
		filepath.Join(dir, "rewritten", ".tmp-456"):                  false,
		filepath.Join(codeDir, key+".789.tmp"):                       true, // young
		filepath.Join(codeDir, "notes.txt"):                          true,
		filepath.Join(dir, "rewritten", "notes.txt"):                 true,
		filepath.Join(dir, "notes.txt"):                              true,
		filepath.Join(dir, "wazero-v0.0.1-amd64-linux", "notes.txt"): true,
		filepath.Join(dir, "wazero-v0.0.1-amd64-linux", key):         false, // another version's code
	}
	for f := range files {
		if err := os.MkdirAll(filepath.Dir(f), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f, make([]byte, 100000), 0o600); err != nil {
			t.Fatal(err)
		}
		if !strings.HasSuffix(f, ".789.tmp") {
			if err := os.Chtimes(f, old, old); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Room for modules 1 and 2, not for the old files too.
	before := cacheFiles(t, dir)
	rt = cacheRuntime(t, dir, 100000, nil)
	runExit(t, rt, exitWASM(t, 2), 2).Release()
	have := cacheFiles(t, dir)
	for f, kept := range files {
		if _, ok := have[f]; ok != kept {
			t.Errorf("%s kept: %v, want %v", f, ok, kept)
		}
	}
	if added := newFiles(before, have); len(added) != 3 {
		t.Errorf("module 2 added %v, want its rewrite, its code and the code's seal", added)
	}
	if len(have) != len(before)-3+3 {
		t.Errorf("%d files in the cache directory, want %d: %v", len(have), len(before)-1, have)
	}
}
