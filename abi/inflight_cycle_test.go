package abi_test

import (
	"testing"

	"github.com/sandboxd/sandboxd/abi/abitest"
	"github.com/sandboxd/sandboxd/caps"
)

// cycleWAT makes a datagram channel (p, q), sends q on p (it
// lands in q's own queue) and q on q (it lands in p's queue), closes q
// and then p, and exits with the errnos of the five calls (base 100).
const cycleWAT = `(module
  (import "sandboxd" "fd_create2" (func $create2 (param i32 i32 i32) (result i32)))
  (import "sandboxd" "sock_send" (func $send (param i32 i32 i32) (result i32)))
  (import "sandboxd" "fd_close" (func $close (param i32) (result i32)))
  (import "sandboxd" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 200) "x")
  (func (export "_start")
    (local $e i32) (local $p i32) (local $q i32)
    (local.set $e (call $create2 (i32.const 0x80) (i32.const 500) (i32.const 504)))
    (local.set $p (i32.load (i32.const 500)))
    (local.set $q (i32.load (i32.const 504)))
    (i32.store (i32.const 100) (i32.const 200)) ;; one iovec: "x"
    (i32.store (i32.const 104) (i32.const 1))
    (i32.store (i32.const 300) (local.get $q))  ;; one fd: q
    (i32.store (i32.const 0) (i32.const 100))   ;; send_in
    (i32.store (i32.const 4) (i32.const 1))
    (i32.store (i32.const 8) (i32.const 300))
    (i32.store (i32.const 12) (i32.const 1))
    (i32.store16 (i32.const 16) (i32.const 0))
    (local.set $e (i32.add (i32.mul (local.get $e) (i32.const 100)) (call $send (local.get $p) (i32.const 0) (i32.const 64))))
    (local.set $e (i32.add (i32.mul (local.get $e) (i32.const 100)) (call $send (local.get $q) (i32.const 0) (i32.const 64))))
    (local.set $e (i32.add (i32.mul (local.get $e) (i32.const 100)) (call $close (local.get $q))))
    (local.set $e (i32.add (i32.mul (local.get $e) (i32.const 100)) (call $close (local.get $p))))
    (call $exit (local.get $e))))`

// Once the guest has ended, nothing it sent can be received by anyone:
// every handle it had in flight must be uncharged.
func TestAnEndedGuestLeavesNoHandleInFlight(t *testing.T) {
	h := newHarness(t)
	h.inflight = caps.NewInFlightLimit(8)
	st := h.runMode(t, abitest.WATText(t, cycleWAT), h.table("g"), "")
	if st.Err() != nil || st.Code != 0 {
		t.Fatalf("status %+v", st)
	}
	if n := h.inflight.InFlight(); n != 0 {
		t.Fatalf("%d handles still charged as in flight after the guest ended; want 0", n)
	}
}

// sendTwoWAT makes a channel and sends one message carrying two handles
// (both its own end q) on p; it exits with sock_send's errno.
const sendTwoWAT = `(module
  (import "sandboxd" "fd_create2" (func $create2 (param i32 i32 i32) (result i32)))
  (import "sandboxd" "sock_send" (func $send (param i32 i32 i32) (result i32)))
  (import "sandboxd" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 200) "x")
  (func (export "_start")
    (drop (call $create2 (i32.const 0x80) (i32.const 500) (i32.const 504)))
    (i32.store (i32.const 100) (i32.const 200))
    (i32.store (i32.const 104) (i32.const 1))
    (i32.store (i32.const 300) (i32.load (i32.const 504)))
    (i32.store (i32.const 304) (i32.load (i32.const 504)))
    (i32.store (i32.const 0) (i32.const 100))
    (i32.store (i32.const 4) (i32.const 1))
    (i32.store (i32.const 8) (i32.const 300))
    (i32.store (i32.const 12) (i32.const 2))
    (i32.store16 (i32.const 16) (i32.const 0))
    (call $exit (call $send (i32.load (i32.const 500)) (i32.const 0) (i32.const 64)))))`

// With a bound of 2, a guest that sends two handles in one message is
// not refused after an earlier guest sharing the bound ended leaving the
// cycle above: nobody can ever receive what is in it, so it must not keep
// part of the bound.
func TestAnEndedGuestsCycleTakesNothingFromTheBound(t *testing.T) {
	h := newHarness(t)
	h.inflight = caps.NewInFlightLimit(2)
	if st := h.runMode(t, abitest.WATText(t, sendTwoWAT), h.table("g0"), ""); st.Code != 0 {
		t.Fatalf("on a fresh bound the send fails: errno %d", st.Code)
	}
	if st := h.runMode(t, abitest.WATText(t, cycleWAT), h.table("g1"), ""); st.Code != 0 {
		t.Fatalf("cycle guest: exit %d", st.Code)
	}
	if st := h.runMode(t, abitest.WATText(t, sendTwoWAT), h.table("g2"), ""); st.Code != 0 {
		t.Fatalf("the later guest's send: errno %d (ENOBUFS is %d); %d handles in flight, none of them receivable", st.Code, caps.ENOBUFS, h.inflight.InFlight())
	}
}
