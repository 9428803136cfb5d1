package daemon

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"path/filepath"
	"testing"

	"github.com/sandboxd/sandboxd/abi/abitest"
)

// exitModule is a module that exits with code (1 to 63): each code's
// module has bytes of its own, and all are of one size.
func exitModule(t testing.TB, code int) []byte {
	return abitest.WATText(t, fmt.Sprintf(`(module
	  (import "sandboxd" "proc_exit" (func $exit (param i32)))
	  (memory (export "memory") 1)
	  (func (export "_start") (call $exit (i32.const %d))))`, code))
}

// dirBytes is the size of the regular files under dir.
func dirBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		fi, err := d.Info()
		if err == nil {
			n += fi.Size()
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// keepsRewrite says whether the cache in dir keeps the rewrite of wasm.
func keepsRewrite(t *testing.T, dir string, wasm []byte) bool {
	t.Helper()
	kept, err := filepath.Glob(filepath.Join(dir, "rewritten", fmt.Sprintf("%x-*.wasm", sha256.Sum256(wasm))))
	if err != nil {
		t.Fatal(err)
	}
	return len(kept) > 0
}

// cacheSupervisor is a supervisor whose cache is dir, bounded to bound
// bytes, that keeps one module compiled while no guest runs it: the next
// launch of any other loads it from dir or compiles it.
func cacheSupervisor(t *testing.T, dir string, bound int64) *Supervisor {
	t.Helper()
	s, err := New(context.Background(), Options{CacheDir: dir, MaxCacheBytes: bound, MaxIdleModules: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), HangGuard)
		defer cancel()
		if err := s.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// launchExit compiles wasm through s, as a launch does, runs it and
// checks it exits with code.
func launchExit(t *testing.T, s *Supervisor, wasm []byte, code int) {
	t.Helper()
	m, err := s.Compile(context.Background(), fmt.Sprintf("exit%d.wasm", code), wasm)
	if err != nil {
		t.Fatal(err)
	}
	g, err := s.Launch(context.Background(), LaunchSpec{Module: m, MemoryLimit: 1 << 16})
	m.Release()
	if err != nil {
		t.Fatal(err)
	}
	if got := exitCode(t, g); got != uint32(code) {
		t.Fatalf("exit%d.wasm exited %d", code, got)
	}
}

// Every distinct module launched used to add its compiled code and its
// kept rewrite to the cache directory for good, so that any client, or
// any guest spawning from files, could fill the daemon's disk. The
// directory stays within its bound: the least recently used modules'
// files go, and such a module launches again, compiled anew.
func TestTheCompilationCacheOnDiskStaysWithinItsBound(t *testing.T) {
	// What one module keeps on disk, measured: the bound holds four.
	probe := t.TempDir()
	launchExit(t, cacheSupervisor(t, probe, 0), exitModule(t, 60), 60)
	one := dirBytes(t, probe)
	if one == 0 {
		t.Fatal("a launch kept nothing in its cache directory")
	}
	bound := 4*one + one/2

	dir := t.TempDir()
	s := cacheSupervisor(t, dir, bound)
	mods := make([][]byte, 8)
	for code := 1; code < len(mods); code++ {
		mods[code] = exitModule(t, code)
	}
	check := func(step string) {
		t.Helper()
		if n := dirBytes(t, dir); n > bound {
			t.Fatalf("%s: the cache directory holds %d bytes, past its bound of %d (one module keeps %d)", step, n, bound, one)
		}
	}
	for code := 1; code <= 6; code++ {
		launchExit(t, s, mods[code], code)
		check(fmt.Sprintf("after module %d", code))
	}
	// 3 to 6 are kept. 3, loaded from the disk again (one module stays in
	// memory), is now more recently used than 4, which the next one
	// evicts.
	launchExit(t, s, mods[3], 3)
	launchExit(t, s, mods[7], 7)
	check("after modules 3 and 7")
	for code := 1; code <= 7; code++ {
		want := code == 3 || code >= 5
		if got := keepsRewrite(t, dir, mods[code]); got != want {
			t.Errorf("module %d kept on disk: %v, want %v (the four most recently used are 3, 5, 6 and 7)", code, got, want)
		}
	}
	// An evicted module launches, compiled anew, and is kept again.
	launchExit(t, s, mods[1], 1)
	check("after module 1 again")
	if !keepsRewrite(t, dir, mods[1]) {
		t.Error("module 1, compiled anew, was not kept on disk")
	}
}

// BenchmarkWarmLaunchWithTheCacheAtItsBound is a launch of a module
// compiled in memory, its compile included (found in memory), as the
// daemon launches the bytes a client sends, while the cache on disk is at
// its bound: such a launch does not touch the cache, and the bound costs
// it nothing.
func BenchmarkWarmLaunchWithTheCacheAtItsBound(b *testing.B) {
	s, err := New(context.Background(), Options{CacheDir: b.TempDir(), MaxCacheBytes: 2048})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close(context.Background()) })
	for code := 10; code < 30; code++ {
		m, err := s.Compile(context.Background(), "fill.wasm", exitModule(b, code))
		if err != nil {
			b.Fatal(err)
		}
		m.Release()
	}
	wasm := exitModule(b, 7)
	for b.Loop() {
		m, err := s.Compile(context.Background(), "exit7.wasm", wasm)
		if err != nil {
			b.Fatal(err)
		}
		g, err := s.Launch(context.Background(), LaunchSpec{Module: m, MemoryLimit: 1 << 16})
		m.Release()
		if err != nil {
			b.Fatal(err)
		}
		if st := g.Wait(); st.Code != 7 {
			b.Fatalf("status %+v", st)
		}
	}
}
