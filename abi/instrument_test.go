package abi

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/abi/abitest"
	"github.com/sandboxd/sandboxd/abi/internal/wasmbin"
	"github.com/sandboxd/sandboxd/caps"
)

// Runtime tests of loop checks: guests compiled with them behave as
// without, and stop when they must. The rewrite itself is tested in
// package wasmbin.

// renumberWAT uses every place a function index appears: calls before and
// after the import, call_indirect through an active segment, a passive
// segment with table.init, an expression segment, ref.func in a global and
// in code (declared), the start function and exports. It exits with a
// value that is only right if every index still names the same function.
const renumberWAT = `(module
  (import "sandboxd" "proc_exit" (func $exit (param i32)))
  (type $ret (func (result i32)))
  (table $t 8 funcref)
  (global $started (mut i32) (i32.const 0))
  (global $gref funcref (ref.func $five))
  (memory (export "memory") 1)
  (elem (i32.const 0) $one $two)
  (elem $passive func $three)
  (elem (table $t) (i32.const 4) funcref (ref.func $four))
  (elem declare func $six)
  (func $one (result i32) (i32.const 1))
  (func $two (result i32) (i32.const 2))
  (func $three (result i32) (i32.const 3))
  (func $four (result i32) (i32.const 4))
  (func $five (result i32) (i32.const 5))
  (func $six (result i32) (i32.const 6))
  (func $init (global.set $started (i32.const 100)))
  (start $init)
  (func $sum (param $n i32) (result i32) (local $acc i32)
    (loop $l
      (local.set $acc (i32.add (local.get $acc) (local.get $n)))
      (local.set $n (i32.sub (local.get $n) (i32.const 1)))
      (br_if $l (local.get $n)))
    (local.get $acc))
  (func (export "_start") (local $v i32)
    (table.init $t $passive (i32.const 2) (i32.const 0) (i32.const 1))
    (table.set $t (i32.const 5) (global.get $gref))
    (table.set $t (i32.const 6) (ref.func $six))
    (local.set $v (global.get $started))
    (local.set $v (i32.add (local.get $v) (call_indirect (type $ret) (i32.const 0))))
    (local.set $v (i32.add (local.get $v) (call_indirect (type $ret) (i32.const 1))))
    (local.set $v (i32.add (local.get $v) (call_indirect (type $ret) (i32.const 2))))
    (local.set $v (i32.add (local.get $v) (call_indirect (type $ret) (i32.const 4))))
    (local.set $v (i32.add (local.get $v) (call_indirect (type $ret) (i32.const 5))))
    (local.set $v (i32.add (local.get $v) (call_indirect (type $ret) (i32.const 6))))
    (local.set $v (i32.add (local.get $v) (call $sum (i32.const 10))))
    (call $exit (local.get $v))))`

// 100 (start) + 1+2+3+4+5+6 + 55 (sum 1..10)
const renumberWant = 176

// newTestGuest compiles wasm on a runtime of its own, configured by cfg,
// and returns a guest of it with an empty handle table.
func newTestGuest(t *testing.T, cfg Config, wasm []byte) *Guest {
	t.Helper()
	ctx := context.Background()
	rt, err := NewRuntime(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close(ctx) })
	m, err := rt.Compile(ctx, "m", wasm)
	if err != nil {
		t.Fatal(err)
	}
	k := caps.NewKernel(nil)
	return rt.NewGuest(m, GuestConfig{ID: "g", Table: caps.NewTable(k, &caps.Holder{ID: "g"}, 0), Args: []string{"m"}})
}

func runOnRuntime(t *testing.T, cfg Config, wasm []byte) ExitStatus {
	t.Helper()
	return newTestGuest(t, cfg, wasm).Run(context.Background())
}

func TestInstrumentedModuleBehavesAsTheOriginal(t *testing.T) {
	wasm := abitest.WATText(t, renumberWAT, "--debug-names")
	for _, cfg := range []Config{{NoLoopChecks: true}, {}} {
		if st := runOnRuntime(t, cfg, wasm); st.Err() != nil || st.Code != renumberWant {
			t.Errorf("loop checks %v: %+v, want exit %d", !cfg.NoLoopChecks, st, renumberWant)
		}
	}
	secs, err := wasmbin.Split(wasm)
	if err != nil {
		t.Fatal(err)
	}
	code, moved, err := secs.Instrument(wasmbin.Checks{Loops: true, Stack: true})
	if err != nil || !moved {
		t.Fatalf("Instrument: moved start %v, %v", moved, err)
	}
	if secs, err = wasmbin.Split(code); err != nil {
		t.Fatal(err)
	}
	s, err := secs.Precheck()
	if err != nil {
		t.Fatalf("the instrumented module cannot be read: %v", err)
	}
	if got := s.ModuleNames(); strings.Join(got, ",") != ModuleName+","+wasmbin.LoopModule {
		t.Errorf("imports from %q, want %s then %s", got, ModuleName, wasmbin.LoopModule)
	}
}

// A trap's trace still names the function it happened in: the name
// section is renumbered with the functions.
func TestInstrumentedTrapNamesTheFunction(t *testing.T) {
	wasm := abitest.WATText(t, `(module
	  (import "sandboxd" "proc_exit" (func $exit (param i32)))
	  (memory (export "memory") 1)
	  (func $boom (unreachable))
	  (func (export "_start") (call $boom)))`, "--debug-names")
	st := runOnRuntime(t, Config{}, wasm)
	if st.Trap == nil || !strings.Contains(st.Trap.Error(), "boom") {
		t.Fatalf("status %+v: the trap does not name $boom", st)
	}
}

// A guest spinning without host calls neither holds up a garbage
// collection (which pauses every goroutine) nor resists Kill.
func TestSpinningGuestLetsTheCollectorRunAndIsKilled(t *testing.T) {
	ctx := context.Background()
	g, signalled := signalThenLoop(t, 1, "")
	g.Start(ctx)
	waitUntilSignalled(t, signalled)
	collected := make(chan struct{})
	go func() {
		runtime.GC()
		runtime.GC()
		close(collected)
	}()
	select {
	case <-collected:
	case <-time.After(HangGuard):
		t.Fatalf("a garbage collection waited %v for the spinning guest", HangGuard)
	}
	g.Kill("test over")
	waitKilled(t, g, "test over")
}

// A start function that spins is stopped too: it runs once the guest can
// be killed, not inside instantiation.
func TestSpinningStartFunctionIsKilled(t *testing.T) {
	ctx := context.Background()
	g := newTestGuest(t, Config{}, abitest.WATText(t, `(module (func $s (loop $l (br $l))) (start $s) (func (export "_start")))`))
	tctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	done := make(chan ExitStatus, 1)
	go func() { done <- g.Run(tctx) }()
	select {
	case st := <-done:
		if st.Killed != "timeout" {
			t.Fatalf("status %+v, want killed by timeout", st)
		}
	case <-time.After(HangGuard):
		t.Fatalf("the spinning start function survived its context by %v", HangGuard)
	}
}

// A guest killed before it is started (the daemon lists a guest before it
// starts it) ends at once when started, killed for that reason.
func TestAGuestKilledBeforeItStartsEndsAsItStarts(t *testing.T) {
	g := newTestGuest(t, Config{}, abitest.WATText(t, `(module
		(memory (export "memory") 1)
		(func (export "_start") (loop $l (br $l))))`))
	g.Kill("killed early")
	g.Start(context.Background())
	waitKilled(t, g, "killed early")
}

// The end of the context a guest was started under stops the guest at its
// next loop iteration, not at the end of its loop budget: here one
// iteration fills 64 MiB, so the 65,536 of a budget would take minutes.
func TestAGuestStopsAtItsNextIterationWhenItsParentContextEnds(t *testing.T) {
	g, signalled := signalThenLoop(t, 1024, "(memory.fill (i32.const 0) (i32.const 0) (i32.const 67108864))")
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	g.Start(ctx)
	waitUntilSignalled(t, signalled)
	cancel(errors.New("parent ended"))
	waitKilled(t, g, "parent ended")
}

// signalThenLoop is a guest of pages of memory that writes one byte to
// fd 0 (signallingGuest), so that a test knows it runs, and then loops
// over body for ever.
func signalThenLoop(t *testing.T, pages int, body string) (*Guest, <-chan struct{}) {
	return signallingGuest(t, fmt.Sprintf(`(module
		%s
		(memory (export "memory") %d)
		(func (export "_start")
			(call $signal)
			(loop $l %s (br $l))))`, signalImport, pages, body))
}

// signalImport is what a guest of signallingGuest calls $signal: it
// writes the byte at 16 to fd 0 (the iovec at 0 points at it).
const signalImport = `(import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
		(data (i32.const 0) "\10\00\00\00\01\00\00\00") (data (i32.const 16) "\01")
		(func $signal (drop (call $fd_write (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 32))))`

// signallingGuest is a guest of wat whose fd 0 is a channel end; the
// channel returned is closed when the guest first writes to it. It tells
// a test how far the guest has got without depending on how long
// anything takes.
func signallingGuest(t *testing.T, wat string) (*Guest, <-chan struct{}) {
	t.Helper()
	ctx := context.Background()
	rt, err := NewRuntime(ctx, Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close(ctx) })
	m, err := rt.Compile(ctx, "m", abitest.WATText(t, wat))
	if err != nil {
		t.Fatal(err)
	}
	k := caps.NewKernel(nil)
	holder := &caps.Holder{ID: "g"}
	table := caps.NewTable(k, holder, 0)
	mine, peer := caps.NewChannelPair(false, "signal")
	signalled := make(chan struct{})
	var once sync.Once
	peer.OnArrival(func() { once.Do(func() { close(signalled) }) })
	base, inh := caps.GrantRights(caps.KindChannel, false)
	if _, err := table.Insert(k.Mint(holder, mine, base, inh, "signal", "test")); err != nil {
		t.Fatal(err)
	}
	return rt.NewGuest(m, GuestConfig{ID: "g", Table: table, Args: []string{"m"}}), signalled
}

// waitUntilSignalled waits until the guest has signalled
// (signallingGuest): the guests above then run their loops.
func waitUntilSignalled(t *testing.T, signalled <-chan struct{}) {
	t.Helper()
	select {
	case <-signalled:
	case <-time.After(HangGuard):
		t.Fatalf("the guest did not signal within %v", HangGuard)
	}
}

// waitKilled waits for g to end, bounded by HangGuard, and holds that it
// was killed for reason.
func waitKilled(t *testing.T, g *Guest, reason string) {
	t.Helper()
	select {
	case <-g.Done():
	case <-time.After(HangGuard):
		t.Fatalf("the guest still ran %v after it was to be killed (%q)", HangGuard, reason)
	}
	if st := g.Status(); st.Killed != reason {
		t.Fatalf("status %+v, want killed %q", st, reason)
	}
}

// A guest without a single loop can still run for ever: each of its
// functions calls the next twice, so 48 of them make 2^48 calls, with a
// call stack 48 deep. It must stop when it is killed, as a guest in a
// loop does. (Nor may it hold up a garbage collection meanwhile, as
// TestSpinningGuestLetsTheCollectorRunAndIsKilled holds of a loop; that is
// not asked here, since a collection waiting for such a guest would stop
// the test's own hang guard too.)
func TestACallTreeWithoutLoopsIsKilled(t *testing.T) {
	var fns strings.Builder
	const depth = 48
	for i := range depth {
		fmt.Fprintf(&fns, "(func $f%d (call $f%d) (call $f%d))\n", i, i+1, i+1)
	}
	fmt.Fprintf(&fns, "(func $f%d)\n", depth)
	g, signalled := signallingGuest(t, fmt.Sprintf(`(module
		%s
		(memory (export "memory") 1)
		%s
		(func (export "_start")
			(call $signal)
			(call $f0)))`, signalImport, fns.String()))
	g.Start(context.Background())
	waitUntilSignalled(t, signalled)
	g.Kill("test over")
	waitKilled(t, g, "test over")
}
