package abi_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/sandboxd/sandboxd/abi/abitest"
	"github.com/sandboxd/sandboxd/caps"
)

// fifoWriter opens "fifo" beneath fd 3 for writing and writes 100,000
// bytes to it in one fd_write of two iovecs (of 50,000 each), then exits
// with 0 if fd_write said it wrote them all, 100 + errno if the open
// failed, 50 + errno if the write did, 1 if it wrote fewer.
const fifoWriter = `(module
  (import "wasi_snapshot_preview1" "path_open"
    (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 3)
  (data (i32.const 0) "fifo")
  (func (export "_start")
    (local $e i32)
    (local.set $e (call $path_open (i32.const 3) (i32.const 1) (i32.const 0) (i32.const 4)
      (i32.const 0) (i64.const 64) (i64.const 0) (i32.const 0) (i32.const 16)))
    (if (local.get $e) (then (call $proc_exit (i32.add (i32.const 100) (local.get $e)))))
    (i32.store (i32.const 32) (i32.const 1024))
    (i32.store (i32.const 36) (i32.const 50000))
    (i32.store (i32.const 40) (i32.const 51024))
    (i32.store (i32.const 44) (i32.const 50000))
    (local.set $e (call $fd_write (i32.load (i32.const 16)) (i32.const 32) (i32.const 2) (i32.const 48)))
    (if (local.get $e) (then (call $proc_exit (i32.add (i32.const 50) (local.get $e)))))
    (call $proc_exit (i32.ne (i32.load (i32.const 48)) (i32.const 100000)))))`

// A blocking write to a FIFO writes every byte, waiting for the reader as
// often as it takes, as write(2) and writev(2) on a blocking pipe do: it
// returned after the part the pipe took (65,536 of 100,000 bytes).
func TestABlockingWriteToAFIFOWritesEveryByte(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	// Read-write, as Linux allows for a FIFO: a reader there before the
	// guest opens its end, which never reads an end of file meanwhile.
	r, err := os.OpenFile(fifo, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	h := newHarness(t)
	holder := &caps.Holder{ID: "g-fifo-writer"}
	tbl := caps.NewTable(h.k, holder, 0)
	for _, s := range []*caps.Stdio{caps.NewStdin(bytes.NewReader(nil)), caps.NewStdout("stdout", io.Discard), caps.NewStdout("stderr", &h.stderr)} {
		if _, err := tbl.Insert(h.k.Mint(holder, s, caps.RightsTTYBase, 0, s.Describe(), "test")); err != nil {
			t.Fatal(err)
		}
	}
	h.grantDir(t, tbl, dir, "data", false) // fd 3
	g := h.start(t, context.Background(), abitest.WATText(t, fifoWriter), tbl, nil)
	// Reading waits for the guest's write; what it wrote in all is read
	// once the guest has ended.
	got := make([]byte, 100000)
	n, err := io.ReadAtLeast(r, got, 65536)
	<-g.Done()
	if st := g.Status(); st.Code == 0 && err == nil {
		k, rerr := io.ReadFull(r, got[n:])
		n, err = n+k, rerr
	}
	if st := g.Status(); st.Code != 0 || err != nil || n != 100000 {
		t.Fatalf("status %+v (1: fd_write wrote fewer than 100000 bytes), read %d bytes (%v); want exit 0 and every byte", st, n, fmt.Sprint(err))
	}
}
