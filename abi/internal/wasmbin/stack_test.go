package wasmbin

import (
	"context"
	"testing"

	"github.com/sandboxd/sandboxd/abi/abitest"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
)

// exitsWAT leaves its functions by every way there is: the end, return
// from a nested block, br, br_if and br_table to the function's label, a
// tail call, and with one, two or no results.
const exitsWAT = `(module
  (func $end (param i32) (result i32) (local.get 0))
  (func $ret (param i32) (result i32) (block (block (return (local.get 0)))) (i32.const 0))
  (func $br (param i32) (result i32) (block (br 1 (local.get 0))) (i32.const 0))
  (func $brif (param i32) (result i32) (drop (block (result i32) (br_if 1 (local.get 0) (i32.const 1)))) (i32.const 0))
  (func $brtable (param i32) (result i32) (drop (block (result i32) (br_table 1 0 (local.get 0) (i32.const 0)))) (i32.const 0))
  (func $two (param i32) (result i32 i64) (local.get 0) (i64.const 2) (br 0))
  (func $none (param i32) (if (local.get 0) (then (return))))
  (func $tail (param i32) (result i32) (return_call $end (local.get 0)))
  (func (export "all") (param i32) (result i32)
    (drop (call $end (local.get 0)))
    (drop (call $ret (local.get 0)))
    (drop (call $br (local.get 0)))
    (drop (call $brif (local.get 0)))
    (drop (call $brtable (local.get 0)))
    (drop (drop (call $two (local.get 0))))
    (call $none (local.get 0))
    (call $tail (local.get 0))))`

// Every way out of a function gives back what it took of the allowance.
func TestStackAllowanceComesBackOnEveryExit(t *testing.T) {
	wasm := abitest.WATText(t, exitsWAT, "--enable-tail-call")
	secs, err := Split(wasm)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []Checks{{Stack: true}, {Loops: true, Stack: true}} {
		code, _, err := secs.Instrument(c)
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		r := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().WithCoreFeatures(api.CoreFeaturesV2|experimental.CoreFeaturesTailCall))
		if c.Loops {
			if _, err := r.NewHostModuleBuilder(LoopModule).NewFunctionBuilder().
				WithGoFunction(api.GoFunc(func(context.Context, []uint64) {}), nil, []api.ValueType{api.ValueTypeI32}).
				Export("yield").Instantiate(ctx); err != nil {
				t.Fatal(err)
			}
		}
		mod, err := r.Instantiate(ctx, code)
		if err != nil {
			t.Fatalf("%+v: %v", c, err)
		}
		for _, arg := range []uint64{0, 1, 5} {
			res, err := mod.ExportedFunction("all").Call(ctx, arg)
			if err != nil || res[0] != arg {
				t.Fatalf("%+v: all(%d) = %v, %v", c, arg, res, err)
			}
			if got := mod.ExportedGlobal(StackExport).Get(); got != DefaultMaxStack {
				t.Errorf("%+v: all(%d) left an allowance of %d, want %d", c, arg, got, DefaultMaxStack)
			}
		}
		r.Close(ctx)
	}
}

// What the rewrite costs on a Go program (wasip1, about 3 MB), by the
// checks it adds: the runtime rewrites a module once per process, before
// the compilation cache's lookup (which is keyed by the rewritten bytes).
func BenchmarkInstrumentGo(b *testing.B) {
	secs, err := Split(abitest.Go(b, "abi/testdata/guests/wasi/goguest"))
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name string
		c    Checks
	}{{"loops", Checks{Loops: true}}, {"stack", Checks{Stack: true}}, {"loops+stack", Checks{Loops: true, Stack: true}}} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				if _, _, err := secs.Instrument(c.c); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
