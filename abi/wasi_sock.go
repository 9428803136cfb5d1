package abi

import (
	"github.com/sandboxd/sandboxd/caps"
	"github.com/tetratelabs/wazero/api"
)

// WASI preview1 sock_* functions, on the same socket and channel
// resources as the native ABI. WASI cannot pass handles: capabilities that
// arrive with a message on a channel are closed on receipt (the sender's
// copies are untouched).

// wasiSockAccept takes the next connection from a listener handle. The
// connection is a child capability of the listener's (edge "accept") with
// the listener's inheriting rights, so revoking the listener cuts off
// every connection taken from it.
func wasiSockAccept(g *Guest, m api.Memory, p []uint64) Errno {
	fd, flags, out := uint32(p[0]), uint32(p[1]), uint32(p[2])
	if flags&^caps.FlagNonblock != 0 {
		return caps.EINVAL
	}
	c, err := g.table.Acquire(fd, caps.RightSockAccept, 0)
	if err != nil {
		return caps.ErrnoOf(err)
	}
	defer c.Release()
	if _, e := read(m, out, 4); e != 0 {
		return e
	}
	a, ok := c.Resource().(caps.Acceptor)
	if !ok {
		return caps.ENOTSOCK
	}
	var res caps.Resource
	for {
		res, err = a.Accept()
		if err != caps.EAGAIN || c.Flags()&caps.FlagNonblock != 0 {
			break
		}
		pl, ok := c.Resource().(caps.Pollable)
		if !ok {
			break
		}
		if e := g.waitReady(c, pl, caps.EventRead); e != 0 {
			return e
		}
	}
	if err != nil {
		return caps.ErrnoOf(err)
	}
	_, inh := c.Rights()
	nc, err := g.kernel.Derive(c, caps.Derivation{Holder: g.holder, Edge: caps.EdgeAccept, Base: inh, Inheriting: inh, Resource: res})
	if err != nil {
		return caps.ErrnoOf(err)
	}
	nc.SetFlags(flags)
	nfd, err := g.table.Insert(nc)
	if err != nil {
		g.kernel.Close(nc)
		return caps.ErrnoOf(err)
	}
	if e := writeU32(m, out, nfd); e != 0 {
		_ = g.table.Remove(nfd)
		return e
	}
	return 0
}

// wasiSockRecv receives into ri_data. Without flags it is fd_read on the
// socket; PEEK leaves the data queued and WAITALL keeps waiting until the
// buffers are full or the stream ends.
func wasiSockRecv(g *Guest, m api.Memory, p []uint64) Errno {
	fd, flags := uint32(p[0]), uint32(p[3])
	if flags&^(wasiRecvPeek|wasiRecvWaitall) != 0 {
		return caps.EINVAL
	}
	c, err := g.table.Acquire(fd, caps.RightFDRead, 0)
	if err != nil {
		return caps.ErrnoOf(err)
	}
	defer c.Release()
	iov, e := iovecs(m, uint32(p[1]), uint32(p[2]))
	if e != 0 {
		return e
	}
	if _, e := read(m, uint32(p[4]), 4); e != 0 {
		return e
	}
	if _, e := read(m, uint32(p[5]), 2); e != 0 {
		return e
	}
	msg, ok := c.Resource().(caps.Messenger)
	if !ok {
		return caps.ENOTSOCK
	}
	pl, _ := c.Resource().(caps.Pollable)
	peek := flags&wasiRecvPeek != 0
	total := 0
	var ro uint32
	waitall := flags&wasiRecvWaitall != 0
	for {
		n, cs, rf, err := msg.Recv(iov, 0, peek)
		for _, x := range cs {
			g.kernel.Close(x)
		}
		if rf&caps.RecvDataTruncated != 0 {
			ro |= wasiRecvDataTruncated
		}
		if err == caps.EAGAIN {
			if total > 0 && !waitall {
				break
			}
			if c.Flags()&caps.FlagNonblock != 0 || pl == nil {
				if total > 0 {
					break
				}
				return caps.EAGAIN
			}
			if e := g.waitReady(c, pl, caps.EventRead); e != 0 {
				return e
			}
			continue
		}
		if err != nil {
			if total > 0 {
				break
			}
			return caps.ErrnoOf(err)
		}
		total += n
		if n == 0 || peek || !waitall {
			break
		}
		if iov = advanceIOV(iov, n); len(iov) == 0 {
			break
		}
	}
	if e := writeU32(m, uint32(p[4]), uint32(total)); e != 0 {
		return e
	}
	if !m.WriteUint16Le(uint32(p[5]), uint16(ro)) {
		return caps.EFAULT
	}
	return 0
}

// advanceIOV drops the first n bytes of iov.
func advanceIOV(iov [][]byte, n int) [][]byte {
	for len(iov) > 0 && n >= len(iov[0]) {
		n -= len(iov[0])
		iov = iov[1:]
	}
	if len(iov) > 0 {
		iov[0] = iov[0][n:]
	}
	return iov
}

// wasiSockSend is fd_write on a socket or channel: si_flags has no flags
// defined, so any bit set is EINVAL.
func wasiSockSend(g *Guest, m api.Memory, p []uint64) Errno {
	if uint32(p[3]) != 0 {
		return caps.EINVAL
	}
	c, err := g.table.Acquire(uint32(p[0]), caps.RightFDWrite, 0)
	if err != nil {
		return caps.ErrnoOf(err)
	}
	defer c.Release()
	if _, ok := c.Resource().(caps.Messenger); !ok {
		return caps.ENOTSOCK
	}
	iov, e := iovecs(m, uint32(p[1]), uint32(p[2]))
	if e != 0 {
		return e
	}
	n, e := g.writev(c, iov)
	if e != 0 {
		return e
	}
	return writeU32(m, uint32(p[4]), uint32(n))
}

func wasiSockShutdown(g *Guest, m api.Memory, p []uint64) Errno {
	how := uint32(p[1])
	if how == 0 || how&^(wasiShutRD|wasiShutWR) != 0 {
		return caps.EINVAL
	}
	c, err := g.table.Acquire(uint32(p[0]), caps.RightSockShutdown, 0)
	if err != nil {
		return caps.ErrnoOf(err)
	}
	defer c.Release()
	s, ok := c.Resource().(caps.Shutdowner)
	if !ok {
		return caps.ENOTSOCK
	}
	return caps.ErrnoOf(s.Shutdown(how&wasiShutRD != 0, how&wasiShutWR != 0))
}
