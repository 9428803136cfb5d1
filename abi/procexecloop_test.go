package abi

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/abi/abitest"
	"github.com/sandboxd/sandboxd/caps"
)

// execLoopGuest execs itself (fd 0, keeping fds 0 and 1) with a counter
// as its argdata until the counter reaches n, then writes "done" to fd 1
// and waits on a clock for an hour.
func execLoopGuest(n int) string {
	return fmt.Sprintf(`(module
  (import "sandboxd" "argdata_get" (func $argdata (param i32 i32 i32) (result i32)))
  (import "sandboxd" "proc_exec" (func $exec (param i32 i32 i32 i32 i32) (result i32)))
  (import "sandboxd" "poll" (func $poll (param i32 i32 i32 i32) (result i32)))
  (import "sandboxd" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 32) "done\n")
  (data (i32.const 300) "\00\00\00\00\01\00\00\00")
  (func (export "_start")
    (drop (call $argdata (i32.const 200) (i32.const 4) (i32.const 196)))
    (if (i32.ne (i32.load (i32.const 196)) (i32.const 4))
      (then (i32.store (i32.const 200) (i32.const 0))))
    (i32.store (i32.const 200) (i32.add (i32.load (i32.const 200)) (i32.const 1)))
    (if (i32.lt_u (i32.load (i32.const 200)) (i32.const %d))
      (then (drop (call $exec (i32.const 0) (i32.const 200) (i32.const 4) (i32.const 300) (i32.const 2))) unreachable))
    (i32.store (i32.const 8) (i32.const 32))
    (i32.store (i32.const 12) (i32.const 5))
    (drop (call $fd_write (i32.const 1) (i32.const 8) (i32.const 1) (i32.const 24)))
    (i32.store8 (i32.const 138) (i32.const 1))
    (i32.store (i32.const 152) (i32.const 1))
    (i64.store (i32.const 160) (i64.const 3600000000000))
    (drop (call $poll (i32.const 128) (i32.const 256) (i32.const 1) (i32.const 20)))))`, n)
}

// execLoop runs execLoopGuest(n) until it has written "done" and returns
// the goroutines and heap bytes grown since it started.
func execLoop(t *testing.T, n int) (goroutines int, heap int64) {
	t.Helper()
	ctx := context.Background()
	rt := newCacheRuntime(t, 4)
	m, err := rt.Compile(ctx, "looper", abitest.WATText(t, execLoopGuest(n)))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Release()
	tbl, out := moduleTable(t, m, "self")
	g0, h0 := runtime.NumGoroutine(), heapInUse()
	g := rt.NewGuest(m, GuestConfig{ID: "root", Table: tbl})
	g.Start(ctx)
	defer func() { g.Kill("test over"); g.Wait() }()
	select {
	case <-out.Seen():
	case <-g.Done():
		t.Fatalf("the guest ended early: %+v", g.Status())
	case <-time.After(HangGuard):
		t.Fatalf("the guest did not exec %d times within %v", n, HangGuard)
	}
	return runtime.NumGoroutine() - g0, int64(heapInUse()) - int64(h0)
}

// A guest that execs itself 2000 times holds no more goroutines (give or
// take a few of the runtime's own), and no more than 1 MB more of the
// heap, than one that execs 10 times: each program's instance, table and
// argdata go with it.
func TestExecInALoopGrowsNothing(t *testing.T) {
	g1, h1 := execLoop(t, 10)
	g2, h2 := execLoop(t, 2000)
	if g2 > g1+10 || h2 > h1+1<<20 {
		t.Fatalf("10 execs: %d goroutines and %d bytes grown; 2000: %d and %d", g1, h1, g2, h2)
	}
}

// moduleTable is a root guest's table of the module m as a handle named
// name, with proc_exec, and stdout, which the returned watcher reads for
// "done".
func moduleTable(t *testing.T, m *Module, name string) (*caps.Table, *abitest.Watcher) {
	t.Helper()
	k := caps.NewKernel(nil)
	h := &caps.Holder{ID: "root"}
	tbl := caps.NewTable(k, h, 0)
	out := abitest.NewWatcher("done")
	for _, c := range []*caps.Cap{
		k.Mint(h, NewModuleResource(m), caps.RightProcExec, 0, name, "test"),
		k.Mint(h, caps.NewStdout("stdout", out), caps.RightsTTYBase, 0, "stdout", "test"),
	} {
		if _, err := tbl.Insert(c); err != nil {
			t.Fatal(err)
		}
	}
	return tbl, out
}
