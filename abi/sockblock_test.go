package abi

import (
	"bytes"
	"os"
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

// A blocking send sends everything, as send(2) and writev(2) on a
// blocking stream do, waiting for room as often as it takes: it returned
// after the first part the socket buffer took, a short count a program
// that sends a request whole does not expect.
func TestSockBlockingSendSendsAll(t *testing.T) {
	for _, how := range []string{"sock_send", "WASI sock_send", "fd_write"} {
		env := newFuzzEnv(t)
		p := newSbxSock(t, env, "unix")
		defer p.close()
		fd := p.blocking(t)
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, 4096); err != nil {
			t.Fatal(err)
		}
		if err := unix.SetNonblock(p.peer, false); err != nil {
			t.Fatal(err)
		}
		data := bytes.Repeat([]byte("0123456789abcdef"), 3500) // 56000 bytes
		r := p.sendWhileParked(t, how, data)
		if r.errno != 0 || r.n != len(data) {
			t.Fatalf("%s: a blocking send of %d bytes: errno %d, %d bytes sent; want all of them", how, len(data), r.errno, r.n)
		}
	}
}

// sendWhileParked sends data through how on the blocking guest's end,
// and has the peer read only once the call waits for room: a call that
// returns first returns what the buffer took.
func (p *sbxSock) sendWhileParked(t testing.TB, how string, data []byte) sockDiffResult {
	r, done, parked := p.sendUntilParked(t, how, data)
	if !parked {
		return *r
	}
	got := readAll(p.peer, len(data))
	<-done
	if !bytes.Equal(got, data) {
		t.Fatalf("%s: the peer read %d bytes, not the %d sent", how, len(got), len(data))
	}
	return *r
}

// sendUntilParked starts a send of data through how ("sock_send", "WASI
// sock_send" or "fd_write") on the guest's end and returns once the call
// waits for room (parked) or has returned: r holds its result once done
// is closed.
func (p *sbxSock) sendUntilParked(t testing.TB, how string, data []byte) (r *sockDiffResult, done chan struct{}, parked bool) {
	waits, _ := p.g.Blocked()
	done = make(chan struct{})
	r = new(sockDiffResult)
	go func() {
		defer close(done)
		if how == "fd_write" {
			*r = p.fdWrite(t, data)
		} else {
			*r = p.do(t, sockDiffOp{kind: sdSend, wasi: how == "WASI sock_send"}, data)
		}
	}()
	return r, done, awaitParked(t, p.g, waits, done)
}

// fdWrite is fd_write of data in two buffers.
func (p *sbxSock) fdWrite(t testing.TB, data []byte) sockDiffResult {
	p.m.Write(sbxData, data)
	half := uint32(len(data) / 2)
	p.put32(sbxIOV, sbxData)
	p.put32(sbxIOV+4, half)
	p.put32(sbxIOV+8, sbxData+half)
	p.put32(sbxIOV+12, uint32(len(data))-half)
	if e := p.call(t, fdWrite, uint64(p.own), sbxIOV, 2, sbxOut); e != 0 {
		return sockDiffResult{errno: e}
	}
	return sockDiffResult{n: p.get32(sbxOut)}
}

// readAll reads n bytes from the blocking descriptor fd, or what comes
// before the end of the stream or an error.
func readAll(fd, n int) []byte {
	buf := make([]byte, n)
	got := 0
	for got < n {
		k, err := unix.Read(fd, buf[got:])
		if k <= 0 || err != nil {
			break
		}
		got += k
	}
	return buf[:got]
}

// A blocking receive into no room waits for data, as recv(2) of 0 bytes
// on a blocking stream does, and takes none of it: one wait, which only
// the data ends, not a loop of receives that spins a core.
func TestSockBlockingZeroLengthRecvWaits(t *testing.T) {
	for _, network := range []string{"tcp", "unix"} {
		t.Run(network, func(t *testing.T) { testZeroLengthRecvWaits(t, network) })
	}
}

func testZeroLengthRecvWaits(t *testing.T, network string) {
	env := newFuzzEnv(t)
	p := newSbxSock(t, env, network)
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
	if n, _ := p.g.Blocked(); n != waits+1 {
		t.Fatalf("a blocking receive of 0 bytes waited %d times; want once, until the bytes came", n-waits)
	}
	if r := p.do(t, sockDiffOp{kind: sdRecv, bufs: []int{8}}, nil); r.n != 3 {
		t.Fatalf("after a receive of 0 bytes: %+v, want the 3 bytes sent", r)
	}
}

// PEEK with WAITALL returns what is queued at once, on TCP as on a unix
// stream (docs/ABI.md): Linux's unix streams do so, and Linux's TCP waits
// until the buffer can be filled, which the daemon cannot wait for
// without looking again and again.
func TestSockPeekWaitallReturnsWhatIsQueued(t *testing.T) {
	env := newFuzzEnv(t)
	for _, network := range []string{"tcp", "unix"} {
		p := newSbxSock(t, env, network)
		defer p.close()
		p.blocking(t)
		if _, err := unix.Write(p.peer, []byte("abcd")); err != nil {
			t.Fatal(err)
		}
		r := p.do(t, sockDiffOp{kind: sdRecv, bufs: []int{8}, flags: sockRecvPeek | sockRecvWaitall}, nil)
		if r.errno != 0 || r.n != 4 {
			t.Fatalf("%s: PEEK|WAITALL with 4 bytes queued: %+v, want 4", network, r)
		}
	}
}

// fd_fdstat_set_flags switches a granted socket between blocking and
// non-blocking, as fcntl(F_SETFL, O_NONBLOCK) does: with the flag a
// receive with nothing queued is EAGAIN, without it the receive waits.
func TestSockNonblockViaFdstatSetFlags(t *testing.T) {
	env := newFuzzEnv(t)
	p := newSbxSock(t, env, "tcp")
	defer p.close()
	p.blocking(t)
	if e := p.call(t, wasiFDFdstatSetFlags, uint64(p.own), uint64(caps.FlagNonblock)); e != 0 {
		t.Fatalf("setting NONBLOCK: errno %d", e)
	}
	if r := p.do(t, sockDiffOp{kind: sdRecv, bufs: []int{4}}, nil); r.errno != caps.EAGAIN {
		t.Fatalf("non-blocking receive with nothing queued: %+v, want EAGAIN", r)
	}
	if e := p.call(t, wasiFDFdstatSetFlags, uint64(p.own), 0); e != 0 {
		t.Fatalf("clearing NONBLOCK: errno %d", e)
	}
	waits, _ := p.g.Blocked()
	done := make(chan struct{})
	var r sockDiffResult
	go func() {
		defer close(done)
		r = p.do(t, sockDiffOp{kind: sdRecv, bufs: []int{4}, wasi: true}, nil)
	}()
	if !awaitParked(t, p.g, waits, done) {
		t.Fatalf("blocking receive with nothing queued returned at once: %+v", r)
	}
	if _, err := unix.Write(p.peer, []byte("ab")); err != nil {
		t.Fatal(err)
	}
	<-done
	if r.errno != 0 || r.n != 2 {
		t.Fatalf("blocking receive: %+v, want the 2 bytes sent", r)
	}
}

// Descriptors a unix peer sends with SCM_RIGHTS never stay open in the
// daemon: a granted socket carries bytes only, so a receive (of either
// ABI, or fd_read) takes the bytes and the kernel closes the descriptors
// that came with them, as a recvmsg(2) without room for them does.
func TestSockRecvKeepsNoDescriptorThePeerSends(t *testing.T) {
	env := newFuzzEnv(t)
	p := newSbxSock(t, env, "unix")
	defer p.close()
	probe, err := unix.Open(t.TempDir()+"/probe", unix.O_RDWR|unix.O_CREAT|unix.O_CLOEXEC, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(probe, &st); err != nil {
		t.Fatal(err)
	}
	ops := []sockDiffOp{{kind: sdRecv, bufs: []int{8}}, {kind: sdRecv, bufs: []int{8}, wasi: true}, {kind: sdRead, bufs: []int{8}}}
	for _, op := range ops {
		if err := unix.Sendmsg(p.peer, []byte("abc"), unix.UnixRights(probe, probe, probe), nil, 0); err != nil {
			t.Fatal(err)
		}
		if r := p.do(t, op, nil); r.errno != 0 || r.n != 3 {
			t.Fatalf("%v: %+v, want the 3 bytes sent", op, r)
		}
	}
	unix.Close(probe)
	if n := openCopies(t, st.Dev, st.Ino); n != 0 {
		t.Fatalf("the daemon holds %d descriptors of what the peer sent", n)
	}
}

// openCopies counts this process's descriptors open on the file dev/ino.
func openCopies(t testing.TB, dev, ino uint64) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range ents {
		var st unix.Stat_t
		if unix.Stat("/proc/self/fd/"+e.Name(), &st) == nil && st.Dev == dev && st.Ino == ino {
			n++
		}
	}
	return n
}

// A blocking WAITALL receive on TCP that has some bytes when the peer
// resets the connection returns them, and the next receive reports
// ECONNRESET, as Linux's MSG_WAITALL leaves the error for it.
func TestSockBlockingWaitallThenReset(t *testing.T) {
	env := newFuzzEnv(t)
	p := newSbxSock(t, env, "tcp")
	defer p.close()
	p.blocking(t)
	if r := p.do(t, sockDiffOp{kind: sdSend, size: 2}, []byte("hi")); r.errno != 0 {
		t.Fatalf("send: %+v", r)
	}
	if _, err := unix.Write(p.peer, []byte("12345")); err != nil {
		t.Fatal(err)
	}
	waits, _ := p.g.Blocked()
	done := make(chan struct{})
	var r sockDiffResult
	go func() {
		defer close(done)
		r = p.do(t, sockDiffOp{kind: sdRecv, bufs: []int{8}, flags: sockRecvWaitall}, nil)
	}()
	if !awaitParked(t, p.g, waits, done) {
		t.Fatalf("WAITALL with 5 of 8 bytes returned at once: %+v", r)
	}
	if _, p.peer = peerDo(t, p.peer, sockDiffOp{kind: sdPeerReset}, nil); p.peer != -1 {
		t.Fatal("the peer is still open")
	}
	<-done
	if r.errno != 0 || r.n != 5 {
		t.Fatalf("WAITALL when the peer reset: %+v, want the 5 bytes", r)
	}
	if r := p.do(t, sockDiffOp{kind: sdRecv, bufs: []int{8}}, nil); r.errno != caps.ECONNRESET {
		t.Fatalf("the receive after: %+v, want ECONNRESET", r)
	}
}
