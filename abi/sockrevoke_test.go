package abi

import (
	"bytes"
	"strings"
	"testing"

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
		waits, _ := p.g.Blocked()
		done := make(chan struct{})
		var r sockDiffResult
		go func() {
			defer close(done)
			if how == "fd_write" {
				r = p.fdWrite(t, data)
			} else {
				r = p.do(t, sockDiffOp{kind: sdSend, wasi: how == "WASI sock_send"}, data)
			}
		}()
		if !awaitParked(t, p.g, waits, done) {
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
