package abi

import (
	"context"
	"runtime"

	"github.com/sandboxd/sandboxd/abi/internal/wasmbin"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// Loop checks: the runtime's side.
//
// Every module is compiled as wasmbin.Sections.Instrument rewrites it
// (unless Config.NoLoopChecks): each loop iteration, function entry and
// return far from the function's first call (wasmbin's maxUncheckedRest)
// decrements a budget global, and when the budget is spent the guest calls
// yield, imported from wasmbin.LoopModule. yield ends a guest whose
// context has ended, and
// otherwise lets the Go scheduler run other goroutines and returns a new
// budget. When a guest's context ends the runtime also sets its budget to
// 0 (Kill, the timeout's timer, and a hook on the context the guest was
// started under: Guest.runOnce), so that the next loop iteration yields. So a guest in
// a loop that never calls the host still stops when it is killed, times
// out or loses its parent, and does not hold up Go's garbage collector.

// instantiateLoop builds the module of yield, which instrumented guests
// import.
func instantiateLoop(ctx context.Context, r wazero.Runtime) error {
	_, err := r.NewHostModuleBuilder(wasmbin.LoopModule).
		NewFunctionBuilder().
		WithGoFunction(api.GoFunc(loopYield), nil, []api.ValueType{api.ValueTypeI32}).
		Export("yield").
		Instantiate(ctx)
	return err
}

// loopYield ends a guest whose context has ended; otherwise it lets other
// goroutines run and gives the guest a new budget.
func loopYield(ctx context.Context, stack []uint64) {
	g := guestOf(ctx)
	if g != nil && g.ctx.Err() != nil {
		g.killed()
	}
	if g != nil && g.hold.Dropping() {
		g.hold.Release() // a revocation waits for it (abi/hold.go)
	}
	runtime.Gosched()
	stack[0] = wasmbin.LoopBudget
}
