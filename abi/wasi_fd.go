package abi

import (
	"encoding/binary"
	"io"
	"math"
	"time"

	"github.com/sandboxd/sandboxd/caps"
	"github.com/tetratelabs/wazero/api"
)

// WASI preview1 fd_* functions. Each one looks up the handle in the guest's
// table, checks the CloudABI rights that carry the WASI right's meaning,
// and works on the capability's resource through the optional resource
// interfaces of package caps.

func wasiFDAdvise(g *Guest, m api.Memory, p []uint64) Errno {
	c, err := g.table.Acquire(uint32(p[0]), caps.RightFileAdvise, 0)
	if err != nil {
		return caps.ErrnoOf(err)
	}
	defer c.Release()
	if int64(p[1]) < 0 || int64(p[2]) < 0 || uint32(p[3]) > wasiAdviceMax {
		return caps.EINVAL
	}
	if c.Kind() != caps.KindFile && c.Kind() != caps.KindByteObject {
		return caps.ESPIPE
	}
	return 0
}

func wasiFDAllocate(g *Guest, m api.Memory, p []uint64) Errno {
	c, err := g.table.Acquire(uint32(p[0]), caps.RightFileAllocate, 0)
	if err != nil {
		return caps.ErrnoOf(err)
	}
	defer c.Release()
	off, n := int64(p[1]), int64(p[2])
	if off < 0 || n <= 0 {
		return caps.EINVAL
	}
	if off > math.MaxInt64-n {
		return caps.EFBIG
	}
	a, ok := c.Resource().(caps.Allocator)
	if !ok {
		return wasiNotAFile(c)
	}
	return caps.ErrnoOf(a.Allocate(off, n))
}

// wasiNotAFile is the error for a file operation on a handle whose
// resource does not support it.
func wasiNotAFile(c *caps.Cap) Errno {
	if c.Kind() == caps.KindDirectory {
		return caps.EISDIR
	}
	return caps.ESPIPE
}

func wasiFDDatasync(g *Guest, m api.Memory, p []uint64) Errno {
	return wasiSync(g, uint32(p[0]), caps.RightFDDatasync, true)
}

func wasiFDSync(g *Guest, m api.Memory, p []uint64) Errno {
	return wasiSync(g, uint32(p[0]), caps.RightFDSync, false)
}

func wasiSync(g *Guest, fd uint32, need caps.Rights, data bool) Errno {
	c, err := g.table.Acquire(fd, need, 0)
	if err != nil {
		return caps.ErrnoOf(err)
	}
	defer c.Release()
	s, ok := c.Resource().(caps.Syncer)
	if !ok {
		return caps.EINVAL
	}
	if data {
		return caps.ErrnoOf(s.Datasync())
	}
	return caps.ErrnoOf(s.Sync())
}

// fileTyper is implemented by resources that know their type without a
// host call (caps.File, caps.Dir, caps.Stdio, caps.ByteObject).
type fileTyper interface{ FileType() caps.FileType }

// wasiFiletype reports the WASI filetype of a handle. Sockets, listeners
// and stream channels are SOCKET_STREAM, which is what Go's
// net.FileConn and net.FileListener require of a wasip1 descriptor.
func wasiFiletype(c *caps.Cap) uint8 {
	switch res := c.Resource().(type) {
	case *caps.Channel:
		if res.Datagram() {
			return wasiFiletypeSocketDgram
		}
		return wasiFiletypeSocketStream
	case fileTyper:
		return wasiFiletypeOf(res.FileType())
	}
	switch c.Kind() {
	case caps.KindSocket, caps.KindListener:
		return wasiFiletypeSocketStream
	}
	if s, ok := c.Resource().(caps.Stater); ok {
		if st, err := s.Stat(); err == nil {
			return wasiFiletypeOf(st.Type)
		}
	}
	return wasiFiletypeUnknown
}

func wasiFDFdstatGet(g *Guest, m api.Memory, p []uint64) Errno {
	c, err := g.table.Acquire(uint32(p[0]), 0, 0)
	if err != nil {
		return caps.ErrnoOf(err)
	}
	defer c.Release()
	base, inh := c.Rights()
	var b [wasiFdstatSize]byte
	b[0] = wasiFiletype(c)
	binary.LittleEndian.PutUint16(b[2:], uint16(c.Flags()&wasiFdflagsAll))
	binary.LittleEndian.PutUint64(b[8:], WASIRightsOf(base))
	binary.LittleEndian.PutUint64(b[16:], WASIRightsOf(inh))
	return writeBytes(m, uint32(p[1]), b[:])
}

// wasiFDFdstatSetFlags changes the fd flags. APPEND takes effect on the
// host file (it is the open file's flag, shared by every handle on it, as
// in POSIX); NONBLOCK is the capability's own flag, which every waiting
// call in both ABIs consults. The synchronised-I/O flags cannot be changed
// after open on Linux, so asking to change them is ENOTSUP rather than a
// silent loss of durability.
func wasiFDFdstatSetFlags(g *Guest, m api.Memory, p []uint64) Errno {
	c, err := g.table.Acquire(uint32(p[0]), caps.RightFDStatPutFlags, 0)
	if err != nil {
		return caps.ErrnoOf(err)
	}
	defer c.Release()
	fl := uint32(p[1])
	if fl&^wasiFdflagsAll != 0 {
		return caps.EINVAL
	}
	const syncFlags = caps.FlagDsync | caps.FlagRsync | caps.FlagSync
	old := c.Flags()
	if (fl^old)&syncFlags != 0 {
		return caps.ENOTSUP
	}
	if (fl^old)&caps.FlagAppend != 0 {
		f, ok := c.Resource().(*caps.File)
		if !ok {
			return caps.ENOTSUP
		}
		if err := f.SetAppend(fl&caps.FlagAppend != 0); err != nil {
			return caps.ErrnoOf(err)
		}
	}
	c.SetFlags(fl)
	return 0
}

// wasiFDFdstatSetRights narrows a handle to the WASI rights asked for.
// Asking for a WASI right the handle does not show in fd_fdstat_get is
// ENOTCAPABLE and changes nothing. The result holds exactly the
// translation of what was asked, so rights WASI has no name for are
// dropped: a WASI caller cannot ask to keep what it cannot name.
func wasiFDFdstatSetRights(g *Guest, m api.Memory, p []uint64) Errno {
	c, err := g.table.Acquire(uint32(p[0]), 0, 0)
	if err != nil {
		return caps.ErrnoOf(err)
	}
	defer c.Release()
	base, inh := c.Rights()
	wb, wi := p[1], p[2]
	if wb&^WASIRightsOf(base) != 0 || wi&^WASIRightsOf(inh) != 0 {
		return caps.ENOTCAPABLE
	}
	return caps.ErrnoOf(c.Narrow(RightsOfWASI(wb)&base, RightsOfWASI(wi)&inh))
}

func wasiFDFilestatGet(g *Guest, m api.Memory, p []uint64) Errno {
	c, err := g.table.Acquire(uint32(p[0]), caps.RightFileStatFGet, 0)
	if err != nil {
		return caps.ErrnoOf(err)
	}
	defer c.Release()
	s, ok := c.Resource().(caps.Stater)
	if !ok {
		return caps.EBADF
	}
	st, err := s.Stat()
	if err != nil {
		return caps.ErrnoOf(err)
	}
	b := wasiFilestat(st)
	return writeBytes(m, uint32(p[1]), b[:])
}

func wasiFDFilestatSetSize(g *Guest, m api.Memory, p []uint64) Errno {
	c, err := g.table.Acquire(uint32(p[0]), caps.RightFileStatFPutSize, 0)
	if err != nil {
		return caps.ErrnoOf(err)
	}
	defer c.Release()
	if int64(p[1]) < 0 {
		return caps.EINVAL
	}
	t, ok := c.Resource().(caps.Truncater)
	if !ok {
		return wasiNotAFile(c)
	}
	return caps.ErrnoOf(t.Truncate(int64(p[1])))
}

// wasiTimes decodes fst_flags into the times to set; nil leaves one
// unchanged.
func wasiTimes(atim, mtim uint64, fl uint32) (a, mt *time.Time, e Errno) {
	if fl&^wasiFstflagsAll != 0 ||
		fl&(wasiFstflagsAtim|wasiFstflagsAtimNow) == wasiFstflagsAtim|wasiFstflagsAtimNow ||
		fl&(wasiFstflagsMtim|wasiFstflagsMtimNow) == wasiFstflagsMtim|wasiFstflagsMtimNow {
		return nil, nil, caps.EINVAL
	}
	now := time.Now()
	pick := func(set, setNow uint32, v uint64) *time.Time {
		switch {
		case fl&setNow != 0:
			return &now
		case fl&set != 0:
			t := time.Unix(0, int64(v))
			return &t
		}
		return nil
	}
	return pick(wasiFstflagsAtim, wasiFstflagsAtimNow, atim), pick(wasiFstflagsMtim, wasiFstflagsMtimNow, mtim), 0
}

func wasiFDFilestatSetTimes(g *Guest, m api.Memory, p []uint64) Errno {
	c, err := g.table.Acquire(uint32(p[0]), caps.RightFileStatFPutTimes, 0)
	if err != nil {
		return caps.ErrnoOf(err)
	}
	defer c.Release()
	a, mt, e := wasiTimes(p[1], p[2], uint32(p[3]))
	if e != 0 {
		return e
	}
	t, ok := c.Resource().(caps.Timeser)
	if !ok {
		return caps.EBADF
	}
	if a == nil && mt == nil {
		return 0
	}
	return caps.ErrnoOf(t.SetTimes(a, mt))
}

func wasiFDPread(g *Guest, m api.Memory, p []uint64) Errno {
	c, err := g.table.Acquire(uint32(p[0]), caps.RightFDRead|caps.RightFDSeek, 0)
	if err != nil {
		return wasiReadErrno(g, uint32(p[0]), err)
	}
	defer c.Release()
	off := int64(p[3])
	if off < 0 {
		return caps.EINVAL
	}
	iov, e := iovecs(m, uint32(p[1]), uint32(p[2]))
	if e != 0 {
		return e
	}
	pos, ok := c.Resource().(caps.Positional)
	if !ok {
		return wasiNotAFile(c)
	}
	total := 0
	for _, b := range iov {
		if len(b) == 0 {
			continue
		}
		n, err := pos.ReadAt(b, off+int64(total))
		total += n
		if err != nil {
			if total > 0 {
				break
			}
			return caps.ErrnoOf(err)
		}
		if n < len(b) {
			break
		}
	}
	return writeU32(m, uint32(p[4]), uint32(total))
}

func wasiFDPwrite(g *Guest, m api.Memory, p []uint64) Errno {
	c, err := g.table.Acquire(uint32(p[0]), caps.RightFDWrite|caps.RightFDSeek, 0)
	if err != nil {
		return wasiReadErrno(g, uint32(p[0]), err)
	}
	defer c.Release()
	off := int64(p[3])
	if off < 0 {
		return caps.EINVAL
	}
	iov, e := iovecs(m, uint32(p[1]), uint32(p[2]))
	if e != 0 {
		return e
	}
	pos, ok := c.Resource().(caps.Positional)
	if !ok {
		return wasiNotAFile(c)
	}
	total := 0
	for _, b := range iov {
		if len(b) == 0 {
			continue
		}
		if off+int64(total) > math.MaxInt64-int64(len(b)) {
			return caps.EFBIG
		}
		n, err := pos.WriteAt(b, off+int64(total))
		total += n
		if err != nil {
			if total > 0 {
				break
			}
			return caps.ErrnoOf(err)
		}
	}
	return writeU32(m, uint32(p[4]), uint32(total))
}

// wasiReadErrno refines a failed lookup for a read or write: a directory
// has no fd_read right in any grant, and POSIX programs expect EISDIR for
// reading one, not a capability error.
func wasiReadErrno(g *Guest, fd uint32, err error) Errno {
	e := caps.ErrnoOf(err)
	if e == caps.ENOTCAPABLE {
		if c, gerr := g.table.Get(fd); gerr == nil && !c.Revoked() && c.Kind() == caps.KindDirectory {
			return caps.EISDIR
		}
	}
	return e
}

func wasiFDRead(g *Guest, m api.Memory, p []uint64) Errno {
	e := fdRead(g, m, p)
	if e == caps.ENOTCAPABLE {
		return wasiReadErrno(g, uint32(p[0]), e)
	}
	return e
}

// wasiFDPrestatGet describes fd as a preopen. wasi-libc and Go probe fds
// from 3 upward and stop at the first EBADF; any other error aborts
// wasi-libc's startup. So every open handle answers: a directory that has
// a name is a preopen under that name, and anything else reports a tag
// other than DIR, which both libraries skip. This keeps directories
// granted after a socket or channel visible.
func wasiFDPrestatGet(g *Guest, m api.Memory, p []uint64) Errno {
	c, err := g.table.Get(uint32(p[0]))
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
	return writeBytes(m, uint32(p[1]), b[:])
}

func preopenName(c *caps.Cap) (string, bool) {
	if c.Kind() != caps.KindDirectory || c.Name() == "" || c.Revoked() {
		return "", false
	}
	return c.Name(), true
}

func wasiFDPrestatDirName(g *Guest, m api.Memory, p []uint64) Errno {
	c, err := g.table.Get(uint32(p[0]))
	if err != nil {
		return caps.ErrnoOf(err)
	}
	name, ok := preopenName(c)
	if !ok {
		return caps.ENOTDIR
	}
	if uint32(p[2]) < uint32(len(name)) {
		return caps.ENAMETOOLONG
	}
	return writeBytes(m, uint32(p[1]), []byte(name))
}

// wasiFDReaddir fills buf with dirents starting at entry number cookie.
// Cookie 0 takes a fresh listing and later cookies resume it (see
// caps.Dir.ReaddirAt), so a listing read in many calls is one snapshot
// and costs one directory scan. Entries are encoded straight into the guest's buffer (bounds-checked
// once), so the host allocates nothing in proportion to buf_len. The last
// entry may be cut off; bufused == buf_len tells the caller to continue.
func wasiFDReaddir(g *Guest, m api.Memory, p []uint64) Errno {
	c, err := g.table.Acquire(uint32(p[0]), caps.RightFileReaddir, 0)
	if err != nil {
		return caps.ErrnoOf(err)
	}
	defer c.Release()
	buf, e := read(m, uint32(p[1]), uint32(p[2]))
	if e != 0 {
		return e
	}
	d, ok := c.Resource().(*caps.Dir)
	if !ok {
		return caps.ENOTDIR
	}
	cookie := p[3]
	ents, err := d.ReaddirAt(cookie)
	if err != nil {
		return caps.ErrnoOf(err)
	}
	used := 0
	for i := 0; i < len(ents) && used < len(buf); i++ {
		ent := ents[i]
		var h [wasiDirentSize]byte
		binary.LittleEndian.PutUint64(h[0:], cookie+uint64(i)+1)
		binary.LittleEndian.PutUint64(h[8:], ent.Ino)
		binary.LittleEndian.PutUint32(h[16:], uint32(len(ent.Name)))
		h[20] = wasiFiletypeOf(ent.Type)
		used += copy(buf[used:], h[:])
		used += copy(buf[used:], ent.Name)
	}
	return writeU32(m, uint32(p[4]), uint32(used))
}

// wasiFDRenumber moves the capability at fd to to, closing what to held.
// It does not derive anything: the handle keeps its identity and rights,
// only its number changes.
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
		// Only the guest itself changes its table, and it runs one call
		// at a time, so to cannot have closed since it was checked.
		g.kernel.Close(c)
		return caps.ErrnoOf(err)
	}
	return 0
}

func wasiFDSeek(g *Guest, m api.Memory, p []uint64) Errno {
	fd, off, whence := uint32(p[0]), int64(p[1]), uint32(p[2])
	need := caps.RightFDSeek
	if whence == wasiWhenceCur && off == 0 {
		need = caps.RightFDTell
	}
	if whence > wasiWhenceEnd {
		return caps.EINVAL
	}
	return wasiSeek(g, m, fd, off, int(whence), need, uint32(p[3]))
}

func wasiFDTell(g *Guest, m api.Memory, p []uint64) Errno {
	return wasiSeek(g, m, uint32(p[0]), 0, io.SeekCurrent, caps.RightFDTell, uint32(p[1]))
}

// wasiSeek moves or reads a handle's offset. FD_SEEK implies FD_TELL
// (CloudABI's rule), so a handle with either may report its offset.
func wasiSeek(g *Guest, m api.Memory, fd uint32, off int64, whence int, need caps.Rights, out uint32) Errno {
	c, err := g.table.Acquire(fd, 0, 0)
	if err != nil {
		return caps.ErrnoOf(err)
	}
	defer c.Release()
	pos, ok := c.Resource().(caps.Positional)
	if !ok {
		if c.Kind() == caps.KindDirectory {
			return caps.EISDIR
		}
		return caps.ESPIPE
	}
	base, _ := c.Rights()
	if !base.Has(need) && !(need == caps.RightFDTell && base.Has(caps.RightFDSeek)) {
		return caps.ENOTCAPABLE
	}
	n, err := pos.Seek(off, whence)
	if err != nil {
		return caps.ErrnoOf(err)
	}
	return writeU64(m, out, uint64(n))
}
