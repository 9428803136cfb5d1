package abi_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/abi"
	"github.com/sandboxd/sandboxd/abi/abitest"
	"github.com/sandboxd/sandboxd/caps"
)

// fifoGuest opens "fifo" beneath fd 3 with the rights given (WASI
// path_open; 100 + errno if that fails), says "reading" on stdout, reads
// the FIFO once and exits with the errno of the read, or 200 + the bytes
// it read.
func fifoGuest(rights uint64) string {
	return fmt.Sprintf(`(module
  (import "wasi_snapshot_preview1" "path_open"
    (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "fifo")
  (data (i32.const 32) "reading\n")
  (func (export "_start")
    (local $e i32)
    (local.set $e (call $path_open (i32.const 3) (i32.const 1) (i32.const 0) (i32.const 4)
      (i32.const 0) (i64.const %d) (i64.const 0) (i32.const 0) (i32.const 16)))
    (if (local.get $e) (then (call $proc_exit (i32.add (i32.const 100) (local.get $e)))))
    (i32.store (i32.const 40) (i32.const 32))
    (i32.store (i32.const 44) (i32.const 8))
    (drop (call $fd_write (i32.const 1) (i32.const 40) (i32.const 1) (i32.const 48)))
    (i32.store (i32.const 56) (i32.const 64))
    (i32.store (i32.const 60) (i32.const 16))
    (local.set $e (call $fd_read (i32.load (i32.const 16)) (i32.const 56) (i32.const 1) (i32.const 52)))
    (if (local.get $e) (then (call $proc_exit (local.get $e))))
    (call $proc_exit (i32.add (i32.const 200) (i32.load (i32.const 52))))))`, rights)
}

const (
	wasiFDRead  = 1 << 1
	wasiFDWrite = 1 << 6
)

// startFIFOGuest starts fifoGuest with a directory holding a FIFO at fd 3
// and stdout on a pipe, whose reading end it returns.
func startFIFOGuest(t *testing.T, ctx context.Context, rights uint64) (*abi.Guest, *bufio.Reader) {
	t.Helper()
	dir := t.TempDir()
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o600); err != nil {
		t.Fatal(err)
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pr.Close(); pw.Close() })
	h := newHarness(t)
	holder := &caps.Holder{ID: "g-fifo"}
	tbl := caps.NewTable(h.k, holder, 0)
	for _, s := range []*caps.Stdio{caps.NewStdin(bytes.NewReader(nil)), caps.NewStdout("stdout", pw), caps.NewStdout("stderr", &h.stderr)} {
		if _, err := tbl.Insert(h.k.Mint(holder, s, caps.RightsTTYBase, 0, s.Describe(), "test")); err != nil {
			t.Fatal(err)
		}
	}
	h.grantDir(t, tbl, dir, "data", false) // fd 3
	return h.start(t, ctx, abitest.WATText(t, fifoGuest(rights)), tbl, nil), bufio.NewReader(pr)
}

// Opening a FIFO beneath a directory does not wait for someone to open
// its other end (open(2) would block the daemon where nothing could end
// the wait): it opens at once, and a read with no writer reads the end.
func TestOpeningAFIFOBeneathADirectoryDoesNotBlock(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	g, _ := startFIFOGuest(t, ctx, wasiFDRead)
	select {
	case <-g.Done():
	case <-ctx.Done():
		t.Fatal("a guest opening a FIFO no one writes to is still in path_open")
	}
	if st := g.Status(); st.Code != 200 {
		t.Fatalf("status %+v; want exit 200 (opened, and read the end of the FIFO)", st)
	}
}

// A guest reading a FIFO it holds open for writing too waits for data no
// one will write: the wait is the guest's, which Kill ends, not one the
// daemon cannot leave.
func TestKillEndsAGuestReadingAFIFO(t *testing.T) {
	g, stdout := startFIFOGuest(t, context.Background(), wasiFDRead|wasiFDWrite)
	line, err := stdout.ReadString('\n')
	if err != nil || line != "reading\n" {
		t.Fatalf("guest said %q, %v", line, err)
	}
	g.Kill("test")
	select {
	case <-g.Done():
	case <-time.After(hangGuard):
		t.Fatal("a guest reading a FIFO is still running after Kill")
	}
	if st := g.Status(); st.Killed == "" {
		t.Fatalf("status %+v; want killed", st)
	}
}

// Opened write-only with no reader, a FIFO is ENXIO at once, as a
// non-blocking open(2) is.
func TestOpeningAFIFOForWritingWithNoReaderIsENXIO(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	g, _ := startFIFOGuest(t, ctx, wasiFDWrite)
	select {
	case <-g.Done():
	case <-ctx.Done():
		t.Fatal("a guest opening a FIFO for writing, with no reader, is still in path_open")
	}
	if st := g.Status(); st.Code != 100+uint32(caps.ENXIO) {
		t.Fatalf("status %+v; want exit %d (path_open: ENXIO)", st, 100+uint32(caps.ENXIO))
	}
}
