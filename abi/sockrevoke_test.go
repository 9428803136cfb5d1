package abi

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/caps"
	"github.com/tetratelabs/wazero/sys"
	"golang.org/x/sys/unix"
)

// A blocking send that has sent part of its bytes when its handle is
// revoked returns the count that went out, as send(2) interrupted after
// some bytes does: the bytes the peer reads are the bytes the guest is
// told it sent. It returned ENOTCAPABLE, so the guest could not know that
// the first part had gone.
func TestSockBlockingSendRevokedMidwayReturnsWhatWentOut(t *testing.T) {
	for _, how := range []string{"sock_send", "WASI sock_send", "fd_write"} {
		env := newFuzzEnv(t)
		p := newSbxSock(t, env, "unix")
		fd := p.blocking(t)
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, 4096); err != nil {
			t.Fatal(err)
		}
		c, err := p.g.table.Get(p.own)
		if err != nil {
			t.Fatal(err)
		}
		data := bytes.Repeat([]byte("0123456789abcdef"), 3500) // 56000 bytes
		r, done, parked := p.sendUntilParked(t, how, data)
		if !parked {
			t.Fatalf("%s: the send of %d bytes returned without waiting for room", how, len(data))
		}
		p.g.table.Kernel().Revoke(c, "test")
		<-done
		if err := unix.SetNonblock(p.peer, true); err != nil {
			t.Fatal(err)
		}
		got := readAll(p.peer, len(data))
		if r.errno != 0 || r.n != len(got) || r.n == 0 {
			t.Fatalf("%s: revoked while waiting for room: errno %d, %d bytes said sent; the peer read %d", how, r.errno, r.n, len(got))
		}
		p.close()
	}
}

// A blocking WAITALL receive that has taken part of its bytes when its
// handle is revoked returns them, as recv(2) with MSG_WAITALL interrupted
// after some bytes does: they are gone from the socket, and the guest
// would otherwise never learn what they were. It returned ENOTCAPABLE.
func TestSockWaitallRevokedMidwayReturnsWhatCameIn(t *testing.T) {
	for _, network := range []string{"unix", "tcp"} {
		for _, wasi := range []bool{false, true} {
			env := newFuzzEnv(t)
			p := newSbxSock(t, env, network)
			p.blocking(t)
			r := p.waitallRevoked(t, wasi, []byte("abc"))
			if r.errno != 0 || r.n != 3 || !strings.HasPrefix(r.bufs, "616263") {
				t.Errorf("%s, WASI %v: a WAITALL receive of 16 bytes revoked after 3 came: errno %d, %d bytes (%s); want the 3",
					network, wasi, r.errno, r.n, r.bufs)
			}
			p.close()
		}
	}
}

// waitallRevoked has the peer send data, receives it with WAITALL into a
// larger buffer, and revokes the guest's handle once the receive waits
// for the rest.
func (p *sbxSock) waitallRevoked(t testing.TB, wasi bool, data []byte) sockDiffResult {
	c, err := p.g.table.Get(p.own)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := unix.Write(p.peer, data); err != nil {
		t.Fatal(err)
	}
	waits, _ := p.g.Blocked()
	done := make(chan struct{})
	var r sockDiffResult
	go func() {
		defer close(done)
		r = p.do(t, sockDiffOp{kind: sdRecv, bufs: []int{16}, flags: sockRecvWaitall, wasi: wasi}, nil)
	}()
	if !awaitParked(t, p.g, waits, done) {
		t.Fatalf("the WAITALL receive returned without waiting: %+v", r)
	}
	p.g.table.Kernel().Revoke(c, "test")
	<-done
	return r
}

// A blocking send to a peer that never reads, parked after part of its
// bytes went, ends when the guest is killed (sandboxd kill), times out
// (--timeout) or the daemon shuts down (the context the guest was started
// with ends): the guest unwinds with 137 from inside the call, through
// each ABI's send and fd_write.
func TestSockBlockingSendToAPeerThatNeverReadsEnds(t *testing.T) {
	ends := map[string]func(p *sbxSock, shutdown context.CancelFunc){
		"kill":     func(p *sbxSock, _ context.CancelFunc) { p.g.Kill("killed by test") },
		"timeout":  func(p *sbxSock, _ context.CancelFunc) { p.g.cancel(context.DeadlineExceeded) },
		"shutdown": func(_ *sbxSock, shutdown context.CancelFunc) { shutdown() },
	}
	for name, end := range ends {
		for _, how := range []string{"sock_send", "WASI sock_send", "fd_write"} {
			env := newFuzzEnv(t)
			p := newSbxSock(t, env, "unix")
			daemon, shutdown := context.WithCancel(context.Background())
			p.g.ctx, p.g.cancel = context.WithCancelCause(daemon)
			if code, ok := p.sendUntilEnded(t, how, func() { end(p, shutdown) }); !ok || code != 137 {
				t.Errorf("%s during a blocking %s: unwound %v, exit code %d; want an unwinding with 137", name, how, ok, code)
			}
			shutdown()
			p.close()
		}
	}
}

// sendUntilEnded sends 56000 bytes through how on the blocking guest's
// end, whose peer reads nothing, calls end once the send waits for room,
// and reports whether the call unwound the guest and with which code.
func (p *sbxSock) sendUntilEnded(t testing.TB, how string, end func()) (code uint32, unwound bool) {
	fd := p.blocking(t)
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, 4096); err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("0123456789abcdef"), 3500)
	waits, _ := p.g.Blocked()
	done := make(chan struct{})
	p.m.Write(sbxData, data)
	p.put32(sbxIOV, sbxData)
	p.put32(sbxIOV+4, uint32(len(data)))
	var in [sendInSize]byte
	binary.LittleEndian.PutUint32(in[0:], sbxIOV)
	binary.LittleEndian.PutUint32(in[4:], 1)
	p.m.Write(sbxIn, in[:])
	calls := map[string]func(){
		"sock_send":      func() { sockSend(p.g, p.m, []uint64{uint64(p.own), sbxIn, sbxOut}) },
		"WASI sock_send": func() { wasiSockSend(p.g, p.m, []uint64{uint64(p.own), sbxIOV, 1, 0, sbxOut}) },
		"fd_write":       func() { fdWrite(p.g, p.m, []uint64{uint64(p.own), sbxIOV, 1, sbxOut}) },
	}
	go func() {
		defer close(done)
		defer func() {
			var ee *sys.ExitError
			if err, ok := recover().(error); ok && errors.As(err, &ee) {
				code, unwound = ee.ExitCode(), true
			}
		}()
		calls[how]()
	}()
	if !awaitParked(t, p.g, waits, done) {
		t.Fatalf("%s: the send of %d bytes returned without waiting for room", how, len(data))
	}
	end()
	select {
	case <-done:
	case <-time.After(HangGuard):
		t.Fatalf("%s: still sending %v after the guest's end", how, HangGuard)
	}
	return code, unwound
}

// A blocking send waiting for room when the peer resets the connection
// (TCP) or closes it with bytes unread (unix, which Linux reports as
// ECONNRESET) returns the count sent, and the calls after it answer as on
// Linux: TCP's send leaves the error for the next call (ECONNRESET, then
// end of stream), a unix stream's wait takes it (EPIPE, end of stream).
// The send woken by the reset took TCP's ECONNRESET and dropped it (EPIPE
// next), and left a unix stream's for a read.
func TestSockBlockingSendResetWhileWaiting(t *testing.T) {
	want := map[string][2]caps.Errno{"tcp": {caps.ECONNRESET, 0}, "unix": {caps.EPIPE, 0}}
	for network, w := range want {
		env := newFuzzEnv(t)
		p := newSbxSock(t, env, network)
		first, next, read := p.sendThenReset(t)
		if first.errno != 0 || first.n == 0 || next.errno != w[0] || read.errno != w[1] || read.n != 0 {
			t.Errorf("%s: a blocking send reset while waiting: %d bytes, errno %d; the next send: errno %d; a read: %d bytes, errno %d; want some bytes, then errno %d, then %d bytes, errno %d",
				network, first.n, first.errno, next.errno, read.n, read.errno, w[0], 0, w[1])
		}
		p.close()
	}
}

// sendThenReset sends 8 MiB on the blocking guest's end, has the peer,
// which read nothing, reset the connection once the send waits for room,
// and returns the send's result, the next send's and a read's after it.
func (p *sbxSock) sendThenReset(t testing.TB) (first, next, read sockDiffResult) {
	fd := p.blocking(t)
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, 4096); err != nil {
		t.Fatal(err)
	}
	if _, ok := p.m.Grow(160); !ok {
		t.Fatal("cannot grow the guest's memory")
	}
	data := bytes.Repeat([]byte("0123456789abcdef"), 1<<19)
	waits, _ := p.g.Blocked()
	done := make(chan struct{})
	go func() {
		defer close(done)
		first = p.do(t, sockDiffOp{kind: sdSend}, data)
	}()
	if !awaitParked(t, p.g, waits, done) {
		t.Fatalf("the send of %d bytes returned without waiting for room: %+v", len(data), first)
	}
	_, p.peer = peerDo(t, p.peer, sockDiffOp{kind: sdPeerReset}, nil)
	<-done
	next = p.do(t, sockDiffOp{kind: sdSend}, data[:10])
	c, err := p.g.table.Get(p.own)
	if err != nil {
		t.Fatal(err)
	}
	c.SetFlags(caps.FlagNonblock)
	read = p.do(t, sockDiffOp{kind: sdRead, bufs: []int{10}}, nil)
	return first, next, read
}
