package abi

import (
	"encoding/binary"
	"io"
	"math"

	"github.com/sandboxd/sandboxd/caps"
	"github.com/tetratelabs/wazero/api"
	"golang.org/x/sys/unix"
)

// WASI preview1 fd_* functions. Where a function means what its CloudABI
// ancestor means, the table points at the native handler or the two share
// its helpers (readv, preadv, seek, setFdFlags, statOfCap, …); what is
// here is only what WASI changed: numbering, scalar parameters instead of
// structures, and the errors POSIX programs expect where a capability
// check and a POSIX check would both fail.

// wasiAsFileErrno refines ENOTCAPABLE from a read, write or seek on a
// live handle whose resource could never do it: a directory (no grant
// gives a directory fd_read or fd_seek) is EISDIR, a stream that cannot
// seek is ESPIPE. POSIX programs test for those; the capability answer
// would be just as true but tells them less.
func wasiAsFileErrno(g *Guest, fd uint32, e Errno, seeking bool) Errno {
	if e != caps.ENOTCAPABLE {
		return e
	}
	c, err := g.table.Get(fd)
	if err != nil || c.Revoked() {
		return e
	}
	if c.Kind() == caps.KindDirectory {
		return caps.EISDIR
	}
	if _, ok := c.Resource().(caps.Positional); seeking && !ok {
		return caps.ESPIPE
	}
	return e
}

func wasiFDRead(g *Guest, m api.Memory, p []uint64) Errno {
	fd := uint32(p[0])
	return wasiAsFileErrno(g, fd, fdRead(g, m, p), false)
}

func wasiFDPread(g *Guest, m api.Memory, p []uint64) Errno {
	fd := uint32(p[0])
	return wasiAsFileErrno(g, fd, fdPread(g, m, p), true)
}

func wasiFDPwrite(g *Guest, m api.Memory, p []uint64) Errno {
	fd := uint32(p[0])
	return wasiAsFileErrno(g, fd, fdPwrite(g, m, p), true)
}

// wasiFDAdvise validates WASI's advice (normal 0 … noreuse 5) and length
// and passes it on to the host file, as file_advise does.
func wasiFDAdvise(g *Guest, m api.Memory, p []uint64) Errno {
	fd, offset, length, advice := uint32(p[0]), p[1], p[2], uint32(p[3])
	c, e := g.acquire(fd, caps.RightFileAdvise)
	if e != 0 {
		return e
	}
	defer c.Release()
	if advice > wasiAdviceMax {
		return adviseOn(c, offset, length, -1)
	}
	return adviseOn(c, offset, length, wasiAdvice[advice])
}

// wasiAdvice is Linux's advice for WASI's: NORMAL, SEQUENTIAL, RANDOM,
// WILLNEED, DONTNEED, NOREUSE.
var wasiAdvice = [wasiAdviceMax + 1]int{unix.FADV_NORMAL, unix.FADV_SEQUENTIAL, unix.FADV_RANDOM, unix.FADV_WILLNEED, unix.FADV_DONTNEED, unix.FADV_NOREUSE}

func wasiFDFdstatGet(g *Guest, m api.Memory, p []uint64) Errno {
	fd, statOut := uint32(p[0]), uint32(p[1])
	c, e := g.acquire(fd, 0)
	if e != 0 {
		return e
	}
	defer c.Release()
	base, inh := c.Rights()
	var b [wasiFdstatSize]byte
	b[0] = wasiFiletypeOf(fileTypeOf(c))
	binary.LittleEndian.PutUint16(b[2:], uint16(fdFlags(c)))
	binary.LittleEndian.PutUint64(b[8:], WASIRightsOf(base))
	binary.LittleEndian.PutUint64(b[16:], WASIRightsOf(inh))
	return writeBytes(m, statOut, b[:])
}

// wasiFDFdstatSetFlags is fd_stat_put(FLAGS); WASI's fdflags have
// CloudABI's values.
func wasiFDFdstatSetFlags(g *Guest, m api.Memory, p []uint64) Errno {
	fd, flags := uint32(p[0]), uint32(p[1])
	c, e := g.acquire(fd, caps.RightFDStatPutFlags)
	if e != 0 {
		return e
	}
	defer c.Release()
	return setFdFlags(c, flags)
}

// wasiFDFdstatSetRights narrows a handle to the WASI rights asked for.
// Asking for a WASI right the handle does not show in fd_fdstat_get is
// ENOTCAPABLE and changes nothing. The result holds exactly the
// translation of what was asked, so rights WASI has no name for are
// dropped: a WASI caller cannot ask to keep what it cannot name.
func wasiFDFdstatSetRights(g *Guest, m api.Memory, p []uint64) Errno {
	fd, fsRightsBase, fsRightsInheriting := uint32(p[0]), p[1], p[2]
	c, e := g.acquire(fd, 0)
	if e != 0 {
		return e
	}
	defer c.Release()
	base, inh := c.Rights()
	if fsRightsBase&^WASIRightsOf(base) != 0 || fsRightsInheriting&^WASIRightsOf(inh) != 0 {
		return caps.ENOTCAPABLE
	}
	return caps.ErrnoOf(c.Narrow(RightsOfWASI(fsRightsBase)&base, RightsOfWASI(fsRightsInheriting)&inh))
}

func wasiFDFilestatGet(g *Guest, m api.Memory, p []uint64) Errno {
	fd, buf := uint32(p[0]), uint32(p[1])
	c, e := g.acquire(fd, caps.RightFileStatFGet)
	if e != 0 {
		return e
	}
	defer c.Release()
	st, e := statOfCap(c)
	if e != 0 {
		return e
	}
	b := wasiFilestat(st)
	return writeBytes(m, buf, b[:])
}

// wasiFDFilestatSetSize is file_stat_fput(SIZE) with the size as a
// scalar.
func wasiFDFilestatSetSize(g *Guest, m api.Memory, p []uint64) Errno {
	fd, size := uint32(p[0]), p[1]
	c, e := g.acquire(fd, caps.RightFileStatFPutSize)
	if e != 0 {
		return e
	}
	defer c.Release()
	t, ok := c.Resource().(caps.Truncater)
	if !ok {
		return caps.EINVAL
	}
	if size > math.MaxInt64 {
		return caps.EFBIG
	}
	return caps.ErrnoOf(t.Truncate(int64(size)))
}

// wasiFDFilestatSetTimes is file_stat_fput with time flags, the times as
// scalars. No flag at all changes nothing and succeeds, as futimens with
// both times UTIME_OMIT does.
func wasiFDFilestatSetTimes(g *Guest, m api.Memory, p []uint64) Errno {
	fd, atim, mtim, fstFlags := uint32(p[0]), p[1], p[2], uint32(p[3])
	if fstFlags&^fsTimes != 0 {
		return caps.EINVAL
	}
	c, e := g.acquire(fd, caps.RightFileStatFPutTimes)
	if e != 0 {
		return e
	}
	defer c.Release()
	a, mt, e := statTimes(filestatIn{atim: atim, mtim: mtim}, fstFlags)
	if e != 0 {
		return e
	}
	t, ok := c.Resource().(caps.Timeser)
	if !ok {
		return caps.EINVAL
	}
	if a == nil && mt == nil {
		return 0
	}
	return caps.ErrnoOf(t.SetTimes(a, mt))
}

// wasiFDPrestatGet describes fd as a preopen (see preopenName). wasi-libc
// and Go probe fds
// from 3 upward and stop at the first EBADF; any other error aborts
// wasi-libc's startup. So every open handle answers: a directory that has
// a name is a preopen under that name, and anything else reports a tag
// other than DIR, which both libraries skip. This keeps directories
// granted after a socket or channel visible.
func wasiFDPrestatGet(g *Guest, m api.Memory, p []uint64) Errno {
	fd, buf := uint32(p[0]), uint32(p[1])
	c, err := g.table.Get(fd)
	if err != nil {
		return caps.ErrnoOf(err)
	}
	var b [wasiPrestatSize]byte
	if name, ok := preopenName(c); ok {
		b[0] = wasiPreopenDir
		binary.LittleEndian.PutUint32(b[4:], uint32(len(name)))
	} else {
		b[0] = wasiPreopenNone
	}
	return writeBytes(m, buf, b[:])
}

// preopenName returns the path at which a handle is a preopen: a live
// directory capability with a name, not opened by path (a handle from
// path_open is named after its path, which is no mount point). A
// capability named N is mounted at "/N"; a name that already begins with
// "/" ("/" itself for a grant of the guest's root) is used as it is. Grant
// names are plain names ("data"), and Go's syscall package matches an
// absolute path only against absolute preopen names, so mounting them at
// the root makes "/data/x" mean the same to Go as to wasi-libc (which
// strips the leading "/" from both).
func preopenName(c *caps.Cap) (string, bool) {
	n := c.Name()
	if c.Kind() != caps.KindDirectory || n == "" || c.Edge() == caps.EdgeOpen || c.Revoked() {
		return "", false
	}
	if n[0] != '/' {
		n = "/" + n
	}
	return n, true
}

func wasiFDPrestatDirName(g *Guest, m api.Memory, p []uint64) Errno {
	fd, path, pathLen := uint32(p[0]), uint32(p[1]), uint32(p[2])
	c, err := g.table.Get(fd)
	if err != nil {
		return caps.ErrnoOf(err)
	}
	name, ok := preopenName(c)
	if !ok {
		return caps.ENOTDIR
	}
	if pathLen < uint32(len(name)) {
		return caps.ENAMETOOLONG
	}
	return writeBytes(m, path, []byte(name))
}

// wasiFDReaddir is file_readdir with WASI's filetype numbering in d_type
// (the dirent layout is the same).
var wasiFDReaddir = readdirWith(wasiFiletypeOf)

// wasiFDRenumber moves the capability at fd to to, closing what to held.
// Unlike CloudABI's fd_replace it derives nothing: the handle keeps its
// identity and rights and only its number changes, and fd is free
// afterwards.
func wasiFDRenumber(g *Guest, m api.Memory, p []uint64) Errno {
	from, to := uint32(p[0]), uint32(p[1])
	if _, err := g.table.Get(from); err != nil {
		return caps.ErrnoOf(err)
	}
	if _, err := g.table.Get(to); err != nil {
		return caps.ErrnoOf(err)
	}
	if from == to {
		return 0
	}
	c, err := g.table.Take(from)
	if err != nil {
		return caps.ErrnoOf(err)
	}
	if err := g.table.Replace(to, c); err != nil {
		// Only the guest changes its own table, one call at a time, so
		// to cannot have been closed since it was checked.
		g.kernel.Close(c)
		return caps.ErrnoOf(err)
	}
	return 0
}

// wasiFDSeek is fd_seek with WASI's whence (io.Seek*'s values). As
// lseek(2), it looks fd up before it looks at whence: a handle the guest
// does not hold is EBADF whatever whence is.
func wasiFDSeek(g *Guest, m api.Memory, p []uint64) Errno {
	fd, offset, whence, newoffsetOut := uint32(p[0]), int64(p[1]), uint32(p[2]), uint32(p[3])
	if whence > wasiWhenceEnd {
		if _, err := g.table.Get(fd); err != nil {
			return caps.ErrnoOf(err)
		}
		return caps.EINVAL
	}
	return wasiSeek(g, m, fd, offset, int(whence), newoffsetOut)
}

func wasiFDTell(g *Guest, m api.Memory, p []uint64) Errno {
	fd, offsetOut := uint32(p[0]), uint32(p[1])
	return wasiSeek(g, m, fd, 0, io.SeekCurrent, offsetOut)
}

func wasiSeek(g *Guest, m api.Memory, fd uint32, off int64, whence int, out uint32) Errno {
	c, e := g.acquireSeek(fd, off == 0 && whence == io.SeekCurrent)
	if e != 0 {
		return wasiAsFileErrno(g, fd, e, true)
	}
	defer c.Release()
	if e := outInBounds(m, out, 8); e != 0 { // before the offset moves
		return e
	}
	pos, e := seek(c, off, whence)
	if e != 0 {
		return e
	}
	return writeU64(m, out, uint64(pos))
}
