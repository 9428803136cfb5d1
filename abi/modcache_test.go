package abi

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/sandboxd/sandboxd/abi/abitest"
	"github.com/sandboxd/sandboxd/abi/internal/wasmbin"
	"github.com/sandboxd/sandboxd/caps"
)

// distinctModule is a module of its own bytes for each n.
func distinctModule(t testing.TB, n int) []byte {
	return abitest.WATText(t, fmt.Sprintf(`(module (func (export "_start")) (func (export "f%d")))`, n))
}

func newCacheRuntime(t *testing.T, maxIdle int) *Runtime {
	t.Helper()
	ctx := context.Background()
	rt, err := NewRuntime(ctx, Config{MaxIdleModules: maxIdle})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close(ctx) })
	return rt
}

func (rt *Runtime) cached(m *Module) bool {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	e, ok := rt.modules[m.Hash]
	return ok && e.m.compiledModule == m.compiledModule
}

// sameCompilation says that a and b share one compilation.
func sameCompilation(a, b *Module) bool { return a.compiledModule == b.compiledModule }

func (m *Module) holds() int {
	m.rt.mu.Lock()
	defer m.rt.mu.Unlock()
	return m.refs
}

func TestIdleModulesBeyondTheLimitAreDroppedLeastRecentlyUsedFirst(t *testing.T) {
	ctx := context.Background()
	rt := newCacheRuntime(t, 2)
	var ms []*Module
	for i := range 4 {
		m, err := rt.Compile(ctx, "m", distinctModule(t, i))
		if err != nil {
			t.Fatal(err)
		}
		ms = append(ms, m)
	}
	ms[0].Release()
	ms[1].Release()
	again, err := rt.Compile(ctx, "m", distinctModule(t, 0)) // 0 is used again: 1 is now the oldest
	if err != nil || !sameCompilation(again, ms[0]) {
		t.Fatalf("an idle module was compiled anew: %v", err)
	}
	again.Release()
	ms[2].Release() // three idle, two kept: 1 goes
	if !rt.cached(ms[0]) || rt.cached(ms[1]) || !rt.cached(ms[2]) {
		t.Fatalf("cached after dropping one: %v %v %v, want true false true", rt.cached(ms[0]), rt.cached(ms[1]), rt.cached(ms[2]))
	}
	if !rt.cached(ms[3]) {
		t.Fatal("a held module was dropped")
	}
	m1, err := rt.Compile(ctx, "m", distinctModule(t, 1))
	if err != nil || sameCompilation(m1, ms[1]) || m1.Cached() {
		t.Fatalf("a dropped module came back from the cache: %v", err)
	}
	m1.Release()
}

// The same bytes compiled under two names share one compilation, and
// each Module keeps the name its caller gave it: a guest's argv[0], its
// holder's label and its audit records name the program as its launcher
// did, not as whoever compiled those bytes first.
func TestCompileKeepsEachCallersNameForTheSameBytes(t *testing.T) {
	ctx := context.Background()
	rt := newCacheRuntime(t, 4)
	wasm := distinctModule(t, 0)
	a, err := rt.Compile(ctx, "fetcher.wasm", wasm)
	if err != nil {
		t.Fatal(err)
	}
	b, err := rt.Compile(ctx, "parser.wasm", wasm)
	if err != nil {
		t.Fatal(err)
	}
	if a.Name != "fetcher.wasm" || b.Name != "parser.wasm" {
		t.Fatalf("names %q and %q, want fetcher.wasm and parser.wasm", a.Name, b.Name)
	}
	if a.Cached() || !b.Cached() {
		t.Fatalf("Cached: %v for the compile that compiled, %v for the one that found it; want false, true", a.Cached(), b.Cached())
	}
	if !sameCompilation(a, b) || a.holds() != 2 {
		t.Fatalf("the same bytes compiled twice or held apart: same %v, holds %d", sameCompilation(a, b), a.holds())
	}
	a.Release()
	if !rt.cached(b) || b.holds() != 1 {
		t.Fatalf("after one release: cached %v, holds %d, want true and 1", rt.cached(b), b.holds())
	}
	b.Release()
}

// A guest holds its module while it runs: more idle modules than the limit
// do not drop it, and it becomes idle only when the guest exits.
func TestAGuestHoldsItsModuleUntilItExits(t *testing.T) {
	ctx := context.Background()
	rt := newCacheRuntime(t, 1)
	m, err := rt.Compile(ctx, "spin", abitest.WATText(t, `(module (func (export "_start") (loop $l (br $l))))`))
	if err != nil {
		t.Fatal(err)
	}
	g := rt.NewGuest(m, GuestConfig{ID: "g", Table: caps.NewTable(caps.NewKernel(nil), &caps.Holder{ID: "g"}, 0)})
	m.Release()
	g.Start(ctx)
	for i := range 3 {
		o, err := rt.Compile(ctx, "m", distinctModule(t, i))
		if err != nil {
			t.Fatal(err)
		}
		o.Release()
	}
	if !rt.cached(m) || m.holds() != 1 {
		t.Fatalf("while its guest runs: cached %v, holds %d", rt.cached(m), m.holds())
	}
	g.Kill("test over")
	g.Wait()
	if m.holds() != 0 || !rt.cached(m) {
		t.Fatalf("after its guest exited: cached %v, holds %d, want idle", rt.cached(m), m.holds())
	}
}

// proc_exec passes the new module's hold to the guest and ends the old
// one's; the module handle it came through, closed by the exec, ends its
// own. When the guest exits, both modules are idle.
func TestExecEndsTheHoldsOfBothModulesWhenTheGuestExits(t *testing.T) {
	ctx := context.Background()
	rt := newCacheRuntime(t, 8)
	first, err := rt.Compile(ctx, "first", abitest.WATText(t, `(module
  (import "sandboxd" "proc_exec" (func $exec (param i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "_start") (drop (call $exec (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)))))`))
	if err != nil {
		t.Fatal(err)
	}
	second, err := rt.Compile(ctx, "second", distinctModule(t, 0))
	if err != nil {
		t.Fatal(err)
	}
	k := caps.NewKernel(nil)
	h := &caps.Holder{ID: "g"}
	tbl := caps.NewTable(k, h, 0)
	if _, err := tbl.Insert(k.Mint(h, NewModuleResource(second), caps.RightProcExec, 0, "second", "test")); err != nil {
		t.Fatal(err)
	}
	g := rt.NewGuest(first, GuestConfig{ID: "g", Table: tbl})
	first.Release()
	second.Release()
	if st := g.Run(ctx); st.Err() != nil || g.Module() != second {
		t.Fatalf("exec: %+v, running %s", st, g.Module().Name)
	}
	if first.holds() != 0 || second.holds() != 0 {
		t.Fatalf("holds after exit: first %d, second %d, want 0 and 0", first.holds(), second.holds())
	}
}

// Compiles of the same bytes racing releases and drops always get a module
// that is cached and held (run with -race).
func TestConcurrentCompilesAndReleasesKeepHoldsConsistent(t *testing.T) {
	ctx := context.Background()
	rt := newCacheRuntime(t, 1)
	mods := [][]byte{distinctModule(t, 0), distinctModule(t, 1), distinctModule(t, 2)}
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 60 {
				m, err := rt.Compile(ctx, "m", mods[(w+i)%len(mods)])
				if err != nil {
					t.Error(err)
					return
				}
				if !rt.cached(m) || m.holds() < 1 {
					t.Errorf("Compile returned a module that is dropped or not held")
				}
				m.Release()
			}
		}()
	}
	wg.Wait()
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if rt.idle.Len() != 1 || len(rt.modules) != 1 {
		t.Fatalf("after all releases: %d idle, %d cached, want 1 and 1", rt.idle.Len(), len(rt.modules))
	}
}

// The idle modules are bounded by their functions as well as by their
// number: a module that would take the idle functions past the bound
// drops the least recently used.
func TestIdleModulesAreBoundedByTheirFunctions(t *testing.T) {
	ctx := context.Background()
	rt := newCacheRuntime(t, 8)
	rt.maxIdleFuncs = 5 // distinctModule defines 2 functions
	var ms []*Module
	for i := range 3 {
		m, err := rt.Compile(ctx, "m", distinctModule(t, i))
		if err != nil {
			t.Fatal(err)
		}
		if m.funcs != 2 {
			t.Fatalf("module %d defines %d functions, want 2", i, m.funcs)
		}
		ms = append(ms, m)
	}
	for _, m := range ms {
		m.Release()
	}
	if rt.cached(ms[0]) || !rt.cached(ms[1]) || !rt.cached(ms[2]) {
		t.Fatalf("cached: %v %v %v, want false true true (6 idle functions, 5 allowed)", rt.cached(ms[0]), rt.cached(ms[1]), rt.cached(ms[2]))
	}
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if rt.idleFuncs != 4 {
		t.Fatalf("idle functions %d, want 4", rt.idleFuncs)
	}
}

// A module is rewritten once per cache directory: a second runtime over
// the same directory compiles the kept rewrite (here replaced by another
// program's, to see which runs), and a damaged one is rewritten anew.
func TestRewrittenModulesAreKeptInTheCacheDir(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	exits := func(code int) []byte {
		return abitest.WATText(t, fmt.Sprintf(`(module
		  (import "sandboxd" "proc_exit" (func $exit (param i32)))
		  (memory (export "memory") 1)
		  (func (export "_start") (call $exit (i32.const %d))))`, code))
	}
	run := func(wasm []byte) ExitStatus {
		rt, err := NewRuntime(ctx, Config{CacheDir: dir})
		if err != nil {
			t.Fatal(err)
		}
		defer rt.Close(ctx)
		m, err := rt.Compile(ctx, "m", wasm)
		if err != nil {
			t.Fatal(err)
		}
		k := caps.NewKernel(nil)
		return rt.NewGuest(m, GuestConfig{ID: "g", Table: caps.NewTable(k, &caps.Holder{ID: "g"}, 0)}).Run(ctx)
	}
	three, five := exits(3), exits(5)
	if st := run(three); st.Code != 3 {
		t.Fatalf("first run: %+v", st)
	}
	kept, err := filepath.Glob(filepath.Join(dir, "rewritten", "*.wasm"))
	if err != nil || len(kept) != 1 {
		t.Fatalf("kept rewrites: %v (%v), want one", kept, err)
	}
	// Put five's rewrite where three's is kept.
	run(five)
	rt := &Runtime{rewriteDir: filepath.Join(dir, "rewritten")}
	checks := wasmbin.Checks{Loops: true, Stack: true}
	code, startFn, ok := rt.loadRewritten(sha256.Sum256(five), checks)
	if !ok {
		t.Fatal("five's rewrite was not kept")
	}
	if err := writeFileAtomic(rt.rewrittenPath(sha256.Sum256(three), checks), sealRewrite(code, startFn)); err != nil {
		t.Fatal(err)
	}
	if st := run(three); st.Code != 5 {
		t.Fatalf("three's run: %+v, want the kept rewrite (exit 5) to run", st)
	}
	// A damaged rewrite is rewritten.
	if err := os.WriteFile(rt.rewrittenPath(sha256.Sum256(three), checks), []byte("\x00\x00asm\x01\x00\x00\x00garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if st := run(three); st.Code != 3 {
		t.Fatalf("three's run over a damaged rewrite: %+v, want exit 3", st)
	}
}

// The idle modules are bounded by their size too: compiled code and what
// wazero keeps of a module take about as much as the module's bytes (an
// idle module of 7 MB, eight functions of 900 KB, kept 7 MB), and a module
// of few large functions is far under the bound on functions: 32 modules
// of 128 MiB, which proc_spawn reads, would keep some 4 GB.
func TestIdleModulesAreBoundedByTheirSize(t *testing.T) {
	ctx := context.Background()
	rt := newCacheRuntime(t, 8)
	var ms []*Module
	for i := range 3 {
		m, err := rt.Compile(ctx, "m", distinctModule(t, i))
		if err != nil {
			t.Fatal(err)
		}
		ms = append(ms, m)
	}
	rt.mu.Lock()
	rt.maxIdleBytes = uint64(ms[1].Size + ms[2].Size)
	rt.mu.Unlock()
	for _, m := range ms {
		m.Release()
	}
	if rt.cached(ms[0]) || !rt.cached(ms[1]) || !rt.cached(ms[2]) {
		t.Fatalf("cached: %v %v %v, want false true true (3 idle modules, room for the bytes of 2)", rt.cached(ms[0]), rt.cached(ms[1]), rt.cached(ms[2]))
	}
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if want := uint64(ms[1].Size + ms[2].Size); rt.idleBytes != want {
		t.Fatalf("idle bytes %d, want %d", rt.idleBytes, want)
	}
}
