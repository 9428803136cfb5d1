package abi

import (
	"io"
	"math"
	"slices"

	"github.com/sandboxd/sandboxd/caps"
	"github.com/tetratelabs/wazero/api"
)

// The fd family: calls on a handle as such, whatever it designates. Every
// call looks the handle up (EBADF), checks the rights CLOUDABI.md's table
// names (ENOTCAPABLE) and holds the capability acquired while it runs, so
// a revocation waits for the call and no call completes after it.

// acquire looks fd up and checks that its capability holds need: every
// handler's first step. A handle the guest does not hold is EBADF, a
// missing right or a revoked capability ENOTCAPABLE. On success (errno 0)
// the caller must Release the capability, so that a revocation waits for
// the call.
//
// caps.Table.Acquire fails only with those two Errno values, so a type
// assertion converts its error: unlike caps.ErrnoOf it keeps acquire small
// enough to be inlined into every handler, fd_write's among them (without
// it fd_write's BenchmarkHostCallRatio rises from 1.10 to 1.13, see
// docs/BENCHMARKS.md).
func (g *Guest) acquire(fd uint32, need caps.Rights) (*caps.Cap, Errno) {
	c, err := g.table.Acquire(fd, need, 0)
	e, _ := err.(caps.Errno)
	return c, e
}

// fd_stat_put flags.
const (
	fdstatFlags  = 0x1
	fdstatRights = 0x2
)

// fdFlagsAll is every fd flag a guest may set.
const fdFlagsAll = caps.FlagAppend | caps.FlagDsync | caps.FlagNonblock | caps.FlagRsync | caps.FlagSync

// maxIOTotal caps the bytes one read or write call moves, as Linux caps a
// transfer at MAX_RW_COUNT, so that the count always fits the u32 result
// even when a guest passes many iovecs aliasing the same memory.
const maxIOTotal = 0x7ffff000

// smallIOV is how many iovecs fd_read and fd_write resolve without
// allocating; libc stdio passes one or two. Their array stays on the
// stack only as long as nothing readv and writev pass it to keeps it
// (escape analysis: `go build -gcflags=-m ./abi/` must not say "moved to
// heap: small" for them); the paths that would, a channel's or a host
// socket's, are given a copy, and
// TestFdReadAndWriteOfStdioAllocateNothing holds it.
const smallIOV = 4

// limitIOV trims iov in place so that it holds at most maxIOTotal bytes.
func limitIOV(iov [][]byte) [][]byte {
	left := maxIOTotal
	for i, b := range iov {
		if len(b) >= left {
			iov[i] = b[:left]
			return iov[:i+1]
		}
		left -= len(b)
	}
	return iov
}

// outInBounds checks a result pointer before the call acts: a call that
// moves bytes, an offset or makes something must not have done so when it
// then fails to report it (EFAULT), or the guest, told that it failed,
// does it again.
func outInBounds(m api.Memory, ptr, n uint32) Errno {
	_, e := read(m, ptr, n)
	return e
}

func fdClose(g *Guest, m api.Memory, p []uint64) Errno {
	fd := uint32(p[0])
	return caps.ErrnoOf(g.table.Remove(fd))
}

// roomFor is EMFILE when the guest's table has no room for n more handles.
// A call that adds handles asks first, as open(2) finds a descriptor
// before it opens: refused for want of room, it has created no file and
// made no capability (which the audit log would record, made and closed,
// for a handle the guest never held). The daemon may add a handle
// meanwhile; the insert that then fails still closes what was made.
func (g *Guest) roomFor(n int) Errno {
	if held, _ := g.table.Counts(); held+n > g.table.Max() {
		return caps.EMFILE
	}
	return 0
}

// install puts a capability the call just made into the guest's table and
// writes its fd to out. If either fails the capability is closed, so a
// failed call leaves nothing behind in the table. Callers check out with
// outInBounds before they make the capability: one made, closed and never
// seen by the guest would still be a derive and a close in the audit log.
func (g *Guest) install(m api.Memory, c *caps.Cap, out uint32) Errno {
	fd, err := g.table.Insert(c)
	if err != nil {
		g.kernel.Close(c)
		return caps.ErrnoOf(err)
	}
	if e := writeU32(m, out, fd); e != 0 {
		_ = g.table.Remove(fd)
		return e
	}
	return 0
}

// readv reads into iov from c's resource. When nothing is there yet it
// waits on a pollable resource, unless the handle is NONBLOCK (EAGAIN).
// It returns what one read found rather than wait again, as POSIX read
// does on a pipe.
func (g *Guest) readv(c *caps.Cap, iov [][]byte) (int, Errno) {
	res := c.Resource()
	if s, ok := res.(*caps.Stdio); ok && s.StopsReading() {
		return g.readStoppable(c, s, iov)
	}
	if ch, ok := res.(caps.Messenger); ok { // a channel end or a host socket
		return g.readChannel(c, ch, slices.Clone(iov)) // a copy: see smallIOV
	}
	r, ok := res.(caps.Reader)
	if !ok {
		return 0, caps.EBADF
	}
	if v, ok := res.(vectorIO); ok && len(iov) > 1 {
		return g.vectorv(c, v, iov, caps.EventRead)
	}
	if e := offsetEnd(res, iov); e != 0 {
		return 0, e
	}
	total := 0
	for _, b := range limitIOV(iov) {
		if len(b) == 0 {
			continue
		}
		for {
			n, err := r.Read(b)
			total += n
			if err == caps.EAGAIN {
				if total > 0 {
					return total, 0
				}
				pl, ok := res.(caps.Pollable)
				if !ok || c.Flags()&caps.FlagNonblock != 0 {
					return 0, caps.EAGAIN
				}
				if e := g.waitReady(c, pl, caps.EventRead); e != 0 {
					return 0, e
				}
				continue
			}
			if err != nil {
				if total > 0 {
					return total, 0
				}
				return 0, caps.ErrnoOf(err)
			}
			if n < len(b) {
				return total, 0
			}
			break
		}
	}
	return total, 0
}

// readChannel is readv on a channel end: one receive into the whole of
// iov, as sock_recv without handles makes (recvLoop), so that a read
// keeps the boundaries a receive keeps: it stops at the end of a message
// that carried handles (which it closes, as Linux's read(2) closes the
// descriptors of an SCM_RIGHTS message it reads) and takes one datagram.
// A read per buffer would read on past either, and on a host socket take
// an error (ECONNRESET) that readv(2) leaves for the next read. A read of
// no bytes reads nothing, at once, as read(2) of 0 bytes does.
func (g *Guest) readChannel(c *caps.Cap, ch caps.Messenger, iov [][]byte) (int, Errno) {
	if iovEmpty(iov) {
		return 0, 0
	}
	n, got, _, e := g.recvLoop(c, ch, iov, 0, false, false)
	for _, x := range got {
		g.kernel.Close(x) // none come with maxCaps 0; a guard
	}
	return n, e
}

// iovEmpty reports whether iov has room for no byte.
func iovEmpty(iov [][]byte) bool {
	for _, b := range iov {
		if len(b) > 0 {
			return false
		}
	}
	return true
}

// readStoppable is readv for a standard stream whose reads stop waiting
// when c is revoked, since Revoke waits for the read, or the guest is
// killed (caps.Stdio.ReadUntil): a read of the daemon's stdin waits for a
// client that may never write, and a spawned child reading its parent's
// stdin, or a guest reading a copy passed to it, has no other way out.
func (g *Guest) readStoppable(c *caps.Cap, s *caps.Stdio, iov [][]byte) (int, Errno) {
	revoked, ended := c.Done(), g.ctx.Done()
	n, err := transferv(iov, func(b []byte, _ int) (int, error) { return s.ReadUntil(b, revoked, ended) })
	if err != nil && g.ctx.Err() != nil {
		return 0, g.killed() // the guest unwinds, as from waitReady
	}
	return movedOr(n, err)
}

// writev writes iov to c's resource, waiting while a pollable resource
// cannot take more. On a blocking handle it writes every byte, waiting
// for room as often as it takes, as write(2) on a blocking pipe or stream
// socket does; an error after some bytes went returns their count.
func (g *Guest) writev(c *caps.Cap, iov [][]byte) (int, Errno) {
	res := c.Resource()
	if s, ok := res.(*caps.Stdio); ok {
		return g.writeStdio(c, s, iov)
	}
	if s, ok := res.(*caps.Socket); ok && !iovEmpty(iov) { // all of it, as writev(2) on a blocking socket
		return g.sendStream(c, s, slices.Clone(iov)) // a copy: see smallIOV
	}
	w, ok := res.(caps.Writer)
	if !ok {
		return 0, caps.EBADF
	}
	if v, ok := res.(vectorIO); ok && len(iov) > 1 {
		return g.vectorv(c, v, iov, caps.EventWrite)
	}
	if e := offsetEnd(res, iov); e != 0 {
		return 0, e
	}
	iov = limitIOV(iov)
	total := 0
	for _, b := range iov {
		for len(b) > 0 {
			n, err := w.Write(b)
			total += n
			b = b[n:]
			if err == caps.EAGAIN && c.Flags()&caps.FlagNonblock == 0 {
				if pl, ok := res.(caps.Pollable); ok {
					if e := g.waitReady(c, pl, caps.EventWrite); e != 0 {
						return partial(total, e)
					}
					continue
				}
			}
			if err != nil {
				return partial(total, caps.ErrnoOf(err))
			}
		}
	}
	return total, 0
}

// writeStdio is writev for a standard stream, the handle written most:
// its Write is a direct call rather than one through caps.Writer, and it
// blocks rather than report EAGAIN, so there is no wait to prepare for.
// Without it fd_write's BenchmarkHostCallRatio rises from 1.15 to
// 1.17–1.19 (docs/BENCHMARKS.md says how to repeat that). A stream whose
// writes may wait for a client (the daemon's) stops waiting when c is
// revoked, since Revoke waits for the write, or the guest is killed
// (writeStoppable). Several buffers are one caps.Stdio.Writev: one
// writev(2) to a stream that is a host file.
func (g *Guest) writeStdio(c *caps.Cap, s *caps.Stdio, iov [][]byte) (int, Errno) {
	if s.Stoppable() {
		return g.writeStoppable(c, s, iov)
	}
	if len(iov) > 1 { // one writev(2) if the stream is a host file
		return movedOr(s.Writev(slices.Clone(limitIOV(iov)))) // a copy: see smallIOV
	}
	total := 0
	for _, b := range limitIOV(iov) {
		n, err := s.Write(b)
		total += n
		if err != nil {
			if total > 0 {
				return total, 0
			}
			return 0, caps.ErrnoOf(err)
		}
	}
	return total, 0
}

// writeStoppable is writeStdio for a stream whose writes stop waiting when
// c is revoked or the guest is killed (caps.Stdio.WriteUntil): a spawned
// child writing to its parent's stream has no other way out of a wait for
// a client that does not read.
func (g *Guest) writeStoppable(c *caps.Cap, s *caps.Stdio, iov [][]byte) (int, Errno) {
	revoked, ended := c.Done(), g.ctx.Done()
	n, err := transferv(iov, func(b []byte, _ int) (int, error) { return s.WriteUntil(b, revoked, ended) })
	if err != nil && g.ctx.Err() != nil {
		return 0, g.killed()
	}
	return movedOr(n, err)
}

func fdRead(g *Guest, m api.Memory, p []uint64) Errno {
	fd, iovs, iovsLen, nreadOut := uint32(p[0]), uint32(p[1]), uint32(p[2]), uint32(p[3])
	c, e := g.acquire(fd, caps.RightFDRead)
	if e != 0 {
		return e
	}
	defer c.Release()
	var small [smallIOV][]byte
	iov, e := iovecsInto(small[:0], m, iovs, iovsLen)
	if e != 0 {
		return e
	}
	if e := outInBounds(m, nreadOut, 4); e != 0 {
		return e
	}
	n, e := g.readv(c, iov)
	if e != 0 {
		return e
	}
	return writeU32(m, nreadOut, uint32(n))
}

func fdWrite(g *Guest, m api.Memory, p []uint64) Errno {
	fd, iovs, iovsLen, nwrittenOut := uint32(p[0]), uint32(p[1]), uint32(p[2]), uint32(p[3])
	c, release, e := g.acquireWrite(fd)
	if e != 0 {
		return e
	}
	if release {
		defer c.Release()
	}
	var small [smallIOV][]byte
	iov, e := iovecsInto(small[:0], m, iovs, iovsLen)
	if e != 0 {
		return e
	}
	if e := outInBounds(m, nwrittenOut, 4); e != 0 {
		return e
	}
	n, e := g.writev(c, iov)
	if e != 0 {
		return e
	}
	return writeU32(m, nwrittenOut, uint32(n))
}

// fileOffset converts a guest's u64 offset; offsets past the largest
// host file offset are EINVAL (POSIX: negative offset).
func fileOffset(v uint64) (int64, Errno) {
	if v > math.MaxInt64 {
		return 0, caps.EINVAL
	}
	return int64(v), 0
}

// transferEnd checks a transfer of iov at off as Linux's rw_verify_area
// does: one whose end (off and every byte of iov, as many as one call
// moves) would pass the largest off_t is EINVAL, before a byte moves.
func transferEnd(off int64, iov [][]byte) Errno {
	var total int64
	for _, b := range iov {
		total += int64(len(b)) // at most MaxIOVecs of at most 4 GiB
	}
	if off > math.MaxInt64-min(total, maxIOTotal) {
		return caps.EINVAL
	}
	return 0
}

// offsetEnd is transferEnd at res's own offset, for more than one iovec
// on a resource that moves them one at a time (a byte object) and checks
// each only against its own end; a host file's are one host call, which
// the host's kernel checks whole. A resource without an offset (a
// stream) has no end to pass.
func offsetEnd(res caps.Resource, iov [][]byte) Errno {
	if len(iov) < 2 {
		return 0
	}
	p, ok := res.(caps.Positional)
	if !ok {
		return 0
	}
	off, err := p.Seek(0, io.SeekCurrent)
	if err != nil {
		return 0 // a FIFO: no offset
	}
	return transferEnd(off, iov)
}

// preadv reads into iov from c's resource at off without moving its
// offset. ESPIPE when the resource has no positions.
func preadv(c *caps.Cap, iov [][]byte, off int64) (int, Errno) {
	r, ok := c.Resource().(caps.Positional)
	if !ok {
		return 0, caps.ESPIPE
	}
	if v, ok := r.(vectorIO); ok && len(iov) > 1 {
		return movedOr(v.Preadv(limitIOV(iov), off))
	}
	return positionalv(r.ReadAt, iov, off)
}

// pwritev writes iov to c's resource at off without moving its offset.
// ESPIPE when the resource has no positions.
func pwritev(c *caps.Cap, iov [][]byte, off int64) (int, Errno) {
	w, ok := c.Resource().(caps.Positional)
	if !ok {
		return 0, caps.ESPIPE
	}
	if v, ok := w.(vectorIO); ok && len(iov) > 1 {
		return movedOr(v.Pwritev(limitIOV(iov), off))
	}
	return positionalv(w.WriteAt, iov, off)
}

// positionalv applies a ReadAt or WriteAt to each buffer of iov in turn,
// from off on, stopping at the first short transfer. An error after some
// bytes moved reports those bytes, as POSIX preadv/pwritev do.
func positionalv(at func([]byte, int64) (int, error), iov [][]byte, off int64) (int, Errno) {
	return movedOr(transferv(iov, func(b []byte, done int) (int, error) { return at(b, off+int64(done)) }))
}

// transferv moves each buffer of iov in turn through move (given the
// bytes moved before it), stopping at the first error or short transfer.
// It returns the bytes moved and the error that stopped it, if any.
func transferv(iov [][]byte, move func(b []byte, done int) (int, error)) (int, error) {
	total := 0
	for _, b := range limitIOV(iov) {
		if len(b) == 0 {
			continue
		}
		n, err := move(b, total)
		total += n
		if err != nil || n < len(b) {
			return total, err
		}
	}
	return total, nil
}

// movedOr reports a transfer as POSIX does: the bytes moved, or, when
// none were, the errno of the error that stopped it.
func movedOr(n int, err error) (int, Errno) {
	if err != nil && n == 0 {
		return 0, caps.ErrnoOf(err)
	}
	return n, 0
}

func fdPread(g *Guest, m api.Memory, p []uint64) Errno {
	fd, iovs, iovsLen, offset, nreadOut := uint32(p[0]), uint32(p[1]), uint32(p[2]), p[3], uint32(p[4])
	c, e := g.acquire(fd, caps.RightFDRead|caps.RightFDSeek)
	if e != 0 {
		return e
	}
	defer c.Release()
	iov, e := iovecs(m, iovs, iovsLen)
	if e != 0 {
		return e
	}
	off, e := fileOffset(offset)
	if e == 0 {
		e = transferEnd(off, iov)
	}
	if e != 0 {
		return e
	}
	if e := outInBounds(m, nreadOut, 4); e != 0 {
		return e
	}
	n, e := preadv(c, iov, off)
	if e != 0 {
		return e
	}
	return writeU32(m, nreadOut, uint32(n))
}

func fdPwrite(g *Guest, m api.Memory, p []uint64) Errno {
	fd, iovs, iovsLen, offset, nwrittenOut := uint32(p[0]), uint32(p[1]), uint32(p[2]), p[3], uint32(p[4])
	c, e := g.acquire(fd, caps.RightFDWrite|caps.RightFDSeek)
	if e != 0 {
		return e
	}
	defer c.Release()
	iov, e := iovecs(m, iovs, iovsLen)
	if e != 0 {
		return e
	}
	off, e := fileOffset(offset)
	if e == 0 {
		e = transferEnd(off, iov)
	}
	if e != 0 {
		return e
	}
	if e := outInBounds(m, nwrittenOut, 4); e != 0 {
		return e
	}
	n, e := pwritev(c, iov, off)
	if e != 0 {
		return e
	}
	return writeU32(m, nwrittenOut, uint32(n))
}

// fdCreate1 makes an in-memory byte object: CloudABI's anonymous shared
// memory object without mapping (CLOUDABI.md §7). It is a new root
// capability, recorded as created by the guest, and its memory is
// charged to the guest's GuestConfig.Memory.
func fdCreate1(g *Guest, m api.Memory, p []uint64) Errno {
	typ, fdOut := uint32(p[0]), uint32(p[1])
	if typ != filetypeSharedMemory {
		return caps.EINVAL
	}
	if e := outInBounds(m, fdOut, 4); e != 0 {
		return e
	}
	if e := g.roomFor(1); e != 0 {
		return e
	}
	c := g.kernel.Create(g.holder, caps.NewChargedByteObject(g.tree.memory), caps.RightsByteObjectBase, 0, "", "fd_create1")
	return g.install(m, c, fdOut)
}

// fdCreate2 makes a channel pair inside the supervisor. Both ends get
// CloudABI's socket rights (RIGHTS_SOCKET_BASE, inheriting everything).
// Its unread bytes are charged to the guest's GuestConfig.Memory.
func fdCreate2(g *Guest, m api.Memory, p []uint64) Errno {
	typ, fd1Out, fd2Out := uint32(p[0]), uint32(p[1]), uint32(p[2])
	var dgram bool
	switch typ {
	case filetypeSocketDgram:
		dgram = true
	case filetypeSocketStream:
	default:
		return caps.EINVAL
	}
	if e := outInBounds(m, fd1Out, 4); e != 0 {
		return e
	}
	if e := outInBounds(m, fd2Out, 4); e != 0 {
		return e
	}
	if e := g.roomFor(2); e != 0 {
		return e
	}
	a, b := caps.NewChargedChannelPair(dgram, "fd_create2 by "+g.ID, g.tree.memory)
	ca := g.kernel.Create(g.holder, a, caps.RightsSocketBase, caps.RightsSocketInheriting, "", "fd_create2")
	cb := g.kernel.Create(g.holder, b, caps.RightsSocketBase, caps.RightsSocketInheriting, "", "fd_create2")
	fa, err := g.table.Insert(ca)
	if err != nil {
		g.kernel.Close(ca)
		g.kernel.Close(cb)
		return caps.ErrnoOf(err)
	}
	fb, err := g.table.Insert(cb)
	if err != nil {
		_ = g.table.Remove(fa)
		g.kernel.Close(cb)
		return caps.ErrnoOf(err)
	}
	e := writeU32(m, fd1Out, fa)
	if e == 0 {
		e = writeU32(m, fd2Out, fb)
	}
	if e != 0 {
		_ = g.table.Remove(fa)
		_ = g.table.Remove(fb)
	}
	return e
}

func fdDatasync(g *Guest, m api.Memory, p []uint64) Errno {
	fd := uint32(p[0])
	return g.sync(fd, caps.RightFDDatasync, true)
}

func fdSync(g *Guest, m api.Memory, p []uint64) Errno {
	fd := uint32(p[0])
	return g.sync(fd, caps.RightFDSync, false)
}

// sync flushes fd's resource to stable storage; EINVAL for a resource
// that cannot be synchronised (a stream), as fsync(2) says.
func (g *Guest) sync(fd uint32, right caps.Rights, dataOnly bool) Errno {
	c, e := g.acquire(fd, right)
	if e != 0 {
		return e
	}
	defer c.Release()
	s, ok := c.Resource().(caps.Syncer)
	if !ok {
		return caps.EINVAL
	}
	if dataOnly {
		return caps.ErrnoOf(s.Datasync())
	}
	return caps.ErrnoOf(s.Sync())
}

// dup derives a copy of c for the same guest: a child capability with the
// same rights and fd flags, on the same resource (so the same offset).
func (g *Guest) dup(c *caps.Cap) (*caps.Cap, Errno) {
	b, i := c.Rights()
	d, err := g.kernel.Derive(c, caps.Derivation{Holder: g.holder, Edge: caps.EdgeDup, Name: c.Name(), Base: b, Inheriting: i})
	if err != nil {
		return nil, caps.ErrnoOf(err)
	}
	d.SetFlags(c.Flags())
	return d, 0
}

func fdDup(g *Guest, m api.Memory, p []uint64) Errno {
	from, fdOut := uint32(p[0]), uint32(p[1])
	c, e := g.acquire(from, 0)
	if e != 0 {
		return e
	}
	defer c.Release()
	if e := outInBounds(m, fdOut, 4); e != 0 {
		return e
	}
	if e := g.roomFor(1); e != 0 {
		return e
	}
	d, e := g.dup(c)
	if e != 0 {
		return e
	}
	return g.install(m, d, fdOut)
}

// fdReplace makes to designate from's object with from's rights (a child
// of from's capability) and closes what to held. Unlike WASI's
// fd_renumber, from stays open. to must be open (EBADF otherwise).
func fdReplace(g *Guest, m api.Memory, p []uint64) Errno {
	from, to := uint32(p[0]), uint32(p[1])
	c, e := g.acquire(from, 0)
	if e != 0 {
		return e
	}
	defer c.Release()
	if _, err := g.table.Get(to); err != nil {
		return caps.ErrnoOf(err)
	}
	if from == to {
		return 0
	}
	d, e := g.dup(c)
	if e != 0 {
		return e
	}
	if err := g.table.Replace(to, d); err != nil {
		g.kernel.Close(d)
		return caps.ErrnoOf(err)
	}
	return 0
}

// CloudABI whence values.
const (
	whenceCur = 1
	whenceEnd = 2
	whenceSet = 3
)

// acquireSeek acquires fd for a seek. A pure tell (offset 0 from the
// current position) needs FD_TELL or FD_SEEK (which implies it); any other
// seek needs FD_SEEK.
func (g *Guest) acquireSeek(fd uint32, tell bool) (*caps.Cap, Errno) {
	if !tell {
		return g.acquire(fd, caps.RightFDSeek)
	}
	c, e := g.acquire(fd, 0)
	if e != 0 {
		return nil, e
	}
	if b, _ := c.Rights(); b&(caps.RightFDTell|caps.RightFDSeek) == 0 {
		c.Release()
		return nil, caps.ENOTCAPABLE
	}
	return c, 0
}

// seek moves c's offset (io.Seek* whence); ESPIPE when the resource has
// no positions.
func seek(c *caps.Cap, off int64, whence int) (int64, Errno) {
	s, ok := c.Resource().(caps.Positional)
	if !ok {
		return 0, caps.ESPIPE
	}
	pos, err := s.Seek(off, whence)
	if err != nil {
		return 0, caps.ErrnoOf(err)
	}
	return pos, 0
}

func fdSeek(g *Guest, m api.Memory, p []uint64) Errno {
	fd, offset, whence, newoffsetOut := uint32(p[0]), int64(p[1]), uint32(p[2]), uint32(p[3])
	c, e := g.acquireSeek(fd, offset == 0 && whence == whenceCur)
	if e != 0 {
		return e
	}
	defer c.Release()
	var w int
	switch whence {
	case whenceCur:
		w = io.SeekCurrent
	case whenceEnd:
		w = io.SeekEnd
	case whenceSet:
		w = io.SeekStart
	default:
		return caps.EINVAL
	}
	if e := outInBounds(m, newoffsetOut, 8); e != 0 {
		return e
	}
	pos, e := seek(c, offset, w)
	if e != 0 {
		return e
	}
	return writeU64(m, newoffsetOut, uint64(pos))
}

// appendMode is implemented by resources whose append flag belongs to the
// open object and is shared by every handle to it, as a POSIX open file
// description's O_APPEND is (caps.File, caps.ByteObject).
type appendMode interface {
	Append() bool
	SetAppend(on bool) error
}

// fdFlags returns the fd flags fd_stat_get reports for c: the handle's
// own flags, with APPEND taken from the object where the object has it.
func fdFlags(c *caps.Cap) uint32 {
	f := c.Flags()
	if a, ok := c.Resource().(appendMode); ok {
		f &^= caps.FlagAppend
		if a.Append() {
			f |= caps.FlagAppend
		}
	}
	return f
}

// setFdFlags applies fd_stat_put(FLAGS). NONBLOCK belongs to the handle
// and every waiting call consults it. APPEND belongs to the object
// (ENOTSUP for objects that have no append mode, such as streams), which
// every copy of the handle shares (appendChange says who may change it).
// The synchronised-I/O flags are fixed at open on Linux, so changing them
// is ENOTSUP rather than a silent loss of durability.
func setFdFlags(c *caps.Cap, f uint32) Errno {
	if f&^fdFlagsAll != 0 {
		return caps.EINVAL
	}
	const syncFlags = caps.FlagDsync | caps.FlagRsync | caps.FlagSync
	old := fdFlags(c)
	if (f^old)&syncFlags != 0 {
		return caps.ENOTSUP
	}
	if (f^old)&caps.FlagAppend != 0 {
		a, ok := c.Resource().(appendMode)
		if !ok {
			return caps.ENOTSUP
		}
		if b, _ := c.Rights(); !b.Has(appendChange(f&caps.FlagAppend != 0)) {
			return caps.ENOTCAPABLE
		}
		if err := a.SetAppend(f&caps.FlagAppend != 0); err != nil {
			return caps.ErrnoOf(err)
		}
	}
	c.SetFlags(f)
	return 0
}

// appendChange is the rights a handle needs to turn its object's append
// mode on or off. Either decides where the writes of every copy go, so it
// needs fd_write: a read-only copy turning it on would send its writer's
// writes, pwrite included, to the end. Turning it off needs fd_seek as
// well: a handle that may write but not seek (opened in append mode
// beneath a directory that does not pass on fd_seek), or any copy of it,
// would then overwrite what it could only add to.
func appendChange(on bool) caps.Rights {
	if on {
		return caps.RightFDWrite
	}
	return caps.RightFDWrite | caps.RightFDSeek
}

func fdStatGet(g *Guest, m api.Memory, p []uint64) Errno {
	fd, fdstatOut := uint32(p[0]), uint32(p[1])
	c, e := g.acquire(fd, 0)
	if e != 0 {
		return e
	}
	defer c.Release()
	b, i := c.Rights()
	return writeFdstat(m, fdstatOut, fdstat{
		filetype:   cloudabiFiletype(fileTypeOf(c)),
		flags:      uint16(fdFlags(c)),
		base:       b,
		inheriting: i,
	})
}

// fdStatPut changes a handle's flags (FLAGS, needs FD_STAT_PUT_FLAGS) or
// narrows its rights (RIGHTS, needs nothing: asking for any right not held
// is ENOTCAPABLE and changes nothing). Exactly one of the two per call.
func fdStatPut(g *Guest, m api.Memory, p []uint64) Errno {
	fd, fdstatIn, flags := uint32(p[0]), uint32(p[1]), uint32(p[2])
	var need caps.Rights
	switch flags {
	case fdstatFlags:
		need = caps.RightFDStatPutFlags
	case fdstatRights:
	default:
		return caps.EINVAL
	}
	c, e := g.acquire(fd, need)
	if e != 0 {
		return e
	}
	defer c.Release()
	s, e := readFdstat(m, fdstatIn)
	if e != 0 {
		return e
	}
	if flags == fdstatFlags {
		return setFdFlags(c, uint32(s.flags))
	}
	return caps.ErrnoOf(c.Narrow(s.base, s.inheriting))
}

// vectorIO is a resource that moves several buffers in one host call, as
// readv(2), writev(2), preadv(2) and pwritev(2) do: a host file or FIFO
// (caps.File). A call of several iovecs on it is that one call, so that
// what it writes is not interleaved with another writer's (O_APPEND), a
// pipe's PIPE_BUF rule and packets apply to the whole of it, and the
// kernel checks its offset and length as Linux's rw_verify_area does. A
// call of one iovec keeps the resource's Read, Write, ReadAt or WriteAt,
// the same host call.
type vectorIO interface {
	Readv(iov [][]byte) (int, error)
	Writev(iov [][]byte) (int, error)
	Preadv(iov [][]byte, off int64) (int, error)
	Pwritev(iov [][]byte, off int64) (int, error)
}

// vectorv is readv (ev EventRead) or writev (EventWrite) of iov as one
// host call. One that can move nothing yet (EAGAIN, on a FIFO) waits
// until c's resource is ready for ev and runs again, unless the handle is
// NONBLOCK; after moving part it returns, as readv and writev do.
func (g *Guest) vectorv(c *caps.Cap, v vectorIO, iov [][]byte, ev caps.Events) (int, Errno) {
	vec := slices.Clone(limitIOV(iov)) // a copy: see smallIOV
	left, total := iovLen(vec), 0
	for {
		var n int
		var err error
		if ev == caps.EventRead {
			n, err = v.Readv(vec)
		} else {
			n, err = v.Writev(vec)
		}
		total += max(n, 0)
		// A read returns what it found; a blocking write goes on until
		// all of it is written, as write(2) on a blocking pipe does.
		more := ev == caps.EventWrite && n > 0 && total < left && err == nil
		if (err == caps.EAGAIN && (n == 0 || ev == caps.EventWrite) || more) && c.Flags()&caps.FlagNonblock == 0 {
			if pl, ok := c.Resource().(caps.Pollable); ok {
				vec = caps.SkipBytes(vec, max(n, 0))
				if e := g.waitReady(c, pl, ev); e != 0 {
					return partial(total, e)
				}
				continue
			}
		}
		if err != nil {
			return partial(total, caps.ErrnoOf(err))
		}
		return total, 0
	}
}
