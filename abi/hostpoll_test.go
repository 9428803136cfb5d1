package abi_test

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"testing"

	"github.com/sandboxd/sandboxd/abi"
	"github.com/sandboxd/sandboxd/abi/abitest"
)

// A guest's poller keeps its registrations from one poll call to the next
// (abi/hostpoll.go), keyed by descriptor number. A server guest that
// accepts a connection, polls it and closes it, over and over, gets a new
// number whenever the others of the daemon's process hold the old one, as
// they do in a busy daemon: what it keeps must follow what it polls, not
// every number it ever polled, each with the socket it was made for.
func TestPollKeepsNoRegistrationOfClosedSockets(t *testing.T) {
	h := newHarness(t)
	tbl := h.table("srv")
	addr, _ := h.grantListener(t, tbl) // fd 3
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	g := h.startMode(t, ctx, abitest.WATText(t, acceptPollCloseWAT), tbl, "")
	defer killAndAwait(t, g, "accepting")
	var held []*os.File // the descriptor numbers the daemon's other work holds
	defer func() {
		for _, f := range held {
			f.Close()
		}
	}()
	const rounds = 200
	for i := range rounds {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		b := make([]byte, 1)
		if _, err := io.ReadFull(c, b); err != nil { // accepted: the guest polls it next
			t.Fatalf("round %d: %v", i, err)
		}
		awaitBlocked(t, g, 0) // in poll, its only wait until the byte below
		if _, err := c.Write(b); err != nil {
			t.Fatal(err)
		}
		// The guest closed it, its byte unread: a reset, or the end.
		if _, err := c.Read(b); err != io.EOF && !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("round %d: read %v, want the connection closed", i, err)
		}
		c.Close()
		for range 4 { // the numbers just freed, taken by others
			f, err := os.Open(os.DevNull)
			if err != nil {
				t.Fatal(err)
			}
			held = append(held, f)
		}
	}
	awaitBlocked(t, g, 0) // in sock_accept: poll's registrations stay as they are
	if n := g.HostPollRegistrations(); n > abi.HostPollKept {
		t.Fatalf("after %d connections, each polled alone and closed, the guest's poller keeps %d registrations (at most %d)", rounds, n, abi.HostPollKept)
	}
}

// acceptPollCloseWAT accepts a connection on fd 3, writes one byte to it,
// polls it for reading, closes it, and again, until a call fails: it exits
// with the errno of a failed sock_accept, or 200 + poll's.
const acceptPollCloseWAT = `(module
  (import "sandboxd" "sock_accept" (func $accept (param i32 i32) (result i32)))
  (import "sandboxd" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
  (import "sandboxd" "poll" (func $poll (param i32 i32 i32 i32) (result i32)))
  (import "sandboxd" "fd_close" (func $close (param i32) (result i32)))
  (import "sandboxd" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 8) "r")
  (func (export "_start")
    (local $fd i32) (local $e i32)
    (i32.store (i32.const 16) (i32.const 8)) ;; iovec: "r"
    (i32.store (i32.const 20) (i32.const 1))
    (i32.store8 (i32.const 110) (i32.const 3)) ;; subscription: fd_read
    (loop $again
      (local.set $e (call $accept (i32.const 3) (i32.const 0)))
      (if (local.get $e) (then (call $exit (local.get $e))))
      (local.set $fd (i32.load (i32.const 0)))
      (drop (call $write (local.get $fd) (i32.const 16) (i32.const 1) (i32.const 24)))
      (i32.store (i32.const 116) (local.get $fd))
      (local.set $e (call $poll (i32.const 100) (i32.const 200) (i32.const 1) (i32.const 300)))
      (if (local.get $e) (then (call $exit (i32.add (i32.const 200) (local.get $e)))))
      (drop (call $close (local.get $fd)))
      (br $again))))`
