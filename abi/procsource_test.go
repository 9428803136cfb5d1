package abi

import (
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/abi/abitest"
	"github.com/sandboxd/sandboxd/caps"
)

// spawnEachGuest calls proc_spawn and then proc_exec on each of fds 0-4
// and writes the ten errnos, one byte each, to fd 5.
const spawnEachGuest = `(module
  (import "sandboxd" "proc_spawn" (func $spawn (param i32 i32 i32 i32 i32 i32) (result i32)))
  (import "sandboxd" "proc_exec" (func $exec (param i32 i32 i32 i32 i32) (result i32)))
  (import "sandboxd" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "_start") (local $fd i32)
    (loop $l
      (i32.store8 (i32.add (i32.const 100) (local.get $fd))
        (call $spawn (local.get $fd) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 16)))
      (i32.store8 (i32.add (i32.const 105) (local.get $fd))
        (call $exec (local.get $fd) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)))
      (local.set $fd (i32.add (local.get $fd) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $fd) (i32.const 5))))
    (i32.store (i32.const 8) (i32.const 100))
    (i32.store (i32.const 12) (i32.const 10))
    (drop (call $fd_write (i32.const 5) (i32.const 8) (i32.const 1) (i32.const 24)))))`

// proc_spawn and proc_exec from a handle that is not a regular file fail
// at once: stdin nobody writes to, a channel end, a byte object holding a
// valid module and a socket cannot hold proc_exec (ENOTCAPABLE, though
// minted with it); a FIFO with no writer can, and is ENOEXEC. None of
// them is read, so none blocks the guest.
func TestSpawnAndExecFromWhatIsNotARegularFileFailAtOnce(t *testing.T) {
	ctx := context.Background()
	rt := newCacheRuntime(t, 4)
	wasm := abitest.WATText(t, spawnEachGuest)
	m, err := rt.Compile(ctx, "spawner", wasm)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Release()
	k := caps.NewKernel(nil)
	h := &caps.Holder{ID: "root"}
	tbl := caps.NewTable(k, h, 0)
	out := &abitest.Buffer{}
	for _, r := range nonFileSources(t, wasm) {
		if _, err := tbl.Insert(k.Mint(h, r, caps.RightsRegularFileBase|caps.RightProcExec, 0, "", "test")); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := tbl.Insert(k.Mint(h, caps.NewStdout("stdout", out), caps.RightsTTYBase, 0, "stdout", "test")); err != nil {
		t.Fatal(err)
	}
	g := rt.NewGuest(m, GuestConfig{ID: "root", Table: tbl})
	g.Start(ctx)
	select {
	case <-g.Done():
	case <-time.After(HangGuard):
		g.Kill("hung")
		t.Fatalf("the guest was still in its calls after %v", HangGuard)
	}
	want := string([]byte{76, 76, 76, 45, 76, 76, 76, 76, 45, 76})
	if st := g.Status(); st.Err() != nil || out.String() != want {
		t.Fatalf("status %+v, errnos %v; want %v", st, []byte(out.String()), []byte(want))
	}
}

// nonFileSources returns stdin, a channel end, a byte object holding
// wasm, a FIFO with no writer and a socket, in that order.
func nonFileSources(t *testing.T, wasm []byte) []caps.Resource {
	pr, pw := io.Pipe()
	t.Cleanup(func() { pw.Close() })
	ch, peer := caps.NewChannelPair(false, "test")
	t.Cleanup(func() { peer.Close() })
	obj := caps.NewByteObject()
	if _, err := obj.WriteAt(wasm, 0); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(fifo, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fds[1]) })
	sf := os.NewFile(uintptr(fds[0]), "sock")
	conn, err := net.FileConn(sf)
	sf.Close()
	if err != nil {
		t.Fatal(err)
	}
	sock, err := caps.NewSocket(conn, "test")
	if err != nil {
		t.Fatal(err)
	}
	return []caps.Resource{caps.NewStdin(pr), ch, obj, caps.NewFile(f, fifo), sock}
}
