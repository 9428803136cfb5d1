package abi_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/abi"
	"github.com/sandboxd/sandboxd/abi/abitest"
	"github.com/sandboxd/sandboxd/caps"
)

// writeLoopWAT writes one byte to fd 1 until a write fails, and exits with
// its errno; with spin, it writes once and then loops without a call.
const writeLoopWAT = `(module
  (import "sandboxd" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "sandboxd" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 32) "x")
  (func (export "_start")
    (local $e i32)
    (i32.store (i32.const 0) (i32.const 32))
    (i32.store (i32.const 4) (i32.const 1))
    (loop $again
      (local.set $e (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 16)))
      (if (local.get $e) (then (call $proc_exit (local.get $e))))
      (if (i32.const %d) (then (loop $spin (br $spin))))
      (br $again))))`

// revokeWatch is a writer that fails the test if a write reaches it after
// the revocation of the handle it is behind has returned.
type revokeWatch struct {
	t        *testing.T
	writes   atomic.Int64
	first    chan struct{}
	returned atomic.Bool
}

func (w *revokeWatch) Write(p []byte) (int, error) {
	if w.returned.Load() {
		w.t.Error("a write succeeded after Revoke returned")
	}
	if w.writes.Add(1) == 1 {
		close(w.first)
	}
	return len(p), nil
}

// stdoutGuest starts wasm with fd 1 a capability to a revokeWatch, and
// returns the guest, the capability and the watch.
func stdoutGuest(t *testing.T, h *harness, wasm []byte, id string) (*abi.Guest, *caps.Cap, *revokeWatch) {
	w := &revokeWatch{t: t, first: make(chan struct{})}
	holder := &caps.Holder{ID: id}
	tbl := caps.NewTable(h.k, holder, 0)
	var out *caps.Cap
	for i, s := range []*caps.Stdio{caps.NewStdin(nil), caps.NewStdout("stdout", w), caps.NewStdout("stderr", &h.stderr)} {
		c := h.k.Mint(holder, s, caps.RightsTTYBase, 0, s.Describe(), "test")
		if _, err := tbl.Insert(c); err != nil {
			t.Fatal(err)
		}
		if i == 1 {
			out = c
		}
	}
	m, err := h.rt.Compile(context.Background(), "writer", wasm)
	if err != nil {
		t.Fatal(err)
	}
	g := h.rt.NewGuest(m, abi.GuestConfig{ID: id, Table: tbl, Args: []string{"writer"}})
	m.Release()
	g.Start(context.Background())
	return g, out, w
}

// A guest writing to its stdout in a loop keeps the capability acquired
// between writes; a concurrent revocation still ends the writes: none
// succeeds once Revoke has returned, and the guest's next write fails with
// ENOTCAPABLE. Revocations land at different points of the loop.
func TestNoWriteSucceedsAfterRevokeReturns(t *testing.T) {
	h := newHarness(t)
	wasm := abitest.WATText(t, fmt.Sprintf(writeLoopWAT, 0))
	for i := range 20 {
		g, out, w := stdoutGuest(t, h, wasm, fmt.Sprintf("w%d", i))
		<-w.first
		for n := w.writes.Load(); w.writes.Load() < n+int64(i*50); {
		}
		h.k.Revoke(out, "test")
		w.returned.Store(true)
		select {
		case <-g.Done():
		case <-time.After(hangGuard):
			t.Fatal("the guest did not end after its stdout was revoked")
		}
		if st := g.Status(); st.Code != uint32(caps.ENOTCAPABLE) {
			t.Fatalf("round %d: status %+v, want exit ENOTCAPABLE (%d)", i, st, caps.ENOTCAPABLE)
		}
	}
}

// Revoke returns while the guest that holds the capability runs on
// without a call: the guest gives the hold up at its next loop iteration.
func TestRevokeDoesNotWaitForASpinningGuestsNextCall(t *testing.T) {
	h := newHarness(t)
	g, out, w := stdoutGuest(t, h, abitest.WATText(t, fmt.Sprintf(writeLoopWAT, 1)), "spinner")
	<-w.first
	done := make(chan struct{})
	go func() {
		h.k.Revoke(out, "test")
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(hangGuard):
		t.Fatal("Revoke waited for a guest that spins without calls")
	}
	g.Kill("test")
	<-g.Done()
}
