package abi

import (
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/caps"
	"golang.org/x/sys/unix"
)

// hostPair is a connected pair of unix stream sockets: ours, wrapped as
// the guest would hold it, and the peer's end.
type hostPair struct {
	sock *caps.Socket
	fd   int32
	peer net.Conn
}

func newHostPair(t testing.TB) hostPair {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	conn := func(fd int) net.Conn {
		f := os.NewFile(uintptr(fd), "pair")
		c, err := net.FileConn(f) // duplicates fd
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	s, err := caps.NewSocket(conn(fds[0]), "test")
	if err != nil {
		t.Fatal(err)
	}
	fd, ok := s.PollFD()
	if !ok {
		t.Fatal("PollFD on an open socket")
	}
	p := hostPair{sock: s, fd: int32(fd), peer: conn(fds[1])}
	t.Cleanup(func() { p.sock.Close(); p.peer.Close() })
	return p
}

func newTestPoller(t testing.TB) *hostPoller {
	t.Helper()
	p, err := newHostPoller()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.close)
	return p
}

// waitWake waits for w, for at most hangGuardInternal: only a lost
// wake-up makes it fail.
func waitWake(t testing.TB, w *caps.Waiter, what string) {
	t.Helper()
	select {
	case <-w.C():
	case <-time.After(hangGuardInternal):
		t.Fatalf("no wake-up within %v: %s", hangGuardInternal, what)
	}
}

const hangGuardInternal = 3 * time.Minute

// A registration fires for data that arrives after arming, and is re-armed
// for the next wait after it fired; check reports what is ready with no
// wait.
func TestHostPollerWakesForDataAndRearmsAfterFiring(t *testing.T) {
	p := newTestPoller(t)
	a := newHostPair(t)
	hs := []hostSub{{fd: a.fd, res: a.sock, want: caps.EventRead}}
	w := caps.NewWaiter()
	var failed []bool
	for round := range 3 {
		p.check(hs)
		if hs[0].ready != 0 {
			t.Fatalf("round %d: ready %v before any data", round, hs[0].ready)
		}
		failed = p.arm(hs, failed)
		if failed[0] {
			t.Fatalf("round %d: arm failed", round)
		}
		cancel := p.watch(w)
		if _, err := a.peer.Write([]byte{byte(round)}); err != nil {
			t.Fatal(err)
		}
		waitWake(t, w, "data on an armed socket")
		cancel()
		p.check(hs)
		if hs[0].ready&caps.EventRead == 0 {
			t.Fatalf("round %d: woken but not readable (%v)", round, hs[0].ready)
		}
		buf := make([]byte, 1)
		if n, err := a.sock.Read(buf); n != 1 || err != nil || buf[0] != byte(round) {
			t.Fatalf("round %d: read %d %v %v", round, n, buf, err)
		}
	}
}

// Data that arrived before arming wakes the watcher at once: arming a
// ready descriptor queues its event.
func TestHostPollerSeesReadinessFromBeforeArming(t *testing.T) {
	p := newTestPoller(t)
	a := newHostPair(t)
	hs := []hostSub{{fd: a.fd, res: a.sock, want: caps.EventRead}}
	if _, err := a.peer.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	w := caps.NewWaiter()
	p.arm(hs, nil)
	cancel := p.watch(w)
	defer cancel()
	waitWake(t, w, "data written before arming")
}

// A descriptor number closed and reused by another socket is registered
// anew although the map still remembers the old socket armed on it (the
// kernel dropped the old registration with the old descriptor); and a
// registration the map forgot is taken over (EEXIST).
func TestHostPollerRegistersAReusedDescriptorAnew(t *testing.T) {
	p := newTestPoller(t)
	old := newHostPair(t)
	b := newHostPair(t)
	// What the map holds after old, armed on b's number, was closed and
	// the number reused by b.
	p.armed[b.fd] = armedFD{res: old.sock, events: unix.EPOLLIN | unix.EPOLLRDHUP}
	hs := []hostSub{{fd: b.fd, res: b.sock, want: caps.EventRead}}
	if failed := p.arm(hs, nil); failed[0] {
		t.Fatal("arm failed on the reused number")
	}
	if got := p.armed[b.fd]; got.res != b.sock {
		t.Fatalf("armed %+v, want it for the new socket", got)
	}
	w := caps.NewWaiter()
	cancel := p.watch(w)
	if _, err := b.peer.Write([]byte("y")); err != nil {
		t.Fatal(err)
	}
	waitWake(t, w, "data on a socket reusing a closed socket's descriptor number")
	cancel()
	buf := make([]byte, 1)
	if _, err := b.sock.Read(buf); err != nil {
		t.Fatal(err)
	}

	delete(p.armed, b.fd) // the kernel still has b registered
	if failed := p.arm(hs, nil); failed[0] {
		t.Fatal("arm failed on a registration the map forgot")
	}
	cancel = p.watch(w)
	defer cancel()
	if _, err := b.peer.Write([]byte("z")); err != nil {
		t.Fatal(err)
	}
	waitWake(t, w, "data after the registration was taken over")
}

// A cancelled watcher does not wake the waiter and lets the next one
// watch; closing the poller ends a parked watcher.
func TestHostPollerWatcherCancelsAndCloses(t *testing.T) {
	p := newTestPoller(t)
	a := newHostPair(t)
	hs := []hostSub{{fd: a.fd, res: a.sock, want: caps.EventRead}}
	w := caps.NewWaiter()
	p.arm(hs, nil)
	for range 100 {
		p.watch(w)()
	}
	select {
	case <-w.C():
		t.Fatal("a cancelled watcher woke the waiter")
	default:
	}
	cancel := p.watch(w)
	if _, err := a.peer.Write([]byte("z")); err != nil {
		t.Fatal(err)
	}
	waitWake(t, w, "data after 100 cancelled watchers")
	cancel()

	q, err := newHostPoller()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		q.watch(caps.NewWaiter()) // never cancelled
		q.close()
	}()
	select {
	case <-done:
	case <-time.After(hangGuardInternal):
		t.Fatal("close did not return with a watcher parked")
	}
}

// Many sockets, written at random by concurrent peers: every byte is
// seen, each wait ends only when something is ready, and nothing is lost
// between a check and a wait. Run with -race.
func TestHostPollerManySocketsConcurrentWriters(t *testing.T) {
	const nsock, writers, perWriter = 200, 8, 250
	p := newTestPoller(t)
	pairs := make([]hostPair, nsock)
	hs := make([]hostSub, nsock)
	for i := range pairs {
		pairs[i] = newHostPair(t)
		hs[i] = hostSub{fd: pairs[i].fd, res: pairs[i].sock, want: caps.EventRead}
	}
	var wg sync.WaitGroup
	for wr := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(wr), 1))
			for range perWriter {
				i := r.IntN(nsock)
				_, err := pairs[i].peer.Write([]byte{1})
				if err != nil {
					t.Error(err)
					return
				}
				if r.IntN(2) == 0 { // let the reader run dry and wait
					time.Sleep(time.Duration(r.IntN(300)) * time.Microsecond)
				}
			}
		}()
	}
	w := caps.NewWaiter()
	var failed []bool
	got, waits, spurious := 0, 0, 0
	buf := make([]byte, 64)
	for got < writers*perWriter {
		p.check(hs)
		n := 0
		for i := range hs {
			if hs[i].ready&caps.EventRead == 0 {
				continue
			}
			n++
			k, err := pairs[i].sock.Read(buf)
			if err != nil && err != caps.EAGAIN {
				t.Fatalf("socket %d: %v", i, err)
			}
			got += k
		}
		if n > 0 {
			continue
		}
		failed = p.arm(hs, failed)
		for i, f := range failed {
			if f {
				t.Fatalf("socket %d: arm failed", i)
			}
		}
		cancel := p.watch(w)
		waitWake(t, w, "bytes still to come")
		cancel()
		waits++
		p.check(hs)
		if !anyReady(hs) {
			spurious++
		}
	}
	wg.Wait()
	if got != writers*perWriter {
		t.Fatalf("read %d bytes, want %d", got, writers*perWriter)
	}
	t.Logf("%d bytes on %d sockets: %d waits, %d woke with nothing ready", got, nsock, waits, spurious)
}

func anyReady(hs []hostSub) bool {
	for _, h := range hs {
		if h.ready != 0 {
			return true
		}
	}
	return false
}

// A hang-up (the peer closed) is readiness, as poll(2) reports it.
func TestHostPollerReportsHangup(t *testing.T) {
	p := newTestPoller(t)
	a := newHostPair(t)
	hs := []hostSub{{fd: a.fd, res: a.sock, want: caps.EventRead}}
	w := caps.NewWaiter()
	p.arm(hs, nil)
	cancel := p.watch(w)
	a.peer.Close()
	waitWake(t, w, "peer closed")
	cancel()
	p.check(hs)
	if hs[0].ready&caps.EventHangup == 0 || hs[0].ready&caps.EventRead == 0 {
		t.Fatalf("ready %v after the peer closed, want read and hang-up", hs[0].ready)
	}
}

// A peer that shut down only its sending side ends a wait to read (end of
// stream), not one to write: a full socket stays unwritable, and its
// write registration does not fire (it would fire again at every re-arm,
// and a poll waiting to write would spin).
func TestHostPollerWriteWaitIgnoresPeerShutdownOfSending(t *testing.T) {
	p := newTestPoller(t)
	a := newHostPair(t)
	buf := make([]byte, 64<<10)
	for {
		if _, err := a.sock.Write(buf); err == caps.EAGAIN {
			break
		} else if err != nil {
			t.Fatal(err)
		}
	}
	if err := a.peer.(*net.UnixConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	hs := []hostSub{{fd: a.fd, res: a.sock, want: caps.EventWrite}}
	p.check(hs)
	if hs[0].ready != 0 {
		t.Fatalf("a full socket whose peer shut down sending reports %v for write, want nothing", hs[0].ready)
	}
	if failed := p.arm(hs, nil); failed[0] {
		t.Fatal("arm failed")
	}
	if epollReadable(p.ep) {
		t.Fatal("the write registration fired for the peer's shutdown of sending")
	}
	hs[0].want = caps.EventRead
	p.check(hs)
	if hs[0].ready != caps.EventRead|caps.EventHangup {
		t.Fatalf("ready %v to read, want read and hang-up (end of stream)", hs[0].ready)
	}
}
