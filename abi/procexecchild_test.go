package abi

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/abi/abitest"
	"github.com/sandboxd/sandboxd/caps"
)

// A guest that execs without listing the process handle of a child it
// spawned closes that handle, and so kills the child, while the new
// program goes on running.
func TestExecWithoutAChildsHandleKillsTheChild(t *testing.T) {
	ctx := context.Background()
	rt := newCacheRuntime(t, 4)
	compile := func(name, wat string) *Module {
		m, err := rt.Compile(ctx, name, abitest.WATText(t, wat))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(m.Release)
		return m
	}
	spinner := compile("spinner", `(module (memory (export "memory") 1) (func (export "_start") (loop $l (br $l))))`)
	waiter := compile("waiter", `(module
  (import "sandboxd" "poll" (func $poll (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    (i32.store8 (i32.const 138) (i32.const 1))
    (i32.store (i32.const 152) (i32.const 1))
    (i64.store (i32.const 160) (i64.const 3600000000000))
    (drop (call $poll (i32.const 128) (i32.const 256) (i32.const 1) (i32.const 20)))))`)
	// Spawns fd 0 handing it fd 1, then execs fd 2 keeping nothing.
	middle := compile("middle", `(module
  (import "sandboxd" "proc_spawn" (func $spawn (param i32 i32 i32 i32 i32 i32) (result i32)))
  (import "sandboxd" "proc_exec" (func $exec (param i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 300) "\01\00\00\00")
  (func (export "_start")
    (if (call $spawn (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 300) (i32.const 1) (i32.const 16)) (then unreachable))
    (drop (call $exec (i32.const 2) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)))
    unreachable))`)
	childGone := make(chan struct{})
	var once sync.Once
	k := caps.NewKernel(func(e caps.Event) {
		if e.Type == caps.EventClose && e.Cap.Holder == "g.1" {
			once.Do(func() { close(childGone) })
		}
	})
	h := &caps.Holder{ID: "g"}
	tbl := caps.NewTable(k, h, 0)
	for _, c := range []*caps.Cap{
		k.Mint(h, NewModuleResource(spinner), caps.RightProcExec, 0, "spinner", "test"),
		k.Mint(h, caps.NewStdout("stdout", &abitest.Buffer{}), caps.RightsTTYBase, 0, "stdout", "test"),
		k.Mint(h, NewModuleResource(waiter), caps.RightProcExec, 0, "waiter", "test"),
	} {
		if _, err := tbl.Insert(c); err != nil {
			t.Fatal(err)
		}
	}
	execed := make(chan struct{})
	onExec := func(*caps.Holder, *Module) error { close(execed); return nil }
	g := rt.NewGuest(middle, GuestConfig{ID: "g", Table: tbl, OnExec: onExec})
	g.Start(ctx)
	defer func() { g.Kill("test over"); g.Wait() }()
	for _, ch := range []chan struct{}{execed, childGone} {
		select {
		case <-ch:
		case <-g.Done():
			t.Fatalf("the guest ended before its exec and its child's end: %+v", g.Status())
		case <-time.After(HangGuard):
			t.Fatalf("no exec, or the child still running, %v after the start", HangGuard)
		}
	}
	select {
	case <-g.Exited():
		t.Fatalf("the exec'd program ended: %+v", g.Status())
	default:
	}
}
