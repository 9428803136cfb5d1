package abi

import (
	"context"
	"io"
	"math"
	"runtime"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/abi/abitest"
	"github.com/sandboxd/sandboxd/abi/internal/wasmbin"
	"github.com/sandboxd/sandboxd/caps"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
	"golang.org/x/sys/unix"
)

// Host-call overhead: a guest loop making b.N calls of one kind, so that
// ns/op is the cost of one guest→host→guest call. Each call is measured
// against sandboxd's native ABI, sandboxd's WASI adapter (same handle
// tables and capability checks), and wazero's own WASI in a separate
// runtime configured as sandboxd's is (close on context done, core
// features v2), so the difference is the host function alone. See
// docs/BENCHMARKS.md.
//
//	go test -run '^$' -bench HostCallRatio -benchtime 4000000x -count 5 ./abi/

func BenchmarkHostCall(b *testing.B) {
	native := abitest.WAT(b, "abi/testdata/guests/bench/sandboxd.wat")
	wasi := abitest.WAT(b, "abi/testdata/guests/bench/wasi.wat")
	for _, call := range benchCalls {
		b.Run(call.name+"/sandboxd", func(b *testing.B) {
			runLoop(b, sandboxdLoop(b, native, call.loop, true), call.loop)
		})
		b.Run(call.name+"/sandboxd-wasi", func(b *testing.B) {
			runLoop(b, sandboxdLoop(b, wasi, call.loop, true), call.loop)
		})
		b.Run(call.name+"/wazero-wasi", func(b *testing.B) {
			runLoop(b, wazeroWASILoop(b, wasi, call.loop), call.loop)
		})
	}
}

// BenchmarkHostCallRatio runs the same loop against sandboxd's native ABI,
// sandboxd's WASI adapter and wazero's own WASI in turn, in rounds of
// ratioChunk calls each (the order rotating every round), so that all
// three see the same conditions. Time is the calling thread's CPU time
// (the goroutine is locked to its thread), which time slices lost to other
// processes on a busy machine do not inflate. It reports each side's
// ns/call and each sandboxd side's ratio to wazero over the whole run, and
// "best" ratios of the fastest rounds.
func BenchmarkHostCallRatio(b *testing.B) {
	native := abitest.WAT(b, "abi/testdata/guests/bench/sandboxd.wat")
	wasi := abitest.WAT(b, "abi/testdata/guests/bench/wasi.wat")
	for _, call := range benchCalls {
		b.Run(call.name, func(b *testing.B) {
			sides := [...]struct {
				name string
				loop guestLoop
			}{
				{"sandboxd", sandboxdLoop(b, native, call.loop, true)},
				{"sandboxd-wasi", sandboxdLoop(b, wasi, call.loop, true)},
				{"sandboxd-nohold", sandboxdLoop(b, native, call.loop, false)},
				{"wazero", wazeroWASILoop(b, wasi, call.loop)},
			}
			const wz = len(sides) - 1
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			var cpu [len(sides)]time.Duration
			var best [len(sides)]time.Duration
			for i := range best {
				best[i] = math.MaxInt64
			}
			b.ResetTimer()
			for round, left := 0, b.N; left > 0; round++ {
				n := min(left, ratioChunk)
				for k := range sides {
					side := (round + k) % len(sides)
					c0 := threadCPU(b)
					sides[side].loop.run(b, n)
					c := threadCPU(b) - c0
					cpu[side] += c
					best[side] = min(best[side], c*ratioChunk/time.Duration(n))
				}
				left -= n
			}
			b.StopTimer()
			for _, s := range sides {
				s.loop.check(b)
			}
			for i, s := range sides {
				b.ReportMetric(float64(cpu[i].Nanoseconds())/float64(b.N), s.name+"-ns/call")
				if i != wz {
					b.ReportMetric(float64(cpu[i])/float64(cpu[wz]), s.name+"/wazero")
					b.ReportMetric(float64(best[i])/float64(best[wz]), s.name+"/wazero-best")
				}
			}
		})
	}
}

// threadCPU is the CPU time the calling thread has used.
func threadCPU(b *testing.B) time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ts.Nano())
}

// ratioChunk is the calls per side per round of BenchmarkHostCallRatio:
// long enough to time precisely, short enough that load changes between
// rounds rather than within one.
const ratioChunk = 20000

var benchCalls = []struct{ name, loop string }{
	{"fd_write", "write_loop"},
	{"clock_time_get", "clock_loop"},
}

// guestLoop is an instantiated benchmark guest and the export to call.
type guestLoop struct {
	ctx  context.Context
	mod  api.Module
	fn   api.Function
	loop string
}

// run calls the loop for n calls and returns how long it took. Any errno
// from a call fails the benchmark.
func (l guestLoop) run(b testing.TB, n int) time.Duration {
	start := time.Now()
	res, err := l.fn.Call(l.ctx, uint64(n))
	d := time.Since(start)
	if err != nil {
		b.Fatal(err)
	}
	if res[0] != 0 {
		b.Fatalf("%s: errno %d", l.loop, res[0])
	}
	return d
}

// check makes sure a write loop's last fd_write reported the byte it
// wrote.
func (l guestLoop) check(b testing.TB) {
	if l.loop != "write_loop" {
		return
	}
	if nw, ok := l.mod.Memory().ReadUint32Le(8); !ok || nw != 1 {
		b.Fatalf("fd_write reported %d bytes written, want 1", nw)
	}
}

// sandboxdLoop instantiates wasm as a sandboxd guest whose stdout is a
// capability to a caps.Stdio over io.Discard. With hold, fd_write keeps
// the capability acquired between calls, as a guest with loop checks does
// (abi/hold.go); without, every call acquires and releases it.
func sandboxdLoop(b testing.TB, wasm []byte, loop string, hold bool) guestLoop {
	ctx := context.Background()
	rt, err := NewRuntime(ctx, Config{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { rt.Close(ctx) })
	m, err := rt.Compile(ctx, "bench", wasm)
	if err != nil {
		b.Fatal(err)
	}
	k := caps.NewKernel(nil)
	holder := &caps.Holder{ID: "bench"}
	tbl := caps.NewTable(k, holder, 0)
	for _, s := range []*caps.Stdio{caps.NewStdin(eofReader{}), caps.NewStdout("stdout", io.Discard), caps.NewStdout("stderr", io.Discard)} {
		if _, err := tbl.Insert(k.Mint(holder, s, caps.RightsTTYBase, 0, s.Describe(), "bench")); err != nil {
			b.Fatal(err)
		}
	}
	g := rt.NewGuest(m, GuestConfig{ID: holder.ID, Table: tbl})
	// As Guest.run and runOnce set a guest up, without running _start.
	g.ctx, g.cancel = context.WithCancelCause(ctx)
	b.Cleanup(func() { g.cancel(nil) })
	gctx := withGuest(g.ctx, g)
	mod, err := rt.r.InstantiateModule(gctx, m.compiled, wazero.NewModuleConfig().WithName("").WithStartFunctions())
	if err != nil {
		b.Fatal(err)
	}
	if m.loopChecks && hold {
		budget := mod.ExportedGlobal(wasmbin.BudgetExport).(api.MutableGlobal)
		g.budget.Store(&budget)
		g.holding = true
	}
	return newGuestLoop(b, gctx, mod, loop)
}

// wazeroWASILoop instantiates wasm under wazero's built-in WASI, stdout
// discarded and real clocks, in a runtime with sandboxd's core features
// and wazero's own defaults otherwise. The module gets the same loop checks
// as sandboxd's (wasmbin's Instrument, with a yield that only renews the
// budget), so that both sides run the same loop and only the host call
// differs.
func wazeroWASILoop(b *testing.B, wasm []byte, loop string) guestLoop {
	ctx := context.Background()
	r := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().
		WithCoreFeatures(api.CoreFeaturesV2))
	b.Cleanup(func() { r.Close(ctx) })
	wasi_snapshot_preview1.MustInstantiate(ctx, r)
	if _, err := r.NewHostModuleBuilder(wasmbin.LoopModule).NewFunctionBuilder().
		WithGoFunction(api.GoFunc(func(_ context.Context, stack []uint64) { stack[0] = wasmbin.LoopBudget }), nil, []api.ValueType{api.ValueTypeI32}).
		Export("yield").Instantiate(ctx); err != nil {
		b.Fatal(err)
	}
	secs, err := wasmbin.Split(wasm)
	if err != nil {
		b.Fatal(err)
	}
	code, _, err := secs.Instrument(wasmbin.Checks{Loops: true, Stack: true})
	if err != nil {
		b.Fatal(err)
	}
	mod, err := r.InstantiateWithConfig(ctx, code, wazero.NewModuleConfig().
		WithName("").WithStartFunctions().
		WithStdout(io.Discard).WithSysNanotime().WithSysWalltime())
	if err != nil {
		b.Fatal(err)
	}
	return newGuestLoop(b, ctx, mod, loop)
}

func newGuestLoop(b testing.TB, ctx context.Context, mod api.Module, loop string) guestLoop {
	fn := mod.ExportedFunction(loop)
	if fn == nil {
		b.Fatalf("guest exports no %s", loop)
	}
	return guestLoop{ctx: ctx, mod: mod, fn: fn, loop: loop}
}

// runLoop makes b.N calls (in u32-sized chunks) and reports allocations.
func runLoop(b *testing.B, l guestLoop, loop string) {
	b.ReportAllocs()
	b.ResetTimer()
	for left := b.N; left > 0; {
		n := min(left, math.MaxInt32)
		l.run(b, n)
		left -= n
	}
	b.StopTimer()
	l.check(b)
}

type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }

// BenchmarkGoGuestStackChecks runs a Go guest (gofib 30: fmt and 2.7
// million recursive calls) from start to exit with and without the stack
// checks, in alternating runs timed by the process's CPU time (user and
// system, which time lost to other processes on a busy machine does not
// inflate), and reports each side's time per run and their ratio. The
// rewrite itself is BenchmarkInstrumentGo's (package wasmbin), paid once
// per module and cache directory.
//
//	go test -run '^$' -bench GoGuestStackChecks -benchtime 40x -count 5 ./abi/
func BenchmarkGoGuestStackChecks(b *testing.B) {
	wasm := abitest.Go(b, "abi/testdata/guests/gofib")
	ctx := context.Background()
	type side struct {
		name string
		rt   *Runtime
		m    *Module
		cpu  time.Duration
	}
	sides := []*side{{name: "checks"}, {name: "nochecks"}}
	for _, s := range sides {
		rt, err := NewRuntime(ctx, Config{NoStackChecks: s.name == "nochecks"})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { rt.Close(ctx) })
		m, err := rt.Compile(ctx, "gofib", wasm)
		if err != nil {
			b.Fatal(err)
		}
		s.rt, s.m = rt, m
	}
	k := caps.NewKernel(nil)
	run := func(s *side) {
		holder := &caps.Holder{ID: "bench"}
		tbl := caps.NewTable(k, holder, 0)
		for _, st := range []*caps.Stdio{caps.NewStdin(eofReader{}), caps.NewStdout("stdout", io.Discard), caps.NewStdout("stderr", io.Discard)} {
			if _, err := tbl.Insert(k.Mint(holder, st, caps.RightsTTYBase, 0, st.Describe(), "bench")); err != nil {
				b.Fatal(err)
			}
		}
		s.m.hold()
		c0 := processCPU(b)
		st := s.rt.NewGuest(s.m, GuestConfig{ID: holder.ID, Table: tbl, Args: []string{"gofib", "30"}}).Run(ctx)
		s.cpu += processCPU(b) - c0
		if st.Err() != nil || st.Code != 0 {
			b.Fatalf("%s: %+v", s.name, st)
		}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for j := range sides {
			run(sides[(i+j)%len(sides)])
		}
	}
	b.StopTimer()
	for _, s := range sides {
		b.ReportMetric(float64(s.cpu.Microseconds())/float64(b.N), s.name+"-us/run")
	}
	b.ReportMetric(float64(sides[0].cpu)/float64(sides[1].cpu), "checks/nochecks")
}

// processCPU is the CPU time the process has used, user and system.
func processCPU(b *testing.B) time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
