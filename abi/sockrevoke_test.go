package abi

import (
	"bytes"
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
