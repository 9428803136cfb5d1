package abi

import (
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/caps"
	"golang.org/x/sys/unix"
)

// Blocking calls on a granted socket, against what Linux does with a
// blocking socket of the same kind.

// blocking clears FDFLAG_NONBLOCK on the guest's handle and returns the
// host descriptor behind it.
func (p *sbxSock) blocking(t testing.TB) int {
	t.Helper()
	c, err := p.g.table.Get(p.own)
	if err != nil {
		t.Fatal(err)
	}
	c.SetFlags(0)
	fd, ok := c.Resource().(*caps.Socket).PollFD()
	if !ok {
		t.Fatal("the socket has no descriptor")
	}
	return fd
}

// awaitParked waits until the guest is waiting in a host call it entered
// after its first `after` waits, or until done is closed (the call
// returned without waiting), and reports which.
func awaitParked(t testing.TB, g *Guest, after int64, done <-chan struct{}) bool {
	t.Helper()
	guard := time.After(HangGuard)
	for {
		if n, waiting := g.Blocked(); waiting && n > after {
			return true
		}
		select {
		case <-done:
			return false
		case <-guard:
			t.Fatalf("the call neither returned nor waited within %v", HangGuard)
		case <-time.After(time.Millisecond):
		}
	}
}

// A blocking receive into no room waits for data, as recv(2) of 0 bytes
// on a blocking stream does, and takes none of it.
func TestSockBlockingZeroLengthRecvWaits(t *testing.T) {
	env := newFuzzEnv(t)
	p := newSbxSock(t, env, "tcp")
	defer p.close()
	p.blocking(t)
	waits, _ := p.g.Blocked()
	done := make(chan struct{})
	var r sockDiffResult
	go func() {
		defer close(done)
		r = p.do(t, sockDiffOp{kind: sdRecv, bufs: []int{0}}, nil)
	}()
	if !awaitParked(t, p.g, waits, done) {
		t.Fatalf("a blocking receive of 0 bytes with nothing to read returned at once: %+v", r)
	}
	if _, err := unix.Write(p.peer, []byte("abc")); err != nil {
		t.Fatal(err)
	}
	<-done
	if r.errno != 0 || r.n != 0 {
		t.Fatalf("a blocking receive of 0 bytes: %+v, want 0 bytes", r)
	}
	if r := p.do(t, sockDiffOp{kind: sdRecv, bufs: []int{8}}, nil); r.n != 3 {
		t.Fatalf("after a receive of 0 bytes: %+v, want the 3 bytes sent", r)
	}
}
