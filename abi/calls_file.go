package abi

import (
	"math"
	"time"

	"github.com/sandboxd/sandboxd/caps"
	"github.com/tetratelabs/wazero/api"
)

// The file family: path operations beneath a directory handle, and
// operations on a file's contents and metadata. Paths are (pointer,
// length), not NUL-terminated, and resolve beneath the directory handle
// only (caps.Dir): absolute paths, ".." above it and symbolic links that
// lead out fail with ENOTCAPABLE. Rights are checked as CLOUDABI.md's table
// says, on the directory handle for path calls.

// Flags of the file family, CloudABI's values.
const (
	lookupSymlinkFollow = 0x1

	oflagCreat     = 0x1
	oflagDirectory = 0x2
	oflagExcl      = 0x4
	oflagTrunc     = 0x8
	oflagsAll      = oflagCreat | oflagDirectory | oflagExcl | oflagTrunc

	fsAtim    = 0x01
	fsAtimNow = 0x02
	fsMtim    = 0x04
	fsMtimNow = 0x08
	fsSize    = 0x10
	fsTimes   = fsAtim | fsAtimNow | fsMtim | fsMtimNow

	unlinkRemovedir = 0x01

	adviceDontneed = 1
	adviceWillneed = 6
)

// lookupFollow decodes a lookup's flags: whether a final symbolic link is
// followed. Unknown bits are EINVAL.
func lookupFollow(flags uint32) (bool, Errno) {
	if flags&^lookupSymlinkFollow != 0 {
		return false, caps.EINVAL
	}
	return flags&lookupSymlinkFollow != 0, 0
}

// dirAt acquires fd for a path call that needs right on the directory,
// then reads the path argument. The handle is looked up first, so a guest
// naming a handle it does not hold learns EBADF whatever else it passed.
// On success the caller must Release the capability.
func (g *Guest) dirAt(m api.Memory, fd uint32, right caps.Rights, ptr, n uint32) (*caps.Cap, *caps.Dir, string, Errno) {
	c, err := g.table.Acquire(fd, right, 0)
	if err != nil {
		return nil, nil, "", caps.ErrnoOf(err)
	}
	d, ok := c.Resource().(*caps.Dir)
	if !ok {
		c.Release()
		return nil, nil, "", caps.ENOTDIR
	}
	path, e := readString(m, ptr, n)
	if e != 0 {
		c.Release()
		return nil, nil, "", e
	}
	return c, d, path, 0
}

// openRequest is what file_open asks for, in capability terms.
type openRequest struct {
	path             string
	follow           bool
	oflags           uint32
	base, inheriting caps.Rights
	fdflags          uint32
}

// openBeneath opens r.path beneath dir, a capability the caller holds
// acquired, with CloudABI's file_open rules (CLOUDABI.md §2.4):
//
//   - dir needs FILE_OPEN, and FILE_CREATE_FILE with CREAT;
//   - every right asked for (base and inheriting) must be in dir's
//     inheriting rights, plus FILE_STAT_FPUT_SIZE with TRUNC, FD_DATASYNC
//     with DSYNC, FD_SYNC with RSYNC or SYNC, and FD_SEEK when writing
//     without APPEND or TRUNC; otherwise ENOTCAPABLE and nothing is opened;
//   - the host object is opened for reading if a right that reads is asked
//     for, for writing if a right that modifies contents is, never wider;
//   - the new handle is a child capability of dir holding what was asked
//     for, less what does not apply to the kind of object opened.
func (g *Guest) openBeneath(dir *caps.Cap, r openRequest) (*caps.Cap, Errno) {
	if r.oflags&^oflagsAll != 0 || r.fdflags&^fdFlagsAll != 0 {
		return nil, caps.EINVAL
	}
	needBase := caps.RightFileOpen
	needInh := r.base | r.inheriting
	if r.oflags&oflagCreat != 0 {
		needBase |= caps.RightFileCreateFile
	}
	if r.oflags&oflagTrunc != 0 {
		needInh |= caps.RightFileStatFPutSize
	}
	if r.fdflags&caps.FlagDsync != 0 {
		needInh |= caps.RightFDDatasync
	}
	if r.fdflags&(caps.FlagRsync|caps.FlagSync) != 0 {
		needInh |= caps.RightFDSync
	}
	read := r.base&(caps.RightFDRead|caps.RightFileReaddir|caps.RightMemMapExec) != 0
	write := r.base&(caps.RightFDDatasync|caps.RightFDWrite|caps.RightFileAllocate|caps.RightFileStatFPutSize) != 0
	if write && r.fdflags&caps.FlagAppend == 0 && r.oflags&oflagTrunc == 0 {
		needInh |= caps.RightFDSeek
	}
	if err := dir.Check(needBase, needInh); err != nil {
		return nil, caps.ErrnoOf(err)
	}
	d, ok := dir.Resource().(*caps.Dir)
	if !ok {
		return nil, caps.ENOTDIR
	}
	res, err := d.Open(r.path, caps.OpenFlags{
		Read:      read,
		Write:     write,
		Create:    r.oflags&oflagCreat != 0,
		Excl:      r.oflags&oflagExcl != 0,
		Trunc:     r.oflags&oflagTrunc != 0,
		Directory: r.oflags&oflagDirectory != 0,
		Append:    r.fdflags&caps.FlagAppend != 0,
		Sync:      r.fdflags&(caps.FlagDsync|caps.FlagRsync|caps.FlagSync) != 0,
		NoFollow:  !r.follow,
	})
	if err != nil {
		return nil, caps.ErrnoOf(err)
	}
	nc, err := g.kernel.Derive(dir, caps.Derivation{
		Holder: g.holder, Edge: caps.EdgeOpen, Name: r.path,
		Base: r.base, Inheriting: r.inheriting, Resource: res,
	})
	if err != nil {
		return nil, caps.ErrnoOf(err)
	}
	nc.SetFlags(r.fdflags)
	return nc, 0
}

func fileOpen(g *Guest, m api.Memory, p []uint64) Errno {
	follow, e := lookupFollow(uint32(p[1]))
	if e != 0 {
		return e
	}
	c, _, path, e := g.dirAt(m, uint32(p[0]), caps.RightFileOpen, uint32(p[2]), uint32(p[3]))
	if e != 0 {
		return e
	}
	defer c.Release()
	req, e := readFdstat(m, uint32(p[5]))
	if e != 0 {
		return e
	}
	nc, e := g.openBeneath(c, openRequest{
		path: path, follow: follow, oflags: uint32(p[4]),
		base: req.base, inheriting: req.inheriting, fdflags: uint32(req.flags),
	})
	if e != 0 {
		return e
	}
	return g.install(m, nc, uint32(p[6]))
}

func fileCreate(g *Guest, m api.Memory, p []uint64) Errno {
	if uint32(p[3]) != filetypeDirectory {
		return caps.EINVAL
	}
	c, d, path, e := g.dirAt(m, uint32(p[0]), caps.RightFileCreateDir, uint32(p[1]), uint32(p[2]))
	if e != 0 {
		return e
	}
	defer c.Release()
	return caps.ErrnoOf(d.Mkdir(path))
}

func fileUnlink(g *Guest, m api.Memory, p []uint64) Errno {
	flags := uint32(p[3])
	if flags&^unlinkRemovedir != 0 {
		return caps.EINVAL
	}
	c, d, path, e := g.dirAt(m, uint32(p[0]), caps.RightFileUnlink, uint32(p[1]), uint32(p[2]))
	if e != 0 {
		return e
	}
	defer c.Release()
	return caps.ErrnoOf(d.Unlink(path, flags&unlinkRemovedir != 0))
}

func fileLink(g *Guest, m api.Memory, p []uint64) Errno {
	follow, e := lookupFollow(uint32(p[1]))
	if e != 0 {
		return e
	}
	c1, d1, path1, e := g.dirAt(m, uint32(p[0]), caps.RightFileLinkSource, uint32(p[2]), uint32(p[3]))
	if e != 0 {
		return e
	}
	defer c1.Release()
	c2, d2, path2, e := g.dirAt(m, uint32(p[4]), caps.RightFileLinkTarget, uint32(p[5]), uint32(p[6]))
	if e != 0 {
		return e
	}
	defer c2.Release()
	if follow {
		return caps.ErrnoOf(d1.LinkFollow(path1, d2, path2))
	}
	return caps.ErrnoOf(d1.Link(path1, d2, path2))
}

func fileRename(g *Guest, m api.Memory, p []uint64) Errno {
	c1, d1, path1, e := g.dirAt(m, uint32(p[0]), caps.RightFileRenameSource, uint32(p[1]), uint32(p[2]))
	if e != 0 {
		return e
	}
	defer c1.Release()
	c2, d2, path2, e := g.dirAt(m, uint32(p[3]), caps.RightFileRenameTarget, uint32(p[4]), uint32(p[5]))
	if e != 0 {
		return e
	}
	defer c2.Release()
	return caps.ErrnoOf(d1.Rename(path1, d2, path2))
}

func fileSymlink(g *Guest, m api.Memory, p []uint64) Errno {
	c, d, path, e := g.dirAt(m, uint32(p[2]), caps.RightFileSymlink, uint32(p[3]), uint32(p[4]))
	if e != 0 {
		return e
	}
	defer c.Release()
	target, e := readString(m, uint32(p[0]), uint32(p[1]))
	if e != 0 {
		return e
	}
	if target == "" {
		return caps.ENOENT
	}
	return caps.ErrnoOf(d.Symlink(target, path))
}

// fileReadlink copies the link's contents into buf, truncated to buf_len
// as readlink(2) does, and reports how many bytes it copied.
func fileReadlink(g *Guest, m api.Memory, p []uint64) Errno {
	c, d, path, e := g.dirAt(m, uint32(p[0]), caps.RightFileReadlink, uint32(p[1]), uint32(p[2]))
	if e != 0 {
		return e
	}
	defer c.Release()
	buf, e := read(m, uint32(p[3]), uint32(p[4]))
	if e != 0 {
		return e
	}
	target, err := d.Readlink(path)
	if err != nil {
		return caps.ErrnoOf(err)
	}
	return writeU32(m, uint32(p[5]), uint32(copy(buf, target)))
}

// fileReaddir fills buf with dirents from entry number cookie on.
var fileReaddir = readdirWith(cloudabiFiletype)

// readdirWith returns the readdir handler of an ABI whose dirents differ
// only in their filetype numbering (file_readdir, WASI's fd_readdir):
// params (fd, buf, buf_len, cookie, bufused_out). Entries are encoded
// straight into the guest's buffer (bounds-checked once), so the host
// allocates nothing in proportion to buf_len; the last entry may be cut
// off, and bufused < buf_len means the listing ended.
func readdirWith(typeOf func(caps.FileType) uint8) handler {
	return func(g *Guest, m api.Memory, p []uint64) Errno {
		c, err := g.table.Acquire(uint32(p[0]), caps.RightFileReaddir, 0)
		if err != nil {
			return caps.ErrnoOf(err)
		}
		defer c.Release()
		d, ok := c.Resource().(*caps.Dir)
		if !ok {
			return caps.ENOTDIR
		}
		buf, e := read(m, uint32(p[1]), uint32(p[2]))
		if e != 0 {
			return e
		}
		cookie := p[3]
		ents, err := d.ReaddirAt(cookie)
		if err != nil {
			return caps.ErrnoOf(err)
		}
		n := encodeDirents(buf, ents, cookie, typeOf)
		return writeU32(m, uint32(p[4]), uint32(n))
	}
}

// statOfCap reports on the object behind c; a resource without metadata
// of its own (a stream) reports its type and zeros.
func statOfCap(c *caps.Cap) (caps.FileStat, Errno) {
	s, ok := c.Resource().(caps.Stater)
	if !ok {
		return caps.FileStat{Type: fileTypeOf(c)}, 0
	}
	st, err := s.Stat()
	if err != nil {
		return caps.FileStat{}, caps.ErrnoOf(err)
	}
	if st.Type == caps.TypeUnknown {
		st.Type = fileTypeOf(c)
	}
	return st, 0
}

func fileStatFget(g *Guest, m api.Memory, p []uint64) Errno {
	c, err := g.table.Acquire(uint32(p[0]), caps.RightFileStatFGet, 0)
	if err != nil {
		return caps.ErrnoOf(err)
	}
	defer c.Release()
	st, e := statOfCap(c)
	if e != 0 {
		return e
	}
	return writeFilestat(m, uint32(p[1]), st)
}

func fileStatGet(g *Guest, m api.Memory, p []uint64) Errno {
	follow, e := lookupFollow(uint32(p[1]))
	if e != 0 {
		return e
	}
	c, d, path, e := g.dirAt(m, uint32(p[0]), caps.RightFileStatGet, uint32(p[2]), uint32(p[3]))
	if e != 0 {
		return e
	}
	defer c.Release()
	st, err := d.StatAt(path, follow)
	if err != nil {
		return caps.ErrnoOf(err)
	}
	return writeFilestat(m, uint32(p[4]), st)
}

// statTimes decodes the time flags of file_stat_fput/file_stat_put into
// the times to set (nil: leave alone). A time and its _NOW form together
// are EINVAL.
func statTimes(fs filestatIn, flags uint32) (atime, mtime *time.Time, e Errno) {
	if flags&(fsAtim|fsAtimNow) == fsAtim|fsAtimNow || flags&(fsMtim|fsMtimNow) == fsMtim|fsMtimNow {
		return nil, nil, caps.EINVAL
	}
	var now time.Time
	if flags&(fsAtimNow|fsMtimNow) != 0 {
		now = time.Now()
	}
	at := func(set, setNow uint32, ns uint64) (*time.Time, Errno) {
		switch {
		case flags&setNow != 0:
			return &now, 0
		case flags&set != 0:
			if ns > math.MaxInt64 {
				return nil, caps.EINVAL
			}
			t := time.Unix(0, int64(ns))
			return &t, 0
		}
		return nil, 0
	}
	if atime, e = at(fsAtim, fsAtimNow, fs.atim); e != 0 {
		return nil, nil, e
	}
	if mtime, e = at(fsMtim, fsMtimNow, fs.mtim); e != 0 {
		return nil, nil, e
	}
	return atime, mtime, 0
}

// fileStatFput truncates (SIZE, with FILE_STAT_FPUT_SIZE) or sets times
// (with FILE_STAT_FPUT_TIMES): one or the other, never both, and not
// nothing (EINVAL), as CloudABI's emulator and FreeBSD do.
func fileStatFput(g *Guest, m api.Memory, p []uint64) Errno {
	fd, ptr, flags := uint32(p[0]), uint32(p[1]), uint32(p[2])
	var need caps.Rights
	switch {
	case flags == fsSize:
		need = caps.RightFileStatFPutSize
	case flags != 0 && flags&^fsTimes == 0:
		need = caps.RightFileStatFPutTimes
	default:
		return caps.EINVAL
	}
	c, err := g.table.Acquire(fd, need, 0)
	if err != nil {
		return caps.ErrnoOf(err)
	}
	defer c.Release()
	in, e := readFilestat(m, ptr)
	if e != 0 {
		return e
	}
	if flags == fsSize {
		t, ok := c.Resource().(caps.Truncater)
		if !ok {
			return caps.EINVAL
		}
		if in.size > math.MaxInt64 {
			return caps.EFBIG
		}
		return caps.ErrnoOf(t.Truncate(int64(in.size)))
	}
	a, mt, e := statTimes(in, flags)
	if e != 0 {
		return e
	}
	t, ok := c.Resource().(caps.Timeser)
	if !ok {
		return caps.EINVAL
	}
	return caps.ErrnoOf(t.SetTimes(a, mt))
}

// fileStatPut sets the times of a path (there is no truncate-by-path).
func fileStatPut(g *Guest, m api.Memory, p []uint64) Errno {
	follow, e := lookupFollow(uint32(p[1]))
	if e != 0 {
		return e
	}
	flags := uint32(p[5])
	if flags == 0 || flags&^fsTimes != 0 {
		return caps.EINVAL
	}
	c, d, path, e := g.dirAt(m, uint32(p[0]), caps.RightFileStatPutTimes, uint32(p[2]), uint32(p[3]))
	if e != 0 {
		return e
	}
	defer c.Release()
	in, e := readFilestat(m, uint32(p[4]))
	if e != 0 {
		return e
	}
	a, mt, e := statTimes(in, flags)
	if e != 0 {
		return e
	}
	if follow {
		return caps.ErrnoOf(d.SetTimesAt(path, a, mt))
	}
	return caps.ErrnoOf(d.LsetTimesAt(path, a, mt))
}

// fileAdvise validates the advice (1 DONTNEED … 6 WILLNEED) and range and
// otherwise ignores it: advice is a hint, and none changes what a call
// returns.
func fileAdvise(g *Guest, m api.Memory, p []uint64) Errno {
	c, err := g.table.Acquire(uint32(p[0]), caps.RightFileAdvise, 0)
	if err != nil {
		return caps.ErrnoOf(err)
	}
	c.Release()
	if a := uint32(p[3]); a < adviceDontneed || a > adviceWillneed {
		return caps.EINVAL
	}
	if p[1] > math.MaxInt64 || p[2] > math.MaxInt64 {
		return caps.EINVAL
	}
	return 0
}

// fileAllocate makes sure [offset, offset+len) is allocated, growing the
// file when it is shorter (posix_fallocate).
func fileAllocate(g *Guest, m api.Memory, p []uint64) Errno {
	c, err := g.table.Acquire(uint32(p[0]), caps.RightFileAllocate, 0)
	if err != nil {
		return caps.ErrnoOf(err)
	}
	defer c.Release()
	off, n := p[1], p[2]
	if n == 0 || off > math.MaxInt64 || n > math.MaxInt64 {
		return caps.EINVAL
	}
	if off+n > math.MaxInt64 {
		return caps.EFBIG
	}
	a, ok := c.Resource().(caps.Allocator)
	if !ok {
		return caps.EINVAL
	}
	return caps.ErrnoOf(a.Allocate(int64(off), int64(n)))
}
