package abi

import (
	"github.com/sandboxd/sandboxd/caps"
	"github.com/tetratelabs/wazero/api"
)

// WASI preview1 sock_* functions, on the same socket and channel
// resources as the native ABI. WASI cannot pass handles: capabilities that
// arrive with a message on a channel are closed on receipt (the sender's
// copies are untouched).

// wasiSockAccept is sock_accept with WASI's flags (NONBLOCK only) for the
// new handle. The connection is a child capability of the listener's (edge
// "accept") with the listener's inheriting rights, so revoking the
// listener cuts off every connection taken from it.
func wasiSockAccept(g *Guest, m api.Memory, p []uint64) Errno {
	fd, flags, fdOut := uint32(p[0]), uint32(p[1]), uint32(p[2])
	if flags&^caps.FlagNonblock != 0 {
		return caps.EINVAL
	}
	c, _, e := acquireSocket[caps.Acceptor](g, fd, caps.RightSockAccept)
	if e != 0 {
		return e
	}
	defer c.Release()
	if _, e := read(m, fdOut, 4); e != 0 {
		return e
	}
	nc, e := g.acceptConn(c)
	if e != 0 {
		return e
	}
	nc.SetFlags(flags)
	return g.install(m, nc, fdOut)
}

// wasiSockRecv is sock_recv without handles: PEEK leaves the data queued
// and WAITALL keeps waiting until the buffers are full or the stream ends.
func wasiSockRecv(g *Guest, m api.Memory, p []uint64) Errno {
	fd, riData, riDataLen, riFlags := uint32(p[0]), uint32(p[1]), uint32(p[2]), uint32(p[3])
	roDatalenOut, roFlagsOut := uint32(p[4]), uint32(p[5])
	if riFlags&^(wasiRecvPeek|wasiRecvWaitall) != 0 {
		return caps.EINVAL
	}
	c, e := g.acquire(fd, caps.RightFDRead)
	if e != 0 {
		return e
	}
	defer c.Release()
	iov, e := iovecs(m, riData, riDataLen)
	if e != 0 {
		return e
	}
	if _, e := read(m, roDatalenOut, 4); e != 0 {
		return e
	}
	if _, e := read(m, roFlagsOut, 2); e != 0 {
		return e
	}
	msg, ok := c.Resource().(caps.Messenger)
	if !ok {
		return caps.ENOTSOCK
	}
	total, got, rf, e := g.recvLoop(c, msg, iov, 0, riFlags&wasiRecvPeek != 0, riFlags&wasiRecvWaitall != 0)
	if e != 0 {
		return e
	}
	for _, x := range got { // none: WASI asks for no handles
		g.kernel.Close(x)
	}
	var ro uint16
	if rf&caps.RecvDataTruncated != 0 {
		ro |= wasiRecvDataTruncated
	}
	if e := writeU32(m, roDatalenOut, uint32(total)); e != 0 {
		return e
	}
	if !m.WriteUint16Le(roFlagsOut, ro) {
		return caps.EFAULT
	}
	return 0
}

// wasiSockSend is fd_write on a channel, and the native sock_send on a
// host socket (sendStream): si_flags has no flags defined, so any bit set
// is EINVAL.
func wasiSockSend(g *Guest, m api.Memory, p []uint64) Errno {
	fd, siData, siDataLen, siFlags, soDatalenOut := uint32(p[0]), uint32(p[1]), uint32(p[2]), uint32(p[3]), uint32(p[4])
	if siFlags != 0 {
		return caps.EINVAL
	}
	c, e := g.acquire(fd, caps.RightFDWrite)
	if e != 0 {
		return e
	}
	defer c.Release()
	if _, ok := c.Resource().(caps.Messenger); !ok {
		return caps.ENOTSOCK
	}
	iov, e := iovecs(m, siData, siDataLen)
	if e != 0 {
		return e
	}
	if e := outInBounds(m, soDatalenOut, 4); e != 0 { // before anything is sent
		return e
	}
	var n int
	if s, ok := c.Resource().(*caps.Socket); ok {
		n, e = g.sendStream(c, s, iov)
	} else {
		n, e = g.writev(c, iov)
	}
	if e != 0 {
		return e
	}
	return writeU32(m, soDatalenOut, uint32(n))
}
