package abi

import (
	"context"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/caps"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/sys"
)

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
	wasm := wat2wasm(t, renumberWAT, "--debug-names")
	for _, cfg := range []Config{{NoLoopChecks: true}, {}} {
		if st := runOnRuntime(t, cfg, wasm); st.Err() != nil || st.Code != renumberWant {
			t.Errorf("loop checks %v: %+v, want exit %d", !cfg.NoLoopChecks, st, renumberWant)
		}
	}
	code, moved, err := instrumentLoops(wasm)
	if err != nil || !moved {
		t.Fatalf("instrumentLoops: moved start %v, %v", moved, err)
	}
	s, ok := readShape(code)
	if !ok {
		t.Fatal("the instrumented module cannot be read")
	}
	if got := s.moduleNames(); strings.Join(got, ",") != ModuleName+","+loopModule {
		t.Errorf("imports from %q, want %s then %s", got, ModuleName, loopModule)
	}
}

// A trap's trace still names the function it happened in: the name
// section is renumbered with the functions.
func TestInstrumentedTrapNamesTheFunction(t *testing.T) {
	wasm := wat2wasm(t, `(module
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
// collection (which pauses every goroutine) nor resists Kill. The guest
// waits 1 ms in poll_oneoff before it spins, so the test knows it runs.
func TestSpinningGuestLetsTheCollectorRunAndIsKilled(t *testing.T) {
	ctx := context.Background()
	g := newTestGuest(t, Config{}, wat2wasm(t, `(module
		(import "wasi_snapshot_preview1" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))
		(memory (export "memory") 1)
		(data (i32.const 16) "\01") (data (i32.const 24) "\40\42\0f") ;; monotonic clock, 1 ms
		(func (export "_start")
			(drop (call $poll (i32.const 0) (i32.const 64) (i32.const 1) (i32.const 128)))
			(loop $l (br $l))))`))
	g.Start(ctx)
	for deadline := time.Now().Add(HangGuard); g.waits.Load() == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the guest did not start within %v", HangGuard)
		}
	}
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
	select {
	case <-g.Done():
	case <-time.After(HangGuard):
		t.Fatalf("the spinning guest survived Kill by %v", HangGuard)
	}
	if st := g.Status(); st.Killed != "test over" {
		t.Fatalf("status %+v", st)
	}
}

// A start function that spins is stopped too: it runs once the guest can
// be killed, not inside instantiation.
func TestSpinningStartFunctionIsKilled(t *testing.T) {
	ctx := context.Background()
	g := newTestGuest(t, Config{}, wat2wasm(t, `(module (func $s (loop $l (br $l))) (start $s) (func (export "_start")))`))
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

// A kill that sets the budget to 0 between the check's two reads of it
// makes the decrement store -1. The check must take that as spent, not as
// 2^32-1 iterations to go: here yield returns 0 every time, so every
// decrement leaves -1, and the guest must yield again at once. Compared
// unsigned, the second yield would come only after 2^32-1 iterations and
// the ten here never (the context's deadline ends the test instead).
func TestBudgetBelowZeroYieldsOnTheNextIteration(t *testing.T) {
	code, _, err := instrumentLoops(wat2wasm(t, `(module (func (export "_start") (loop $l (br $l))))`))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), HangGuard)
	defer cancel()
	r := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().WithCloseOnContextDone(true))
	defer r.Close(ctx)
	yields := 0
	_, err = r.NewHostModuleBuilder(loopModule).NewFunctionBuilder().
		WithGoFunction(api.GoFunc(func(ctx context.Context, stack []uint64) {
			if yields++; yields == 10 {
				panic(sys.NewExitError(0))
			}
			stack[0] = 0
		}), nil, []api.ValueType{api.ValueTypeI32}).
		Export("yield").Instantiate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	mod, err := r.InstantiateWithConfig(ctx, code, wazero.NewModuleConfig().WithStartFunctions())
	if err != nil {
		t.Fatal(err)
	}
	_, err = mod.ExportedFunction("_start").Call(ctx)
	if ee, ok := err.(*sys.ExitError); !ok || ee.ExitCode() != 0 || yields != 10 {
		t.Fatalf("after %d yields: %v; want the tenth yield to end the guest", yields, err)
	}
}

func FuzzInstrumentLoops(f *testing.F) {
	f.Add([]byte("\x00asm\x01\x00\x00\x00"))
	f.Add([]byte("\x00asm\x01\x00\x00\x00\x01\x04\x01\x60\x00\x00\x03\x02\x01\x00\x0a\x09\x01\x07\x00\x03\x40\x0c\x00\x0b\x0b"))
	ctx := context.Background()
	r := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().WithCoreFeatures(api.CoreFeaturesV2))
	defer r.Close(ctx)
	if _, err := r.NewHostModuleBuilder(loopModule).NewFunctionBuilder().
		WithGoFunction(api.GoFunc(func(context.Context, []uint64) {}), nil, []api.ValueType{api.ValueTypeI32}).
		Export("yield").Instantiate(ctx); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, wasm []byte) {
		if precheck(wasm) != nil {
			return // never reaches wazero
		}
		code, _, err := instrumentLoops(wasm)
		cm, cerr := r.CompileModule(ctx, wasm)
		if cerr != nil {
			return // not valid: nothing to keep
		}
		cm.Close(ctx)
		if err != nil {
			return // refused: the runtime reports it
		}
		cm, err = r.CompileModule(ctx, code)
		if err != nil {
			t.Fatalf("a valid module became invalid: %v", err)
		}
		cm.Close(ctx)
	})
}
