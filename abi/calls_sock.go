package abi

import (
	"encoding/binary"
	"math"

	"github.com/sandboxd/sandboxd/caps"
	"github.com/tetratelabs/wazero/api"
)

// wasm32 layouts and flags of sock_recv and sock_send (CloudABI
// cloudabi32_types.h, cloudabi.txt).
const (
	recvInSize  = 20 // ri_data@0, ri_data_len@4, ri_fds@8, ri_fds_len@12, ri_flags u16@16
	recvOutSize = 52 // ro_datalen@0, ro_fdslen@4, ro_unused[40]@8, ro_flags u16@48
	sendInSize  = 20 // si_data@0, si_data_len@4, si_fds@8, si_fds_len@12, si_flags u16@16
	sendOutSize = 4  // so_datalen@0

	sockRecvPeek          = 0x04
	sockRecvWaitall       = 0x10
	sockRecvFDsTruncated  = 0x01
	sockRecvDataTruncated = 0x08

	shutRD = 0x1
	shutWR = 0x2
)

// sockSend sends data and handles on a channel or socket. Each attached
// handle travels as a new capability derived from the sender's (edge
// delegate) with the sender's current rights, never more, and no holder
// until the receiver adopts it; revoking the sender's capability reaches
// the receiver's copy. A handle that is not open is EBADF and a revoked one
// ENOTCAPABLE; either way nothing is sent. Unless the handle is
// non-blocking, a full buffer makes the call wait (and a revocation of
// sock during the wait ends it with ENOTCAPABLE). The handles count as in
// flight against the guest's tree's caps.InFlightLimit (the daemon's: its
// user's) until received or dropped; a send past it is ENOBUFS.
// Capabilities that were not sent are closed, whatever ends the call.
func sockSend(g *Guest, m api.Memory, p []uint64) Errno {
	sock, sendIn, sendOut := uint32(p[0]), uint32(p[1]), uint32(p[2])
	c, e := g.acquire(sock, caps.RightFDWrite)
	if e != 0 {
		return e
	}
	defer c.Release()
	in, e := read(m, sendIn, sendInSize)
	if e != 0 {
		return e
	}
	dataPtr, dataLen := binary.LittleEndian.Uint32(in[0:]), binary.LittleEndian.Uint32(in[4:])
	fdsPtr, fdsLen := binary.LittleEndian.Uint32(in[8:]), binary.LittleEndian.Uint32(in[12:])
	flags := binary.LittleEndian.Uint16(in[16:])
	if _, e := read(m, sendOut, sendOutSize); e != 0 {
		return e
	}
	if flags != 0 {
		return caps.EINVAL // CloudABI defines no send flags
	}
	msg, ok := c.Resource().(caps.Messenger)
	if !ok {
		return caps.ENOTSOCK
	}
	iov, e := iovecs(m, dataPtr, dataLen)
	if e != 0 {
		return e
	}
	fds, e := readU32Array(m, fdsPtr, fdsLen, caps.MaxCapsPerMessage)
	if e != 0 {
		return e
	}
	if len(fds) > 0 && !msg.CarriesCaps() {
		// A host socket carries bytes only: no copy is made (nor put
		// to the delegation policy, nor charged) to travel where none
		// can go.
		return caps.ENOTSUP
	}
	var n int
	if s, ok := msg.(*caps.Socket); ok {
		n, e = g.sendStream(c, s, iov)
	} else {
		n, e = g.sendMessage(sock, c, msg, iov, fds)
	}
	if e != 0 {
		return e
	}
	return writeU32(m, sendOut, uint32(n))
}

// sendMessage sends iov and copies of the handles fds on the channel end
// behind c (fd sock), waiting for room unless c is non-blocking.
func (g *Guest) sendMessage(sock uint32, c *caps.Cap, msg caps.Messenger, iov [][]byte, fds []uint32) (int, Errno) {
	if e := g.awaitRoom(c, msg, iov, len(fds)); e != 0 {
		return 0, e
	}
	inflight, e := g.deriveToSend(sock, c, fds)
	if e != 0 {
		return 0, e
	}
	sent := false
	defer func() {
		if !sent {
			for _, x := range inflight {
				g.kernel.Close(x)
			}
		}
	}()

	pl, _ := c.Resource().(caps.Pollable)
	for {
		n, err := msg.Send(iov, inflight)
		if err == caps.EAGAIN && pl != nil && c.Flags()&caps.FlagNonblock == 0 {
			if e := g.waitReady(c, pl, caps.EventWrite); e != 0 {
				return 0, e
			}
			continue
		}
		if err != nil {
			return 0, caps.ErrnoOf(err)
		}
		sent = true
		return n, 0
	}
}

// sendStream sends iov on the host socket s behind c: both ABIs'
// sock_send on a host socket. A blocking handle sends all of iov, waiting
// for room as often as it takes, as send(2) on a blocking stream does; an
// error after some bytes went returns their count, and the error is the
// next send's. A send woken from its wait meets an error the connection
// has as Linux's does (caps.Socket.SendWoken). A send of 0 bytes asks the
// host all the same (EPIPE once writing was shut down). A non-blocking
// handle sends what the buffer takes, or EAGAIN.
func (g *Guest) sendStream(c *caps.Cap, s *caps.Socket, iov [][]byte) (int, Errno) {
	iov = limitIOV(iov)
	left := iovLen(iov)
	total := 0
	for woken := false; ; woken = true {
		var n int
		var err error
		if woken {
			n, err = s.SendWoken(iov, total > 0)
		} else {
			n, err = s.Send(iov, nil)
		}
		total += n
		left -= n
		blocking := c.Flags()&caps.FlagNonblock == 0
		switch {
		case err == nil && (left == 0 || !blocking):
			return total, 0
		case err == nil:
			iov = caps.SkipBytes(iov, n)
			if e := g.waitReady(c, s, caps.EventWrite); e != 0 {
				return partial(total, e)
			}
		case err == caps.EAGAIN && blocking:
			if e := g.waitReady(c, s, caps.EventWrite); e != 0 {
				return partial(total, e)
			}
		default:
			return partial(total, caps.ErrnoOf(err))
		}
	}
}

// partial is what a send that sent total bytes and then failed with e
// returns: the count if it sent any, else the error.
func partial(total int, e Errno) (int, Errno) {
	if total > 0 {
		return total, 0
	}
	return 0, e
}

// awaitRoom returns once a send of iov with ncaps handles on c could go
// (waiting for room unless c is non-blocking), or the error it would fail
// with: the copies of the handles are made only then. A send may still
// find the room taken by another sender of the same end, and then closes
// its copies.
func (g *Guest) awaitRoom(c *caps.Cap, msg caps.Messenger, iov [][]byte, ncaps int) Errno {
	if ncaps == 0 {
		return 0 // most sends: no assertion, no sum
	}
	ch, ok := msg.(*caps.Channel) // the one messenger that carries handles
	if !ok {
		return 0
	}
	pl, _ := c.Resource().(caps.Pollable)
	for {
		err := ch.CanSend(iov, ncaps)
		if err != caps.EAGAIN || pl == nil || c.Flags()&caps.FlagNonblock != 0 {
			return caps.ErrnoOf(err)
		}
		if e := g.waitReady(c, pl, caps.EventWrite); e != 0 {
			return e
		}
	}
}

// deriveToSend makes the copies of the handles fds that a send on c (fd sock)
// carries, each charged as in flight against the guest's tree's limit.
// Every handle is looked up and the limit's room reserved before any copy
// is made, so that a send refused for either reason makes none. On an
// error, the copies already made are closed.
func (g *Guest) deriveToSend(sock uint32, c *caps.Cap, fds []uint32) ([]*caps.Cap, Errno) {
	if len(fds) == 0 {
		return nil, 0
	}
	srcs := make([]*caps.Cap, len(fds))
	for i, fd := range fds {
		src, err := g.table.Get(fd)
		if err != nil {
			return nil, caps.ErrnoOf(err)
		}
		srcs[i] = src
	}
	lim := g.tree.inflight
	if err := lim.Reserve(len(srcs)); err != nil {
		g.inFlightRefused(sock, len(srcs))
		return nil, caps.ErrnoOf(err)
	}
	// The copy's provenance names the channel it crossed.
	via := "sent on " + string(c.ID()) + " (" + c.Name() + ")"
	out := make([]*caps.Cap, 0, len(srcs))
	for _, src := range srcs {
		b, i := src.Rights()
		x, err := g.kernel.Derive(src, caps.Derivation{Edge: caps.EdgeDelegate, Name: src.Name(), Base: b, Inheriting: i, Origin: via})
		if err != nil {
			lim.Unreserve(len(srcs) - len(out))
			for _, x := range out {
				g.kernel.Close(x) // gives back its charge
			}
			return nil, caps.ErrnoOf(err)
		}
		lim.Charge(x)
		out = append(out, x)
	}
	return out, 0
}

// sockRecv receives data, and handles sent with it, from a channel or
// socket. Handles arrive with the first byte of the message they were sent
// with, and a read that returns them returns that message's bytes and no
// others (caps.Channel.Recv, recvLoop); each is adopted by this guest and
// installed at the lowest free fd.
// When more arrive than ri_fds has room for, or than the table can take,
// the rest are closed and FDS_TRUNCATED is set. A datagram longer than
// ri_data is cut (DATA_TRUNCATED). PEEK leaves data and handles queued.
// WAITALL on a stream keeps receiving until ri_data is full or the stream
// ends, or a message with handles ends the read. Unless the handle is non-blocking, the call waits for data; a
// revocation of sock during the wait ends it with ENOTCAPABLE, or with the
// bytes a WAITALL took before it.
func sockRecv(g *Guest, m api.Memory, p []uint64) Errno {
	sock, recvIn, recvOut := uint32(p[0]), uint32(p[1]), uint32(p[2])
	c, e := g.acquire(sock, caps.RightFDRead)
	if e != 0 {
		return e
	}
	defer c.Release()
	in, e := read(m, recvIn, recvInSize)
	if e != 0 {
		return e
	}
	dataPtr, dataLen := binary.LittleEndian.Uint32(in[0:]), binary.LittleEndian.Uint32(in[4:])
	fdsPtr, fdsLen := binary.LittleEndian.Uint32(in[8:]), binary.LittleEndian.Uint32(in[12:])
	flags := binary.LittleEndian.Uint16(in[16:])
	if _, e := read(m, recvOut, recvOutSize); e != 0 {
		return e
	}
	if flags&^(sockRecvPeek|sockRecvWaitall) != 0 {
		return caps.EINVAL
	}
	res := c.Resource()
	msg, ok := res.(caps.Messenger)
	if !ok {
		return caps.ENOTSOCK
	}
	iov, e := iovecs(m, dataPtr, dataLen)
	if e != 0 {
		return e
	}
	// The whole range is checked, as every range is; more than
	// MaxCapsPerMessage never arrive with one message, so room beyond
	// that is never written.
	if fdsLen > math.MaxUint32/4 {
		return caps.EFAULT // past any memory
	}
	fdBuf, e := read(m, fdsPtr, fdsLen*4)
	if e != 0 {
		return e
	}
	maxFDs := min(fdsLen, caps.MaxCapsPerMessage)
	fdBuf = fdBuf[:maxFDs*4]

	total, got, rf, e := g.recvLoop(c, msg, iov, int(maxFDs), flags&sockRecvPeek != 0, flags&sockRecvWaitall != 0)
	if e != 0 {
		return e
	}
	installed, truncated := g.installReceived(got, fdBuf)
	var roFlags uint16
	if rf&caps.RecvDataTruncated != 0 {
		roFlags |= sockRecvDataTruncated
	}
	if rf&caps.RecvCapsTruncated != 0 || truncated {
		roFlags |= sockRecvFDsTruncated
	}

	var ro [recvOutSize]byte
	binary.LittleEndian.PutUint32(ro[0:], uint32(total))
	binary.LittleEndian.PutUint32(ro[4:], uint32(installed))
	binary.LittleEndian.PutUint16(ro[48:], roFlags)
	if !m.Write(recvOut, ro[:]) {
		return caps.EFAULT
	}
	return 0
}

// installReceived adopts the handles that arrived with a message and
// installs each at the lowest free fd, writing the fds to fdBuf in order.
// It takes got over: when the table is full the rest are closed, and
// truncated says so; so it does when the kernel's gate refused to let
// this guest adopt one (Kernel.Adopt closed it).
func (g *Guest) installReceived(got []*caps.Cap, fdBuf []byte) (installed int, truncated bool) {
	for i, x := range got {
		if err := g.kernel.Adopt(x, g.holder); err != nil {
			truncated = true
			continue
		}
		fd, err := g.table.Insert(x)
		if err != nil {
			for _, rest := range got[i:] {
				g.kernel.Close(rest)
			}
			return installed, true
		}
		binary.LittleEndian.PutUint32(fdBuf[installed*4:], fd)
		installed++
	}
	return installed, truncated
}

// recvLoop receives into iov, and at most maxCaps handles, from c's
// messenger: the receiving loop of both ABIs' sock_recv. Unless c is
// non-blocking it waits for data (a revocation of c during the wait ends
// it with ENOTCAPABLE, or with the bytes a WAITALL took before it, as
// recv(2) interrupted after some bytes returns them); WAITALL (ignored with PEEK and on datagram
// channels) keeps receiving until iov is full or the stream ends, or
// until handles come: a read returns the handles of one message and its
// bytes only (caps.Channel.Recv), so once it has bytes it stops before a
// message that carries handles (recvMore), and it stops after one whose
// handles it took. A stream message of handles alone whose handles were
// all closed for want of room does not end the read (droppedAlone). At
// most maxIOTotal bytes are received, so that the
// count fits the u32 result however many buffers alias the same memory.
// On error it closes any handles already received.
func (g *Guest) recvLoop(c *caps.Cap, msg caps.Messenger, iov [][]byte, maxCaps int, peek, waitall bool) (int, []*caps.Cap, caps.RecvFlags, Errno) {
	iov = limitIOV(iov)
	res := c.Resource()
	// What only a stream read that consumes does: WAITALL, and reading on
	// past handles closed for want of room (droppedAlone).
	skipAlone := isStream(res) && !peek
	waitall = waitall && skipAlone
	pl, _ := res.(caps.Pollable)
	var got []*caps.Cap
	done := false
	defer func() { // also when a kill unwinds the guest from waitReady
		if !done {
			for _, x := range got {
				g.kernel.Close(x)
			}
		}
	}()
	total := 0
	var rf caps.RecvFlags
	for {
		n, cs, f, err := recvMore(msg, iov, maxCaps-len(got), peek, total > 0)
		got = append(got, cs...)
		rf |= f
		if err == caps.EAGAIN {
			stop, e := g.recvWait(c, pl, total, waitall)
			if e != 0 {
				return 0, nil, 0, e
			}
			if stop {
				break
			}
			continue
		}
		if err != nil {
			if total > 0 || len(got) > 0 {
				break
			}
			return 0, nil, 0, caps.ErrnoOf(err)
		}
		if skipAlone && droppedAlone(n, cs, f) {
			continue
		}
		total += n
		if readEnded(n, cs, f, waitall) {
			break
		}
		if iov = caps.SkipBytes(iov, n); len(iov) == 0 {
			break
		}
	}
	done = true
	return total, got, rf, 0
}

// recvWait is recvLoop's answer to a receive that found nothing after
// total bytes: stop and return them, or wait for data and receive again
// (go on), or fail. Without WAITALL a read that has bytes stops; a
// non-blocking one with none fails with EAGAIN; otherwise it waits, and a
// wait that ends without data (a revocation) fails, unless a WAITALL has
// taken bytes, which are the guest's: it stops and returns them, as
// recv(2) interrupted after some bytes does.
func (g *Guest) recvWait(c *caps.Cap, pl caps.Pollable, total int, waitall bool) (stop bool, e Errno) {
	if total > 0 && !waitall {
		return true, 0
	}
	e = caps.EAGAIN
	if pl != nil && c.Flags()&caps.FlagNonblock == 0 {
		e = g.waitReady(c, pl, caps.EventRead)
	}
	if e != 0 && total > 0 {
		return true, 0
	}
	return false, e
}

// readEnded reports whether a receive of n bytes, with the handles cs and
// flags f, ends recvLoop's read: at the end of the stream, without
// WAITALL, or when a message's handles came (taken, or closed for want of
// room), since that message ends the read.
func readEnded(n int, cs []*caps.Cap, f caps.RecvFlags, waitall bool) bool {
	return n == 0 || !waitall || len(cs) > 0 || f&caps.RecvCapsTruncated != 0
}

// isStream reports whether res keeps no message boundaries: anything but
// a datagram channel.
func isStream(res caps.Resource) bool {
	d, ok := res.(interface{ Datagram() bool })
	return !ok || !d.Datagram()
}

// droppedAlone reports whether a receive of n bytes, with the handles cs
// and flags f, took a stream message of handles and no bytes and closed
// them all for want of room (fd_read, WASI's sock_recv, or an ri_fds
// with no room): recvLoop's read goes on, as if the message had not been
// there, rather than return 0 bytes, which reads as the end of the
// stream. (Linux drops descriptors sent with no bytes on a stream at the
// send.) The flags keep FDS_TRUNCATED for the bytes that follow.
func droppedAlone(n int, cs []*caps.Cap, f caps.RecvFlags) bool {
	return n == 0 && len(cs) == 0 && f&caps.RecvCapsTruncated != 0
}

// recvMore is one receive of recvLoop. A read that has bytes already
// (more) goes on with caps.Channel.RecvMore, which takes no handles and
// stops before a message that carries some, so that handles always come
// with the first byte of a read, or caps.Socket.RecvMore, which leaves a
// TCP connection's error for the next receive, as MSG_WAITALL does.
// Other messengers carry no handles.
func recvMore(msg caps.Messenger, iov [][]byte, maxCaps int, peek, more bool) (int, []*caps.Cap, caps.RecvFlags, error) {
	if m, ok := msg.(interface {
		RecvMore([][]byte) (int, error)
	}); ok && more {
		n, err := m.RecvMore(iov)
		return n, nil, 0, err
	}
	return msg.Recv(iov, maxCaps, peek)
}

// sockShutdown shuts down the receiving side (SHUT_RD), the sending side
// (SHUT_WR) or both of a channel end or socket.
func sockShutdown(g *Guest, m api.Memory, p []uint64) Errno {
	sock, how := uint32(p[0]), uint32(p[1])
	if how == 0 || how&^(shutRD|shutWR) != 0 {
		return caps.EINVAL
	}
	c, s, e := acquireSocket[caps.Shutdowner](g, sock, caps.RightSockShutdown)
	if e != 0 {
		return e
	}
	defer c.Release()
	return caps.ErrnoOf(s.Shutdown(how&shutRD != 0, how&shutWR != 0))
}

// acquireSocket acquires fd for a socket call that needs right on a
// resource of kind T. The kind is checked before the rights, as
// shutdown(2) and accept(2) do (programs test for it): a handle that is
// not a socket is ENOTSOCK whatever rights it holds, and a socket of
// another kind (accept on a connected stream) is EINVAL. On success the
// caller must Release the capability.
func acquireSocket[T any](g *Guest, fd uint32, right caps.Rights) (*caps.Cap, T, Errno) {
	var none T
	c, e := g.acquire(fd, 0)
	if e != 0 {
		return nil, none, e
	}
	r, ok := c.Resource().(T)
	if !ok {
		c.Release()
		if t := fileTypeOf(c); t == caps.TypeSocketStream || t == caps.TypeSocketDgram {
			return nil, none, caps.EINVAL
		}
		return nil, none, caps.ENOTSOCK
	}
	if err := c.Check(right, 0); err != nil {
		c.Release()
		return nil, none, caps.ErrnoOf(err)
	}
	return c, r, 0
}

// sockAccept takes the next connection from a listener handle. The new
// stream handle is a child capability of the listener's (edge accept)
// whose rights are the listener's inheriting rights, clipped to what a
// stream can hold; revoking the listener's capability cuts off every
// connection taken through it. Unless the listener handle is non-blocking
// the call waits for a connection.
func sockAccept(g *Guest, m api.Memory, p []uint64) Errno {
	fd, fdOut := uint32(p[0]), uint32(p[1])
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
	nfd, err := g.table.Insert(nc)
	if err != nil {
		g.kernel.Close(nc)
		return caps.ErrnoOf(err)
	}
	return writeU32(m, fdOut, nfd)
}

// acceptConn takes the next connection from the listener behind c, which
// the caller holds acquired, waiting for one unless c is non-blocking: the
// accepting half of both ABIs' sock_accept. The connection is a child
// capability of c (edge accept) with c's inheriting rights, clipped to
// what a stream can hold. With the guest's table full it is EMFILE, and
// the connection stays queued.
func (g *Guest) acceptConn(c *caps.Cap) (*caps.Cap, Errno) {
	a, ok := c.Resource().(caps.Acceptor)
	if !ok {
		return nil, caps.ENOTSOCK
	}
	// A full table is EMFILE before a connection is taken, as accept(2)
	// finds a descriptor first: taken, it could only be closed, and the
	// client would lose it. (The daemon may add a handle meanwhile; the
	// insert that then fails still closes the connection.)
	if e := g.roomFor(1); e != 0 {
		return nil, e
	}
	pl, _ := c.Resource().(caps.Pollable)
	var conn caps.Resource
	var err error
	for {
		conn, err = a.Accept()
		if err != caps.EAGAIN || pl == nil || c.Flags()&caps.FlagNonblock != 0 {
			break
		}
		if e := g.waitReady(c, pl, caps.EventRead); e != 0 {
			return nil, e
		}
	}
	if err != nil {
		return nil, caps.ErrnoOf(err)
	}
	_, inh := c.Rights()
	nc, err := g.kernel.Derive(c, caps.Derivation{Holder: g.holder, Edge: caps.EdgeAccept, Name: c.Name(), Base: inh, Inheriting: inh, Resource: conn})
	if err != nil {
		return nil, caps.ErrnoOf(err) // Derive closed conn
	}
	return nc, 0
}

// iovLen is the number of bytes iov holds.
func iovLen(iov [][]byte) int {
	n := 0
	for _, b := range iov {
		n += len(b)
	}
	return n
}
