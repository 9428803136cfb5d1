package wasmbin

import (
	"context"
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
