package abi_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/abi/abitest"
	"github.com/sandboxd/sandboxd/caps"
	"golang.org/x/sys/unix"
)

const sockpollGuest = "abi/testdata/guests/wasi/sockpoll.c"

// grantSocketPairs grants the guest n connected unix stream sockets, as
// fds 3 .. 3+n-1, and returns their capabilities and the peers' ends.
func (h *harness) grantSocketPairs(t testing.TB, tbl *caps.Table, n int) ([]*caps.Cap, []net.Conn) {
	t.Helper()
	cs := make([]*caps.Cap, n)
	peers := make([]net.Conn, n)
	for i := range n {
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		conn := func(fd int) net.Conn {
			f := os.NewFile(uintptr(fd), "pair")
			c, err := net.FileConn(f)
			f.Close()
			if err != nil {
				t.Fatal(err)
			}
			return c
		}
		s, err := caps.NewSocket(conn(fds[0]), "pair "+strconv.Itoa(i))
		if err != nil {
			t.Fatal(err)
		}
		peers[i] = conn(fds[1])
		t.Cleanup(func() { peers[i].Close() })
		b, inh := caps.GrantRights(caps.KindSocket, false)
		cs[i] = h.k.Mint(tbl.Holder(), s, b, inh, "s"+strconv.Itoa(i), "test")
		fd, err := tbl.Insert(cs[i])
		if err != nil {
			t.Fatal(err)
		}
		if fd != uint32(3+i) {
			t.Fatalf("socket %d is fd %d, want %d", i, fd, 3+i)
		}
	}
	return cs, peers
}

// One guest polls 64 sockets at once while their peers write at random
// moments and read their bytes back: every byte comes back on its own
// socket, whichever sockets are ready together. Run with -race.
func TestPollEchoesOnManySocketsAtOnce(t *testing.T) {
	const nsock, msgs = 64, 20
	h := newHarness(t)
	tbl := h.table("echo")
	_, peers := h.grantSocketPairs(t, tbl, nsock)
	// What each peer sends, decided up front so the guest knows the total.
	r := rand.New(rand.NewPCG(1, 2))
	sends := make([][][]byte, nsock)
	total := 0
	for i := range sends {
		for m := range msgs {
			b := bytes.Repeat([]byte{byte('a' + (i+m)%26)}, 1+r.IntN(100))
			sends[i] = append(sends[i], b)
			total += len(b)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	g := h.start(t, ctx, abitest.WASIC(t, sockpollGuest), tbl, nil, "echo", strconv.Itoa(nsock), strconv.Itoa(total))
	var wg sync.WaitGroup
	for i, c := range peers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pr := rand.New(rand.NewPCG(uint64(i), 3))
			for _, msg := range sends[i] {
				if pr.IntN(3) == 0 { // now and then, let the guest wait on all of them
					time.Sleep(time.Duration(pr.IntN(500)) * time.Microsecond)
				}
				if _, err := c.Write(msg); err != nil {
					t.Errorf("peer %d: %v", i, err)
					return
				}
				got := make([]byte, len(msg))
				if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, msg) {
					t.Errorf("peer %d: echo %q %v, want %q", i, got, err, msg)
					return
				}
			}
		}()
	}
	wg.Wait()
	st := g.Wait()
	if st.Err() != nil || st.Code != 0 || h.stdout.String() != fmt.Sprintf("served %d\n", total) {
		t.Fatalf("status %+v, stdout %q", st, h.stdout.String())
	}
}

// Revoking one of the sockets a guest is blocked polling ends the wait
// with ENOTCAPABLE for that socket alone, Revoke returns once the guest
// let go, and the connection is over for the peer at once.
func TestPollOnSocketsEndsWithENOTCAPABLEWhenOneIsRevoked(t *testing.T) {
	const nsock, victim = 16, 5
	h := newHarness(t)
	tbl := h.table("wait")
	cs, peers := h.grantSocketPairs(t, tbl, nsock)
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	g := h.start(t, ctx, abitest.WASIC(t, sockpollGuest), tbl, nil, "wait", strconv.Itoa(nsock))
	awaitBlocked(t, g, 0)
	if r := h.k.Revoke(cs[victim], "test"); len(r.Revoked) != 1 {
		t.Fatalf("receipt %+v", r)
	}
	// The socket was closed before Revoke returned: the peer reads the end
	// of the stream, it does not wait (the deadline only catches a hang).
	peers[victim].SetReadDeadline(time.Now().Add(hangGuard))
	if n, err := peers[victim].Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("peer of the revoked socket read %d, %v; want EOF", n, err)
	}
	st := g.Wait()
	want := fmt.Sprintf("fd %d error %d\nevents 1\n", 3+victim, 76) // 76: WASI's ENOTCAPABLE
	if st.Err() != nil || st.Code != 0 || h.stdout.String() != want {
		t.Fatalf("status %+v, stdout %q, want %q", st, h.stdout.String(), want)
	}
}

// Killing a guest blocked on many sockets ends it, and its sockets stay
// usable for whoever else holds them (nothing registered is left behind
// that would fire into a dead guest).
func TestPollOnSocketsEndsOnKill(t *testing.T) {
	const nsock = 16
	h := newHarness(t)
	tbl := h.table("kill")
	_, peers := h.grantSocketPairs(t, tbl, nsock)
	g := h.start(t, context.Background(), abitest.WASIC(t, sockpollGuest), tbl, nil, "wait", strconv.Itoa(nsock))
	awaitBlocked(t, g, 0)
	killAndAwait(t, g, "guest")
	if _, err := peers[0].Write([]byte("x")); err == nil {
		// The guest's table closed its sockets: the peer sees the end.
		peers[0].SetReadDeadline(time.Now().Add(hangGuard))
		if _, err := peers[0].Read(make([]byte, 1)); err != io.EOF {
			t.Fatalf("peer read %v after the guest was killed, want EOF", err)
		}
	}
}

// pollListenerWAT polls fd 3 once for fd_read with the native poll, and
// exits with poll's errno ×1000 + nevents ×100 + the event's error.
const pollListenerWAT = `(module
  (import "sandboxd" "poll" (func $poll (param i32 i32 i32 i32) (result i32)))
  (import "sandboxd" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    (local $e i32)
    (i64.store (i32.const 0) (i64.const 7))   ;; userdata
    (i32.store8 (i32.const 10) (i32.const 3)) ;; type: fd_read
    (i32.store (i32.const 16) (i32.const 3))  ;; fd
    (local.set $e (call $poll (i32.const 0) (i32.const 100) (i32.const 1) (i32.const 200)))
    (call $exit (i32.add (i32.mul (local.get $e) (i32.const 1000))
      (i32.add (i32.mul (i32.load (i32.const 200)) (i32.const 100))
        (i32.load16_u (i32.const 108)))))))`

// The native poll waits for a connection on a listener, as it does on a
// socket for data: a pending connection makes the listener readable.
// A listener holds no fd_read (it has nothing to read), so poll must not
// ask it for one.
func TestNativePollReportsAPendingConnectionOnAListener(t *testing.T) {
	h := newHarness(t)
	tbl := h.table("srv")
	addr, _ := h.grantListener(t, tbl)
	conn, err := net.Dial("tcp", addr) // pending before the guest polls
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	st := h.runMode(t, abitest.WATText(t, pollListenerWAT), tbl, "")
	if st.Err() != nil || st.Code != 100 {
		t.Fatalf("status %+v: want exit 100 (poll ok, one event, no error)", st)
	}
}

// writeAllWAT writes 64 KiB from fd 3, 4096 times (WASI fd_write), and
// exits with 0 once all is written or with the errno of the write that
// failed.
const writeAllWAT = `(module
  (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 2)
  (func (export "_start")
    (local $i i32) (local $e i32)
    (i32.store (i32.const 0) (i32.const 65536))
    (i32.store (i32.const 4) (i32.const 65536))
    (loop $again
      (local.set $e (call $write (i32.const 3) (i32.const 0) (i32.const 1) (i32.const 8)))
      (if (local.get $e) (then (call $exit (local.get $e))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $again (i32.lt_u (local.get $i) (i32.const 4096))))
    (call $exit (i32.const 0))))`

// pollWriteWAT writes to fd 3 (non-blocking) until it takes no more,
// then waits with poll_oneoff for fd 3 to become writable, and exits with
// 100 + the event's error ×10 + its flags (1: hang-up), or with 1 when
// poll reports no event.
const pollWriteWAT = `(module
  (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 2)
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 65536))
    (i32.store (i32.const 4) (i32.const 65536))
    (loop $fill
      (br_if $fill (i32.eqz (call $write (i32.const 3) (i32.const 0) (i32.const 1) (i32.const 8)))))
    (i64.store (i32.const 100) (i64.const 9))  ;; userdata
    (i32.store8 (i32.const 108) (i32.const 2)) ;; fd_write
    (i32.store (i32.const 116) (i32.const 3))  ;; fd
    (drop (call $poll (i32.const 100) (i32.const 200) (i32.const 1) (i32.const 300)))
    (if (i32.ne (i32.load (i32.const 300)) (i32.const 1)) (then (call $exit (i32.const 1))))
    (call $exit (i32.add (i32.const 100) (i32.add
      (i32.mul (i32.load16_u (i32.const 208)) (i32.const 10)) (i32.load16_u (i32.const 224)))))))`

// A peer that shut down only its sending side can still read: a socket
// whose buffer is full is not writable because of that, and a blocking
// write waits (and ends when the guest is killed) rather than retry at
// once, over and over, inside the host call.
func TestBlockingWriteToAHalfClosedPeerWaitsAndEndsOnKill(t *testing.T) {
	h := newHarness(t)
	tbl := h.table("w")
	_, peers := h.grantSocketPairs(t, tbl, 1)
	if err := peers[0].(*net.UnixConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	g := h.start(t, context.Background(), abitest.WATText(t, writeAllWAT), tbl, nil)
	t.Cleanup(func() { peers[0].Close(); <-g.Done() }) // ends a spinning write
	awaitBlocked(t, g, 0)
	killAndAwait(t, g, "a write blocked on a half-closed socket")
}

// poll_oneoff does not report a full socket writable, nor hung up, when
// its peer only shut down sending; it does once the peer reads.
func TestPollForWriteOnAHalfClosedPeerWaitsForRoom(t *testing.T) {
	h := newHarness(t)
	tbl := h.table("w")
	cs, peers := h.grantSocketPairs(t, tbl, 1)
	cs[0].SetFlags(caps.FlagNonblock)
	if err := peers[0].(*net.UnixConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	g := h.start(t, ctx, abitest.WATText(t, pollWriteWAT), tbl, nil)
	awaitBlocked(t, g, 0)
	go io.Copy(io.Discard, peers[0]) // room at last
	if st := g.Wait(); st.Err() != nil || st.Code != 100 {
		t.Fatalf("status %+v: want exit 100 (writable, no error, no hang-up)", st)
	}
}

// BenchmarkPollSockets measures poll_oneoff over n sockets of which at
// most one is ready, from a WASI guest:
//
//   - check/n: a zero-timeout poll of n idle sockets (what Go's wasip1
//     scheduler does whenever it runs out of work);
//   - echo/n: one byte's round trip through a guest blocked on all n
//     sockets, the peer writing to each in turn.
func BenchmarkPollSockets(b *testing.B) {
	wasm := abitest.WASIC(b, sockpollGuest)
	for _, n := range []int{1, 10, 100} {
		b.Run("check/"+strconv.Itoa(n), func(b *testing.B) {
			h := newHarness(b)
			tbl := h.table("check")
			h.grantSocketPairs(b, tbl, n)
			b.ResetTimer()
			st := h.start(b, context.Background(), wasm, tbl, nil, "check", strconv.Itoa(n), strconv.Itoa(b.N)).Wait()
			b.StopTimer()
			if want := fmt.Sprintf("polls %d fd-events 0\n", b.N); st.Code != 0 || h.stdout.String() != want {
				b.Fatalf("status %+v, stdout %q", st, h.stdout.String())
			}
		})
		b.Run("echo/"+strconv.Itoa(n), func(b *testing.B) {
			h := newHarness(b)
			tbl := h.table("echo")
			_, peers := h.grantSocketPairs(b, tbl, n)
			g := h.start(b, context.Background(), wasm, tbl, nil, "echo", strconv.Itoa(n), strconv.Itoa(b.N))
			buf := []byte{0}
			b.ResetTimer()
			for i := range b.N {
				c := peers[i%n]
				if _, err := c.Write(buf); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(c, buf); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			if st := g.Wait(); st.Code != 0 {
				b.Fatalf("status %+v, stdout %q", st, h.stdout.String())
			}
		})
	}
}
