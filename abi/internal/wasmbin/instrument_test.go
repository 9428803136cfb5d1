package wasmbin

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/abi/abitest"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/sys"
)

// hangGuard bounds the one wait here that only a hang could reach: a
// guest that should yield ten times in as many loop iterations.
const hangGuard = 3 * time.Minute

// A kill that sets the budget to 0 between the check's two reads of it
// makes the decrement store -1. The check must take that as spent, not as
// 2^32-1 iterations to go: here yield returns 0 every time, so every
// decrement leaves -1, and the guest must yield again at once. Compared
// unsigned, the second yield would come only after 2^32-1 iterations and
// the ten here never (the context's deadline ends the test instead).
func TestBudgetBelowZeroYieldsOnTheNextIteration(t *testing.T) {
	code, _, err := instrumentLoops(abitest.WATText(t, `(module (func (export "_start") (loop $l (br $l))))`))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	r := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().WithCloseOnContextDone(true))
	defer r.Close(ctx)
	yields := 0
	_, err = r.NewHostModuleBuilder(LoopModule).NewFunctionBuilder().
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

// compiles reports whether wazero compiles wasm. Its decoder panics on
// some invalid modules (abi's Runtime turns that into an error): those are
// not valid either.
func compiles(ctx context.Context, r wazero.Runtime, wasm []byte) (ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	cm, err := r.CompileModule(ctx, wasm)
	if err != nil {
		return false
	}
	cm.Close(ctx)
	return true
}

func FuzzInstrumentLoops(f *testing.F) {
	f.Add([]byte("\x00asm\x01\x00\x00\x00"))
	f.Add([]byte("\x00asm\x01\x00\x00\x00\x01\x04\x01\x60\x00\x00\x03\x02\x01\x00\x0a\x09\x01\x07\x00\x03\x40\x0c\x00\x0b\x0b"))
	ctx := context.Background()
	r := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().WithCoreFeatures(api.CoreFeaturesV2))
	defer r.Close(ctx)
	if _, err := r.NewHostModuleBuilder(LoopModule).NewFunctionBuilder().
		WithGoFunction(api.GoFunc(func(context.Context, []uint64) {}), nil, []api.ValueType{api.ValueTypeI32}).
		Export("yield").Instantiate(ctx); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, wasm []byte) {
		if precheck(wasm) != nil {
			return // never reaches wazero
		}
		code, _, err := instrumentLoops(wasm)
		if !compiles(ctx, r, wasm) {
			return // not valid: nothing to keep
		}
		if err != nil {
			return // refused: the runtime reports it
		}
		cm, err := r.CompileModule(ctx, code)
		if err != nil {
			t.Fatalf("a valid module became invalid: %v", err)
		}
		cm.Close(ctx)
	})
}

// A guest returning through a deep stack runs the rest of every body on
// it, and a body's rest may be long without defining a value the stack
// checks count (stores): 60,000 frames of 140,000 stores each, within the
// default --max-stack, ran 84 seconds without a check, so that neither a
// kill nor Go's garbage collector could stop them. Once the budget is
// spent (a kill sets it to 0), the guest must yield before it returns
// from a function whose rest after a call is that long: here only the
// deepest frame's rest runs.
func TestALongRestAfterACallIsCheckedOnReturn(t *testing.T) {
	const depth, stores = 100, 1000
	secs, err := Split(abitest.WATText(t, fmt.Sprintf(`(module
  (import "test" "deep" (func $deep))
  (memory (export "memory") 1)
  (func $f (param i32)
    (if (local.get 0)
      (then (call $f (i32.sub (local.get 0) (i32.const 1))))
      (else (call $deep)))
    (i32.store (i32.const 0) (i32.add (i32.load (i32.const 0)) (i32.const 1))) ;; rests run
    %s)
  (func (export "_start") (call $f (i32.const %d))))`, strings.Repeat("(i32.store (i32.const 8) (i32.const 0))\n", stores), depth)))
	if err != nil {
		t.Fatal(err)
	}
	for c, ran := range killedAfter(t, secs) {
		if ran != 1 {
			t.Errorf("%+v: killed at a depth of %d: %d rests of %d stores ran; want to be ended after the deepest one", c, depth, ran, stores)
		}
	}
}

// killedAfter instruments secs with the loop checks, with and without the
// stack checks, runs each to the kill its test.deep makes (runToDeepKill),
// and returns the count each left at address 0; a run yield did not end
// fails the test.
func killedAfter(t *testing.T, secs Sections) map[Checks]uint32 {
	t.Helper()
	counts := map[Checks]uint32{}
	for _, c := range []Checks{{Loops: true}, {Loops: true, Stack: true}} {
		code, _, err := secs.Instrument(c)
		if err != nil {
			t.Fatal(err)
		}
		ran, err := runToDeepKill(code)
		if err != nil {
			t.Errorf("%+v: %v (after %d)", c, err, ran)
		}
		counts[c] = ran
	}
	return counts
}

// A bulk memory or table operation may take long (the whole memory in
// one instruction), so each is checked before it runs: a body of nothing
// but them is ended at the next one after a kill, not at its end.
func TestBulkMemoryOperationsAreChecked(t *testing.T) {
	const ops = 100
	count := "(i32.store (i32.const 0) (i32.add (i32.load (i32.const 0)) (i32.const 1)))\n"
	for what, piece := range map[string]string{
		"memory": `(memory.fill (i32.const 16) (i32.const 0) (i32.const 1024))
    (memory.copy (i32.const 2048) (i32.const 16) (i32.const 1024))`,
		"table": `(table.fill 0 (i32.const 0) (ref.null func) (i32.const 32))
    (table.copy 0 0 (i32.const 32) (i32.const 0) (i32.const 32))`,
	} {
		secs, err := Split(abitest.WATText(t, fmt.Sprintf(`(module
  (import "test" "deep" (func $deep))
  (memory (export "memory") 1)
  (table 64 funcref)
  (func (export "_start")
    (call $deep)
    %s))`, strings.Repeat(count+piece+"\n", ops))))
		if err != nil {
			t.Fatal(err)
		}
		for c, ran := range killedAfter(t, secs) {
			if ran != 1 {
				t.Errorf("%s, %+v: killed before %d bulk operations: %d of them ran; want to be ended before the second", what, c, 2*ops, ran)
			}
		}
	}
}

// runToDeepKill runs code's _start, whose import test.deep spends the
// budget as a kill does, after which yield ends the guest with status
// 137, and returns the count at address 0 and how the run ended (nil, or
// not an exit with 137, when it was not ended by yield).
func runToDeepKill(code []byte) (uint32, error) {
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	r := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().WithCloseOnContextDone(true))
	defer r.Close(ctx)
	killed := false
	_, err := r.NewHostModuleBuilder(LoopModule).NewFunctionBuilder().
		WithGoFunction(api.GoFunc(func(ctx context.Context, stack []uint64) {
			if killed {
				panic(sys.NewExitError(137))
			}
			stack[0] = LoopBudget
		}), nil, []api.ValueType{api.ValueTypeI32}).
		Export("yield").Instantiate(ctx)
	if err != nil {
		return 0, err
	}
	_, err = r.NewHostModuleBuilder("test").NewFunctionBuilder().
		WithGoModuleFunction(api.GoModuleFunc(func(ctx context.Context, mod api.Module, stack []uint64) {
			killed = true // as Kill does
			mod.ExportedGlobal(BudgetExport).(api.MutableGlobal).Set(0)
		}), nil, nil).
		Export("deep").Instantiate(ctx)
	if err != nil {
		return 0, err
	}
	mod, err := r.InstantiateWithConfig(ctx, code, wazero.NewModuleConfig().WithStartFunctions())
	if err != nil {
		return 0, err
	}
	_, err = mod.ExportedFunction("_start").Call(ctx)
	ran, _ := mod.Memory().ReadUint32Le(0)
	if ee, ok := err.(*sys.ExitError); !ok || ee.ExitCode() != 137 {
		return ran, fmt.Errorf("not ended by yield: %v", err)
	}
	return ran, nil
}
