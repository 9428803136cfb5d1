package abi

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/abi/abitest"
)

// keeperGuest spawns its fd 0 n times, one child at a time: it waits for
// each child's end (poll, proc_terminate) and keeps its process handle
// open. Then it writes "done" to fd 1 and waits on a clock for an hour.
func keeperGuest(n int) string {
	return fmt.Sprintf(`(module
  (import "sandboxd" "proc_spawn" (func $spawn (param i32 i32 i32 i32 i32 i32) (result i32)))
  (import "sandboxd" "poll" (func $poll (param i32 i32 i32 i32) (result i32)))
  (import "sandboxd" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 32) "done\n")
  (func (export "_start") (local $i i32)
    (loop $l
      (if (call $spawn (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 16))
        (then unreachable))
      (i32.store8 (i32.const 74) (i32.const 7))
      (i32.store (i32.const 80) (i32.load (i32.const 16)))
      (if (call $poll (i32.const 64) (i32.const 256) (i32.const 1) (i32.const 20))
        (then unreachable))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (i32.const %d))))
    (i32.store (i32.const 8) (i32.const 32))
    (i32.store (i32.const 12) (i32.const 5))
    (drop (call $fd_write (i32.const 1) (i32.const 8) (i32.const 1) (i32.const 24)))
    (i32.store8 (i32.const 138) (i32.const 1))
    (i32.store (i32.const 152) (i32.const 1))
    (i64.store (i32.const 160) (i64.const 3600000000000))
    (drop (call $poll (i32.const 128) (i32.const 256) (i32.const 1) (i32.const 20)))))`, n)
}

// tableChild takes 4,000,000 table entries (32 MB of the host's memory,
// outside its linear memory) and exits at once.
const tableChild = `(module
  (table 4000000 funcref)
  (memory (export "memory") 1)
  (func (export "_start")))`

// A child that has ended holds nothing of the host's memory but its exit
// status, however long its parent keeps its process handle: its charge
// (--max-procs, the memory budget) is given back at its end, so what it
// kept would be bounded by nothing. A parent that spawned children with
// 32 MB tables one after another, keeping their handles, kept every
// child's tables.
func TestAnEndedChildKeepsNoneOfItsMemoryWhileItsHandleIsOpen(t *testing.T) {
	const n = 6
	ctx := context.Background()
	rt := newCacheRuntime(t, 4)
	parent, err := rt.Compile(ctx, "keeper", abitest.WATText(t, keeperGuest(n)))
	if err != nil {
		t.Fatal(err)
	}
	defer parent.Release()
	child, err := rt.Compile(ctx, "tables", abitest.WATText(t, tableChild))
	if err != nil {
		t.Fatal(err)
	}
	defer child.Release()
	tbl, out := moduleTable(t, child, "child")
	before := heapInUse()
	g := rt.NewGuest(parent, GuestConfig{ID: "root", Table: tbl, MaxDescendants: 2})
	g.Start(ctx)
	defer func() { g.Kill("test over"); g.Wait() }()
	select {
	case <-out.Seen():
	case <-g.Done():
		t.Fatalf("the parent ended early: %+v", g.Status())
	case <-time.After(HangGuard):
		t.Fatalf("the parent did not spawn %d children within %v", n, HangGuard)
	}
	if grown := int64(heapInUse()) - int64(before); grown > 48<<20 {
		t.Fatalf("with %d ended children's handles open the heap grew by %d MB, want less than one child's tables (32 MB)", n, grown>>20)
	}
}

// heapInUse is the Go heap's live bytes after a full collection.
func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}
