package abi

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/abi/abitest"
	"github.com/sandboxd/sandboxd/abi/internal/wasmbin"
	"github.com/sandboxd/sandboxd/caps"
)

// Runtime tests of what sandboxd bounds in a module: its tables, its
// initial memory, and what any module can do to the process. The checks
// themselves are tested in package wasmbin.

// tableGrowWAT grows a table that declares no maximum: by 2^28 entries
// (2 GiB of the host's memory, outside --mem) the grow fails as the
// specification allows, returning -1; by 1000 it succeeds. The exit code
// says which step went wrong.
const tableGrowWAT = `(module
  (import "sandboxd" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (table $t 1 funcref)
  (func (export "_start")
    (if (i32.ne (table.grow $t (ref.null func) (i32.const 0x10000000)) (i32.const -1))
      (then (call $exit (i32.const 1))))
    (if (i32.ne (table.grow $t (ref.null func) (i32.const 1000)) (i32.const 1))
      (then (call $exit (i32.const 2))))
    (if (i32.ne (table.size $t) (i32.const 1001))
      (then (call $exit (i32.const 3))))
    (call $exit (i32.const 0))))`

func TestTableGrowthIsBoundedWithAndWithoutLoopChecks(t *testing.T) {
	wasm := abitest.WATText(t, tableGrowWAT)
	for _, cfg := range []Config{{NoLoopChecks: true}, {}} {
		if st := runOnRuntime(t, cfg, wasm); st.Err() != nil || st.Code != 0 {
			t.Errorf("loop checks %v: %+v, want exit 0", !cfg.NoLoopChecks, st)
		}
	}
}

// A module whose memory starts above the guest's limit ends as a trap
// naming both, and does not take the process down: wazero panics when its
// allocator refuses the initial memory.
func TestMemoryMinimumAboveTheLimitTrapsWithoutAPanic(t *testing.T) {
	ctx := context.Background()
	rt, err := NewRuntime(ctx, Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close(ctx) })
	m, err := rt.Compile(ctx, "big", abitest.WATText(t, `(module (memory (export "memory") 100) (func (export "_start")))`))
	if err != nil {
		t.Fatal(err)
	}
	if m.MemoryMin() != 100<<16 {
		t.Fatalf("MemoryMin %d, want %d", m.MemoryMin(), 100<<16)
	}
	k := caps.NewKernel(nil)
	run := func() ExitStatus {
		return rt.NewGuest(m, GuestConfig{ID: "g", Table: caps.NewTable(k, &caps.Holder{ID: "g"}, 0), MemoryLimit: 1 << 16}).Run(ctx)
	}
	if st := run(); st.Code != 134 || st.Trap == nil || !strings.Contains(st.Trap.Error(), "needs 6553600 bytes of memory to start, more than the guest's limit of 65536") {
		t.Fatalf("status %+v", st)
	}
	// Without that check, wazero's panic ends the guest alone.
	m.memoryMin = 0
	if st := run(); st.Code != 134 || st.Trap == nil || !strings.Contains(st.Trap.Error(), "runtime failure") {
		t.Fatalf("status when wazero panics: %+v", st)
	}
}

// fuzzModuleSeeds are modules FuzzRunModule starts from: one that calls
// the host, one that spins, one that grows a table, one whose memory is
// larger than the fuzz guests' limit, one that recurses without end.
var fuzzModuleSeeds = []string{
	`(module
  (import "sandboxd" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "sandboxd" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "hello\n")
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const 6))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
    (call $proc_exit (i32.const 7))))`,
	`(module (func (export "_start") (loop $l (br $l))))`,
	tableGrowWAT,
	`(module (memory (export "memory") 100) (func (export "_start")))`,
	`(module (func $r (call $r)) (func (export "_start") (call $r)))`,
}

// Any module, run as a guest with a small memory limit and a short
// timeout, ends with a status: never a panic of the process, and never
// the "runtime failure" that a panic escaping wazero is turned into.
func FuzzRunModule(f *testing.F) {
	for _, src := range fuzzModuleSeeds {
		f.Add(abitest.WATText(f, src))
	}
	ctx := context.Background()
	rt, err := NewRuntime(ctx, Config{NoDebugInfo: true, MaxIdleModules: 4})
	if err != nil {
		f.Fatal(err)
	}
	defer rt.Close(ctx)
	k := caps.NewKernel(nil)
	f.Fuzz(func(t *testing.T, wasm []byte) {
		m, err := rt.Compile(ctx, "fuzz", wasm)
		if err != nil {
			return
		}
		defer m.Release()
		tctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		defer cancel()
		g := rt.NewGuest(m, GuestConfig{ID: "g", Table: caps.NewTable(k, &caps.Holder{ID: "g"}, 0), MemoryLimit: 1 << 20})
		if st := g.Run(tctx); st.Trap != nil && strings.Contains(st.Trap.Error(), "runtime failure") {
			t.Fatalf("status %+v", st)
		}
	})
}

// BenchmarkCompileMostFunctions compiles a module of wasmbin.MaxFunctions empty
// functions, the most Precheck lets through, with loop checks as the
// daemon compiles: what one such module costs the host in time, in bytes
// allocated (B/op), and in resident memory that the compiled module keeps
// (MB-kept, the growth of the process's RSS while it is held).
func BenchmarkCompileMostFunctions(b *testing.B) {
	secs, err := wasmbin.Split(abitest.Functions(wasmbin.MaxFunctions, "\x00\x0b"))
	if err != nil {
		b.Fatal(err)
	}
	// The export of _start goes before the code section, the last.
	secs = slices.Insert(secs, len(secs)-1, wasmbin.Section{ID: 7, Body: []byte("\x01\x06_start\x00\x00")})
	wasm := secs.Encode()
	ctx := context.Background()
	b.ReportAllocs()
	var kept uint64
	for b.Loop() {
		rt, err := NewRuntime(ctx, Config{NoDebugInfo: true})
		if err != nil {
			b.Fatal(err)
		}
		debug.FreeOSMemory()
		before := rss(b)
		m, err := rt.Compile(ctx, "functions", wasm)
		if err != nil {
			b.Fatal(err)
		}
		debug.FreeOSMemory()
		if after := rss(b); after > before {
			kept += after - before
		}
		m.Release()
		rt.Close(ctx)
	}
	b.ReportMetric(float64(kept)/float64(b.N)/(1<<20), "MB-kept")
}

// rss is the process's resident memory in bytes.
func rss(b *testing.B) uint64 {
	data, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		b.Fatal(err)
	}
	var size, resident uint64
	if _, err := fmt.Sscan(string(data), &size, &resident); err != nil {
		b.Fatal(err)
	}
	return resident * uint64(os.Getpagesize())
}

// recurseWAT recurses until its argument reaches the global $stop, and
// then exits with 7. Counted by wasmbin.FrameBytes, $f takes
// FrameBytes(1, 0, 6) bytes a call (global.get, i32.eq, if, two calls and
// i32.add may define values) and _start FrameBytes(0, 0, 1).
const recurseWAT = `(module
  (import "sandboxd" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (global $stop i32 (i32.const %d))
  (func $f (param $n i32) (result i32)
    (if (i32.eq (local.get $n) (global.get $stop)) (then (call $exit (i32.const 7))))
    (call $f (i32.add (local.get $n) (i32.const 1))))
  (func (export "_start") (drop (call $f (i32.const 0)))))`

// A recursing guest traps at its --max-stack, to the frame, with and
// without loop checks, and the trap says so; one frame less runs.
func TestRecursionTrapsAtMaxStack(t *testing.T) {
	const maxStack = 1 << 20
	fits := (maxStack - wasmbin.FrameBytes(0, 0, 1)) / wasmbin.FrameBytes(1, 0, 6) // calls of $f within the bound
	for _, cfg := range []Config{{NoLoopChecks: true}, {}} {
		run := func(stop uint64) ExitStatus {
			ctx := context.Background()
			rt, err := NewRuntime(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer rt.Close(ctx)
			m, err := rt.Compile(ctx, "recurse", abitest.WATText(t, fmt.Sprintf(recurseWAT, stop)))
			if err != nil {
				t.Fatal(err)
			}
			defer m.Release()
			k := caps.NewKernel(nil)
			return rt.NewGuest(m, GuestConfig{ID: "g", Table: caps.NewTable(k, &caps.Holder{ID: "g"}, 0), MaxStack: maxStack}).Run(ctx)
		}
		if st := run(fits - 1); st.Code != 7 || st.Trap != nil {
			t.Errorf("loop checks %v: %d frames within the bound: %+v, want exit 7", !cfg.NoLoopChecks, fits, st)
		}
		st := run(fits)
		var se *StackError
		if st.Code != 134 || !errors.As(st.Trap, &se) || se.Limit != maxStack {
			t.Fatalf("loop checks %v: one frame past the bound: %+v, want a *StackError", !cfg.NoLoopChecks, st)
		}
		if want := "guest trapped: call stack exceeded --max-stack 1MiB"; !strings.HasPrefix(st.Err().Error(), want) {
			t.Errorf("message %q, want it to start %q", st.Err(), want)
		}
	}
}

// Without a MaxStack, a guest has DefaultMaxStack; above MaxMaxStack, it
// has MaxMaxStack.
func TestMaxStackDefaultAndCeiling(t *testing.T) {
	for _, c := range []struct{ set, want uint64 }{{0, DefaultMaxStack}, {1 << 40, MaxMaxStack}, {1 << 20, 1 << 20}} {
		ctx := context.Background()
		rt, err := NewRuntime(ctx, Config{})
		if err != nil {
			t.Fatal(err)
		}
		m, err := rt.Compile(ctx, "recurse", abitest.WATText(t, fmt.Sprintf(recurseWAT, -1)))
		if err != nil {
			t.Fatal(err)
		}
		k := caps.NewKernel(nil)
		st := rt.NewGuest(m, GuestConfig{ID: "g", Table: caps.NewTable(k, &caps.Holder{ID: "g"}, 0), MaxStack: c.set}).Run(ctx)
		m.Release()
		rt.Close(ctx)
		var se *StackError
		if !errors.As(st.Trap, &se) || se.Limit != c.want {
			t.Errorf("MaxStack %d: %+v, want a *StackError at %d", c.set, st, c.want)
		}
	}
}

// decoderPanicModule is a code entry whose local declarations (a
// reference type) overrun it: wazero v1.12.0's decoder panics on it
// (makeslice with a negative length). Found by FuzzInstrumentLoops.
const decoderPanicModule = "\x00asm\x01\x00\x00\x00\n\t\x01\x03\x010c0000"

// A module that makes wazero's decoder panic is refused as invalid, and
// the runtime compiles the next module as before.
func TestCompileRefusesAModuleTheDecoderPanicsOn(t *testing.T) {
	ctx := context.Background()
	rt, err := NewRuntime(ctx, Config{NoDebugInfo: true})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close(ctx)
	if m, err := rt.Compile(ctx, "bad.wasm", []byte(decoderPanicModule)); err == nil || !strings.Contains(err.Error(), "bad.wasm is not a valid WebAssembly module") {
		if m != nil {
			m.Release()
		}
		t.Fatalf("Compile of a module the decoder panics on: %v", err)
	}
	m, err := rt.Compile(ctx, "hello.wasm", abitest.WAT(t, "abi/testdata/guests/hello.wat"))
	if err != nil {
		t.Fatalf("Compile after the refused module: %v", err)
	}
	m.Release()
}

// A defect of sandboxd's that panics while a module is compiled fails that
// compilation with an error that says so, and leaves nothing waiting: the
// same module compiles on the next attempt, and so does another.
func TestAPanicWhileCompilingFailsOnlyThatCompilation(t *testing.T) {
	ctx := context.Background()
	rt, err := NewRuntime(ctx, Config{NoDebugInfo: true})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close(ctx)
	hello := abitest.WAT(t, "abi/testdata/guests/hello.wat")
	rt.beforeCompile = func() { panic("a defect") }
	m, err := rt.Compile(ctx, "hello.wasm", hello)
	if err == nil || !strings.Contains(err.Error(), "hello.wasm could not be compiled: sandboxd failed on it (a defect)") {
		if m != nil {
			m.Release()
		}
		t.Fatalf("Compile that panics: %v", err)
	}
	rt.beforeCompile = nil
	m, err = rt.Compile(ctx, "hello.wasm", hello)
	if err != nil {
		t.Fatalf("the same module after the panic: %v", err)
	}
	m.Release()
	if m, err = rt.Compile(ctx, "spin.wasm", abitest.WAT(t, "daemon/testdata/guests/spin.wat")); err != nil {
		t.Fatalf("another module after the panic: %v", err)
	}
	m.Release()
}

// oneTurnRuntime is a runtime that compiles one module at a time.
func oneTurnRuntime(t *testing.T) *Runtime {
	t.Helper()
	rt, err := NewRuntime(context.Background(), Config{NoDebugInfo: true, MaxCompiles: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close(context.Background()) })
	return rt
}

// compileAsync compiles wasm on a goroutine of its own and sends its
// error; the module, if any, is released.
func compileAsync(rt *Runtime, ctx context.Context, name string, wasm []byte) <-chan error {
	done := make(chan error, 1)
	go func() {
		m, err := rt.Compile(ctx, name, wasm)
		if m != nil {
			m.Release()
		}
		done <- err
	}()
	return done
}

// result is what done sends, or a failure of the test naming what never
// came, at HangGuard.
func result(t *testing.T, done <-chan error, what string) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(HangGuard):
		t.Fatalf("after %v: %s", HangGuard, what)
		return nil
	}
}

// waitUntil polls cond until it holds, or fails the test at HangGuard.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(HangGuard)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", HangGuard, what)
		}
		time.Sleep(time.Millisecond)
	}
}

// parkedInCompile reports whether a goroutine waits in Runtime.Compile:
// for its turn (inTurn: in compileInTurn, not yet compiling) or for
// another caller's compilation (not inTurn).
func parkedInCompile(inTurn bool) bool {
	buf := make([]byte, 1<<20)
	n := runtime.Stack(buf, true)
	for _, g := range strings.Split(string(buf[:n]), "\n\n") {
		waiting := strings.Contains(g, "[chan receive") || strings.Contains(g, "[chan send") || strings.Contains(g, "[select")
		if waiting && strings.Contains(g, "abi.(*Runtime).Compile(") && !strings.Contains(g, "compileSafely") &&
			strings.Contains(g, "compileInTurn") == inTurn {
			return true
		}
	}
	return false
}

// compilingNow reports whether a compilation of wasm has been started.
func (rt *Runtime) compilingNow(wasm []byte) bool {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	return rt.modules[sha256.Sum256(wasm)] != nil
}

// Compilations beyond Config.MaxCompiles wait their turn: while one runs,
// another module's compilation waits, and gives up when its context ends;
// once the first is done, the other compiles.
func TestCompilationsBeyondMaxCompilesWaitTheirTurn(t *testing.T) {
	ctx := context.Background()
	rt := oneTurnRuntime(t)
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	rt.beforeCompile = func() { once.Do(func() { close(entered); <-release }) }
	first := compileAsync(rt, ctx, "hello.wasm", abitest.WAT(t, "abi/testdata/guests/hello.wat"))
	<-entered // the first compilation holds the one turn
	other := abitest.WAT(t, "daemon/testdata/guests/spin.wat")
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	second := compileAsync(rt, cctx, "spin.wasm", other)
	waitUntil(t, "the second compilation waits its turn", func() bool { return parkedInCompile(true) })
	cancel()
	if err := result(t, second, "a compilation whose context ended still waits its turn"); !errors.Is(err, context.Canceled) {
		t.Fatalf("a compilation past MaxCompiles whose context ended: %v; want it to give up waiting", err)
	}
	close(release)
	if err := result(t, first, "the first compilation never ended"); err != nil {
		t.Fatal(err)
	}
	if err := result(t, compileAsync(rt, ctx, "spin.wasm", other), "the waiting module never compiled"); err != nil {
		t.Fatalf("the waiting module once the turn is free: %v", err)
	}
}

// Callers of Compile for the same bytes share one compilation. When the
// caller that started it gives up waiting for its turn (its client went
// away), another caller waiting for the same module with a live context
// must still get the module: the first caller's cancellation is not its
// error.
func TestACancelledCompileWaitingItsTurnFailsNoOtherCaller(t *testing.T) {
	ctx := context.Background()
	rt := oneTurnRuntime(t)
	rt.compiling <- struct{}{} // another module's compilation holds the one turn
	wasm := abitest.WAT(t, "abi/testdata/guests/hello.wat")
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	first := compileAsync(rt, cctx, "hello.wasm", wasm)
	waitUntil(t, "the first caller started the compilation", func() bool { return rt.compilingNow(wasm) })
	second := compileAsync(rt, ctx, "hello.wasm", wasm)
	waitUntil(t, "the second caller waits for the first's compilation", func() bool { return parkedInCompile(false) })
	cancel() // the first caller's client goes away
	if err := result(t, first, "the cancelled caller never returned"); !errors.Is(err, context.Canceled) {
		t.Fatalf("the cancelled caller: %v, want context.Canceled", err)
	}
	<-rt.compiling // the other compilation is done: the turn is free
	if err := result(t, second, "the second caller never got the module"); err != nil {
		t.Fatalf("a caller with a live context waiting for the same module: %v; want the module", err)
	}
}

// A caller of Compile waiting for a compilation another caller started
// (the same bytes), itself waiting for its turn, stops waiting when its
// own context ends, as docs/DAEMON.md says of a launch or compile whose
// client goes away.
func TestACompileWaitingForAnotherCallersCompilationStopsWithItsContext(t *testing.T) {
	ctx := context.Background()
	rt := oneTurnRuntime(t)
	rt.compiling <- struct{}{} // another module's compilation holds the one turn
	wasm := abitest.WAT(t, "abi/testdata/guests/hello.wat")
	first := compileAsync(rt, ctx, "hello.wasm", wasm)
	waitUntil(t, "the first caller started the compilation", func() bool { return rt.compilingNow(wasm) })
	cctx, cancel := context.WithCancel(ctx)
	cancel() // the second caller's client has gone away
	if err := result(t, compileAsync(rt, cctx, "hello.wasm", wasm), "a caller whose context ended still waits for another caller's compilation"); !errors.Is(err, context.Canceled) {
		t.Errorf("a caller whose context ended: %v, want context.Canceled", err)
	}
	<-rt.compiling // the turn is free
	if err := result(t, first, "the first caller never got the module"); err != nil {
		t.Fatal(err)
	}
}

// declarationsModule is a module of one function, _start, that declares
// n element entries (one passive segment naming _start n times) or n
// globals (mutable i32s), and exports its memory: what each entry or
// global costs the host is outside its linear memory.
func declarationsModule(what string, n int) []byte {
	leb := func(b []byte, v uint64) []byte {
		for ; v >= 0x80; v >>= 7 {
			b = append(b, byte(v)|0x80)
		}
		return append(b, byte(v))
	}
	section := func(m []byte, id byte, body []byte) []byte {
		return append(leb(append(m, id), uint64(len(body))), body...)
	}
	m := []byte("\x00asm\x01\x00\x00\x00")
	m = section(m, 1, []byte("\x01\x60\x00\x00"))
	m = section(m, 3, []byte("\x01\x00"))
	m = section(m, 5, []byte("\x01\x00\x01"))
	if what == "globals" {
		m = section(m, 6, append(leb(nil, uint64(n)), []byte(strings.Repeat("\x7f\x01\x41\x00\x0b", n))...))
	}
	m = section(m, 7, []byte("\x02\x06memory\x02\x00\x06_start\x00\x00"))
	if what == "elements" {
		m = section(m, 9, append(leb([]byte("\x01\x01\x00"), uint64(n)), make([]byte, n)...))
	}
	return section(m, 10, []byte("\x01\x02\x00\x0b"))
}

// Element entries and globals are kept outside the guest's linear memory,
// in every instance (some 40 and 80 bytes each) and in the compiled module
// the runtime keeps: a 30 MB module of one passive segment held 1.1 GB
// compiled and 1.1 GB more in each guest, whatever its --mem. The runtime
// refuses a module past wasmbin's bounds, and compiles one at them.
func TestCompileBoundsElementEntriesAndGlobals(t *testing.T) {
	ctx := context.Background()
	rt, err := NewRuntime(ctx, Config{NoDebugInfo: true})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close(ctx)
	for _, c := range []struct {
		what  string
		bound int
	}{
		{"elements", wasmbin.MaxElementEntries},
		{"globals", wasmbin.MaxGlobals},
	} {
		m, err := rt.Compile(ctx, c.what+"-over.wasm", declarationsModule(c.what, c.bound+1))
		if m != nil {
			m.Release()
		}
		if !errors.As(err, new(*LimitError)) {
			t.Errorf("%d %s: %v, want a *LimitError", c.bound+1, c.what, err)
		}
		m, err = rt.Compile(ctx, c.what+"-at.wasm", declarationsModule(c.what, c.bound))
		if err != nil {
			t.Errorf("%d %s: %v", c.bound, c.what, err)
			continue
		}
		m.Release()
	}
}

// A call's results beyond the registers take room in the caller's frame,
// sized for the widest call the function holds. Left out of the count, a
// recursion through frames that each take 100 results of the recursive
// call went past wazero's own ceiling of some 50 MB (its "stack overflow"
// trap) while counted under 8 MiB: --max-stack, and the memory budget
// that counts it, did not hold.
func TestCallResultsCountAgainstMaxStack(t *testing.T) {
	const n = 100
	ctx := context.Background()
	rt, err := NewRuntime(ctx, Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close(ctx)
	m, err := rt.Compile(ctx, "results", abitest.WATText(t, fmt.Sprintf(`(module
	  (memory (export "memory") 1)
	  (func $f (result%s) (call $f))
	  (func (export "_start") (call $f) %s))`, strings.Repeat(" i64", n), strings.Repeat("(drop) ", n))))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Release()
	k := caps.NewKernel(nil)
	st := rt.NewGuest(m, GuestConfig{ID: "g", Table: caps.NewTable(k, &caps.Holder{ID: "g"}, 0), MaxStack: DefaultMaxStack}).Run(ctx)
	if se := new(StackError); !errors.As(st.Trap, &se) {
		t.Fatalf("a recursion of %d results: %+v, want a *StackError at --max-stack", n, st)
	}
}

// Close while a compilation is under way, and so host modules are being
// instantiated in the background, panics nowhere: wazero's Close empties
// the maps such work writes to, and a host module built after it panicked
// on its own goroutine, taking the daemon down at shutdown. The race is
// met within a few hundred rounds on the code before (every one of three
// runs of this test panicked), and a round takes a fraction of a
// millisecond.
func TestCloseDuringACompilationPanicsNowhere(t *testing.T) {
	ctx := context.Background()
	wasm := abitest.WAT(t, "abi/testdata/guests/hello.wat")
	for range 500 {
		rt, err := NewRuntime(ctx, Config{})
		if err != nil {
			t.Fatal(err)
		}
		compiled := compileAsync(rt, ctx, "hello.wasm", wasm)
		if err := rt.Close(ctx); err != nil {
			t.Fatal(err)
		}
		// Compiled before Close, or refused as the runtime closed.
		if err := result(t, compiled, "a compilation never ended"); err != nil && !errors.Is(err, errClosed) && !strings.Contains(err.Error(), "closed") {
			t.Fatalf("a compilation as the runtime closed: %v", err)
		}
	}
}

// A module whose control flow the compiler would take too long over is
// refused as a *LimitError before anything compiles it: the runtime used
// to hand a module its rewrite refused to wazero, to let it say what was
// wrong, which for this one is the compile the limit is there to spare.
func TestCompileRefusesAFunctionOfTooManyBlocks(t *testing.T) {
	ctx := context.Background()
	rt, err := NewRuntime(ctx, Config{NoDebugInfo: true})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close(ctx)
	src := `(module (memory (export "memory") 1) (func (export "_start") ` + strings.Repeat("block end ", wasmbin.MaxFunctionBlocks+1) + `))`
	m, err := rt.Compile(ctx, "blocks.wasm", abitest.WATText(t, src))
	if m != nil {
		m.Release()
	}
	if !errors.As(err, new(*LimitError)) || !strings.Contains(err.Error(), "blocks, loops and ifs") {
		t.Fatalf("a function of %d blocks: %v, want a *LimitError naming its blocks", wasmbin.MaxFunctionBlocks+1, err)
	}
}

// BenchmarkCompileBlocksAtTheBound compiles what the control-flow bound
// lets through at its worst: ten functions of 10,000 sequential ifs, the
// squares of whose counts sum to wasmbin.MaxBlockWork (CLI.md, Control
// flow: 20–23 s on the machine of docs/BENCHMARKS.md). One run is enough:
// go test -run '^$' -bench CompileBlocksAtTheBound -benchtime 1x ./abi/
// one-function is the other bound alone: one function of 20,000 ifs
// (CLI.md: 12.5 s).
func BenchmarkCompileBlocksAtTheBound(b *testing.B) {
	for _, c := range []struct {
		name          string
		funcs, blocks int
	}{{"ten-functions", 10, 10000}, {"one-function", 1, wasmbin.MaxFunctionBlocks}} {
		fn := "(func " + strings.Repeat("i32.const 0 if end ", c.blocks) + ")"
		wasm := abitest.WATText(b, `(module (memory (export "memory") 1) (func (export "_start")) `+strings.Repeat(fn, c.funcs)+`)`)
		b.Run(c.name, func(b *testing.B) { compileEach(b, wasm) })
	}
}

// compileEach compiles wasm in a fresh runtime at each round.
func compileEach(b *testing.B, wasm []byte) {
	ctx := context.Background()
	for b.Loop() {
		rt, err := NewRuntime(ctx, Config{NoDebugInfo: true})
		if err != nil {
			b.Fatal(err)
		}
		m, err := rt.Compile(ctx, "blocks", wasm)
		if err != nil {
			b.Fatalf("a module at the bound: %v", err)
		}
		m.Release()
		rt.Close(ctx)
	}
}
