package daemon

import (
	"context"
	"runtime"
	"testing"

	"github.com/sandboxd/sandboxd/abi/abitest"
)

// CompileCached tells a compile that found its module compiled in memory
// from one that compiled it: the same bytes again, under any name and
// after a Compile as after a CompileCached, are cached; bytes the runtime
// dropped as idle (MaxIdleModules) are compiled anew, here loaded from
// the disk cache, and are not.
func TestCompileCachedSaysWhetherTheModuleWasInMemory(t *testing.T) {
	s, err := New(context.Background(), Options{CacheDir: testCache, MaxIdleModules: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	hello := abitest.WAT(t, "abi/testdata/guests/hello.wat")
	spin := abitest.WAT(t, guests+"spin.wat")
	check := func(name string, wasm []byte, want bool) {
		t.Helper()
		m, cached, err := s.CompileCached(context.Background(), name, wasm)
		if err != nil {
			t.Fatal(err)
		}
		m.Release()
		if cached != want {
			t.Errorf("CompileCached(%s): cached %v, want %v", name, cached, want)
		}
	}
	check("hello.wat", hello, false)
	check("hello.wat", hello, true)
	check("other.wasm", hello, true)
	m, err := s.Compile(context.Background(), "spin.wat", spin) // hello is dropped: one idle module is kept
	if err != nil {
		t.Fatal(err)
	}
	m.Release()
	check("spin.wat", spin, true)
	check("hello.wat", hello, false)
	if _, _, err := s.CompileCached(context.Background(), "bad.wasm", []byte("\x00asm\x01\x00\x00\x00\xff")); err == nil {
		t.Errorf("CompileCached of a malformed module succeeded")
	}
}

// What CompileCached remembers of modules the runtime has dropped is
// dropped in turn: it keeps no more entries than modules it may still
// find, give or take the garbage not yet collected.
func TestCompileCachedForgetsDroppedModules(t *testing.T) {
	s, err := New(context.Background(), Options{CacheDir: t.TempDir(), MaxIdleModules: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	hello := abitest.WAT(t, "abi/testdata/guests/hello.wat")
	const n = 4 * minPruneAt
	for i := range n {
		// A custom section of its own makes each module's bytes new.
		wasm := append(append([]byte{}, hello...), 0, 3, 1, 'x', byte(i))
		m, err := s.Compile(context.Background(), "hello.wat", wasm)
		if err != nil {
			t.Fatal(err)
		}
		m.Release()
		if i%minPruneAt == 0 {
			runtime.GC()
		}
	}
	s.compiled.mu.Lock()
	kept := len(s.compiled.last)
	s.compiled.mu.Unlock()
	if kept >= n/2 {
		t.Errorf("%d entries kept after %d modules, all but the last dropped by the runtime", kept, n)
	}
}
