package abi

import (
	"context"
	"io"
	"math"
	"runtime"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/abi/abitest"
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
			runLoop(b, sandboxdLoop(b, native, call.loop), call.loop)
		})
		b.Run(call.name+"/sandboxd-wasi", func(b *testing.B) {
			runLoop(b, sandboxdLoop(b, wasi, call.loop), call.loop)
		})
		b.Run(call.name+"/wazero-wasi", func(b *testing.B) {
			runLoop(b, wazeroWASILoop(b, wasi, call.loop), call.loop)
		})
	}
}

// BenchmarkHostCallRatio runs the native ABI and wazero's WASI loops
// alternately, in rounds of ratioChunk calls each (the order flipping every
// round), so that both see the same conditions. Time is the calling
// thread's CPU time (the goroutine is locked to its thread), which time
// slices lost to other processes do not inflate; wall-clock figures are
// reported beside it. "best" is each side's fastest round.
func BenchmarkHostCallRatio(b *testing.B) {
	native := abitest.WAT(b, "abi/testdata/guests/bench/sandboxd.wat")
	wasi := abitest.WAT(b, "abi/testdata/guests/bench/wasi.wat")
	for _, call := range benchCalls {
		b.Run(call.name, func(b *testing.B) {
			sbx := sandboxdLoop(b, native, call.loop)
			wz := wazeroWASILoop(b, wasi, call.loop)
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			var cpu, wall [2]time.Duration
			best := [2]time.Duration{math.MaxInt64, math.MaxInt64}
			b.ResetTimer()
			for i, left := 0, b.N; left > 0; i++ {
				n := min(left, ratioChunk)
				order := [2]int{0, 1}
				if i%2 == 1 {
					order = [2]int{1, 0}
				}
				for _, side := range order {
					c0 := threadCPU(b)
					w := [2]guestLoop{sbx, wz}[side].run(b, n)
					c := threadCPU(b) - c0
					cpu[side] += c
					wall[side] += w
					best[side] = min(best[side], c*ratioChunk/time.Duration(n))
				}
				left -= n
			}
			b.StopTimer()
			sbx.check(b)
			wz.check(b)
			perCall := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / float64(b.N) }
			b.ReportMetric(perCall(cpu[0]), "sandboxd-ns/call")
			b.ReportMetric(perCall(cpu[1]), "wazero-ns/call")
			b.ReportMetric(float64(cpu[0])/float64(cpu[1]), "ratio")
			b.ReportMetric(float64(best[0])/float64(best[1]), "best-ratio")
			b.ReportMetric(float64(wall[0])/float64(wall[1]), "wall-ratio")
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
func (l guestLoop) run(b *testing.B, n int) time.Duration {
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
func (l guestLoop) check(b *testing.B) {
	if l.loop != "write_loop" {
		return
	}
	if nw, ok := l.mod.Memory().ReadUint32Le(8); !ok || nw != 1 {
		b.Fatalf("fd_write reported %d bytes written, want 1", nw)
	}
}

// sandboxdLoop instantiates wasm as a sandboxd guest whose stdout is a
// capability to a caps.Stdio over io.Discard.
func sandboxdLoop(b *testing.B, wasm []byte, loop string) guestLoop {
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
	gctx := context.WithValue(g.ctx, guestKey{}, g)
	mod, err := rt.r.InstantiateModule(gctx, m.compiled, wazero.NewModuleConfig().WithName("").WithStartFunctions())
	if err != nil {
		b.Fatal(err)
	}
	return newGuestLoop(b, gctx, mod, loop)
}

// wazeroWASILoop instantiates wasm under wazero's built-in WASI, stdout
// discarded and real clocks, in a runtime configured as sandboxd's.
func wazeroWASILoop(b *testing.B, wasm []byte, loop string) guestLoop {
	ctx := context.Background()
	r := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().
		WithCloseOnContextDone(true).
		WithCoreFeatures(api.CoreFeaturesV2))
	b.Cleanup(func() { r.Close(ctx) })
	wasi_snapshot_preview1.MustInstantiate(ctx, r)
	mod, err := r.InstantiateWithConfig(ctx, wasm, wazero.NewModuleConfig().
		WithName("").WithStartFunctions().
		WithStdout(io.Discard).WithSysNanotime().WithSysWalltime())
	if err != nil {
		b.Fatal(err)
	}
	return newGuestLoop(b, ctx, mod, loop)
}

func newGuestLoop(b *testing.B, ctx context.Context, mod api.Module, loop string) guestLoop {
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
