package abi_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/abi/abitest"
	"github.com/sandboxd/sandboxd/abi/argdata"
	"github.com/sandboxd/sandboxd/caps"
)

const childGuest = "abi/testdata/guests/poll/child.c"

// grantFile opens host path read-only and puts it in tbl with base rights.
func (h *harness) grantFile(t testing.TB, tbl *caps.Table, path, name string, base caps.Rights) *caps.Cap {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	c := h.k.Mint(tbl.Holder(), caps.NewFile(f, path), base, 0, name, "test grant")
	if _, err := tbl.Insert(c); err != nil {
		t.Fatal(err)
	}
	return c
}

// proc_exec replaces the program, keeps the guest's identity, and keeps
// exactly the listed handles in list order: moved (same capability) the
// first time, copied for a repetition. Refused execs and spawns change
// nothing.
func TestProcExecReplacesProgramKeepingOnlyListedHandles(t *testing.T) {
	h, log := observedHarness(t)
	garbage := filepath.Join(t.TempDir(), "garbage.wasm")
	writeFile(t, garbage, "not a wasm module")
	tbl := h.table("x")
	wasm := abitest.C(t, "abi/testdata/guests/deleg/exec.c")
	h.grantModule(t, tbl, "exec", wasm)
	h.grantFile(t, tbl, garbage, "garbage", caps.RightsRegularFileBase)
	h.grantFile(t, tbl, garbage, "garbage-noexec", caps.RightsRegularFileBase&^caps.RightProcExec)
	st := h.runMode(t, wasm, tbl, "first")
	if st.Err() != nil || st.Code != 9 {
		t.Fatalf("status %+v, want exit 9 from the exec'd program\n%s", st, h.stdout.String())
	}
	expectStdout(t, h, `exec garbage: ENOEXEC
exec without proc_exec: ENOTCAPABLE
exec stdout: ENOTCAPABLE
exec keeping a closed fd: EBADF
spawn garbage: ENOEXEC
spawn without proc_exec: ENOTCAPABLE
spawn handing over a closed fd: EBADF
spawn argdata too big: E2BIG
still running, table 4=file 6=bytes
second: argdata second table 0=unknown 1=bytes 2=bytes 3=EBADF
second: object ok kept, fd 1 kept its capability yes, fd 2 is a copy yes
`)
	for _, e := range log.all(caps.EventDerive) {
		if e.Cap.Edge == caps.EdgeDup && e.Cap.Holder != "x" {
			t.Fatalf("the copy made at exec belongs to %q, want the same guest", e.Cap.Holder)
		}
	}
}

// A module can be spawned from a regular file holding its bytes, given
// proc_exec on the file handle.
func TestProcSpawnFromWasmFileHandle(t *testing.T) {
	h := newHarness(t)
	path := filepath.Join(t.TempDir(), "child.wasm")
	if err := os.WriteFile(path, abitest.C(t, childGuest), 0o644); err != nil {
		t.Fatal(err)
	}
	tbl := h.table("p")
	h.grantFile(t, tbl, path, "child", caps.RightsRegularFileBase)
	st := h.runMode(t, abitest.C(t, pollGuest), tbl, "proc")
	if st.Err() != nil || st.Code != 0 {
		t.Fatalf("status %+v", st)
	}
	expectStdout(t, h, `exit: spawn ok poll ok type 7 signal 0 code 42 kind process
raise: spawn ok poll ok type 7 signal 16 code 0 kind process
ignore: spawn ok poll ok type 7 signal 0 code 5 kind process
trap: spawn ok poll ok type 7 signal 1 code 0 kind process
fd_read on a process: ENOTCAPABLE
`)
}

// Closing the last process handle kills the child, which closes the
// child's handles: the parent sees its end of their channel hang up.
func TestClosingProcessHandleKillsChild(t *testing.T) {
	h := newHarness(t)
	tbl := h.table("p")
	h.grantModule(t, tbl, "child", abitest.C(t, childGuest))
	st := h.runMode(t, abitest.C(t, pollGuest), tbl, "close-proc")
	if st.Err() != nil || st.Code != 0 {
		t.Fatalf("status %+v", st)
	}
	expectStdout(t, h, `spawn: ok
close: ok
child gone: ok userdata 1 hangup 1
`)
}

// Killing a guest kills the children it spawned; its Done waits for them.
func TestKillingParentKillsChildren(t *testing.T) {
	h, log := observedHarness(t)
	tbl := h.table("p")
	h.grantModule(t, tbl, "child", abitest.C(t, childGuest))
	g := h.startMode(t, context.Background(), abitest.C(t, pollGuest), tbl, "spawn-wait")
	deadline := time.Now().Add(hangGuard)
	for spawned := false; !spawned; {
		for _, e := range log.all(caps.EventMint) {
			spawned = spawned || e.Cap.Kind == caps.KindProcess
		}
		if time.Now().After(deadline) {
			t.Fatal("the parent never spawned its child")
		}
		time.Sleep(time.Millisecond)
	}
	killAndAwait(t, g, "parent (or its spinning child)")
	if s := h.k.Snapshot(); len(s) != 0 {
		t.Fatalf("%d capabilities left: the child did not end with its parent", len(s))
	}
}

func TestProcRaiseAppliesCloudABIDefaultActions(t *testing.T) {
	wasm := abitest.C(t, childGuest)
	h := newHarness(t)
	st := h.runMode(t, wasm, h.table("r"), "raise")
	if st.Signal != 16 || st.Code != 128+16 || st.Err() == nil {
		t.Fatalf("raise SIGTERM: status %+v, want signal 16, exit 144", st)
	}
	st = h.runMode(t, wasm, h.table("i"), "ignore")
	if st.Signal != 0 || st.Code != 5 || st.Err() != nil {
		t.Fatalf("ignored signals: status %+v, want a normal exit 5", st)
	}
	st = h.runMode(t, wasm, h.table("v"), "invalid")
	if st.Code != 0 || st.Err() != nil {
		t.Fatalf("invalid signals: status %+v", st)
	}
	expectStdout(t, h, "raise 0: EINVAL\nraise 99: EINVAL\n")
}

// A program started by proc_exec sees the argv of the argdata it was
// given, as a spawned child does, not the arguments the guest was
// launched with.
func TestExecdWASIProgramSeesTheArgsOfItsArgdata(t *testing.T) {
	h := newHarness(t)
	tbl := h.table("x")
	// Exits with its argc.
	h.grantModule(t, tbl, "argc", abitest.WATText(t, `(module
  (import "wasi_snapshot_preview1" "args_sizes_get" (func $sizes (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    (drop (call $sizes (i32.const 0) (i32.const 4)))
    (call $exit (i32.load (i32.const 0)))))`))
	data := argdata.StringMap(map[string]argdata.Value{
		"args": argdata.Seq(argdata.String("argc"), argdata.String("p"), argdata.String("q"), argdata.String("r")),
	}).Encode()
	var lit strings.Builder
	for _, b := range data {
		fmt.Fprintf(&lit, `\%02x`, b)
	}
	// Replaces itself with the module at fd 3, given data as its argdata.
	exec := abitest.WATText(t, fmt.Sprintf(`(module
  (import "sandboxd" "proc_exec" (func $exec (param i32 i32 i32 i32 i32) (result i32)))
  (import "sandboxd" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 64) "%s")
  (func (export "_start")
    (call $exit (i32.add (i32.const 100) (call $exec (i32.const 3) (i32.const 64) (i32.const %d) (i32.const 0) (i32.const 0))))))`, lit.String(), len(data)))
	st := h.run(t, exec, tbl, "launched", "with", "five", "args")
	if st.Err() != nil || st.Code != 4 {
		t.Fatalf("status %+v: want exit 4, the argc of the argdata exec gave (100 and more: exec failed with errno-100)", st)
	}
}
