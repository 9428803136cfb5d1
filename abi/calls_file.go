package abi

import (
	"math"
	"time"

	"github.com/sandboxd/sandboxd/caps"
	"github.com/tetratelabs/wazero/api"
	"golang.org/x/sys/unix"
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

// dirAt acquires fd for a path call that needs need on the directory,
// then reads the path argument. The handle is looked up first, so a guest
// naming a handle it does not hold learns EBADF whatever else it passed.
// On success the caller must Release the capability.
func (g *Guest) dirAt(m api.Memory, fd uint32, need caps.Rights, ptr, n uint32) (*caps.Cap, *caps.Dir, string, Errno) {
	c, e := g.acquire(fd, need)
	if e != 0 {
		return nil, nil, "", e
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

// dirLookup is how an ABI's path calls find their directory: dirAt for
// the native ABI, and for WASI its guard wasiDirAt. The path calls both
// ABIs share take one.
type dirLookup func(g *Guest, m api.Memory, fd uint32, need caps.Rights, ptr, n uint32) (*caps.Cap, *caps.Dir, string, Errno)

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
	if e := g.roomFor(1); e != 0 {
		return nil, e // before the open creates or truncates anything
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
	dirfd, lookupFlags, path, pathLen := uint32(p[0]), uint32(p[1]), uint32(p[2]), uint32(p[3])
	oflags, fdstatIn, fdOut := uint32(p[4]), uint32(p[5]), uint32(p[6])
	follow, e := lookupFollow(lookupFlags)
	if e != 0 {
		return e
	}
	c, _, name, e := g.dirAt(m, dirfd, caps.RightFileOpen, path, pathLen)
	if e != 0 {
		return e
	}
	defer c.Release()
	req, e := readFdstat(m, fdstatIn)
	if e != 0 {
		return e
	}
	// fd_out is checked before the open: an open that creates or
	// truncates the file must not happen for a call that then fails.
	if e := outInBounds(m, fdOut, 4); e != 0 {
		return e
	}
	nc, e := g.openBeneath(c, openRequest{
		path: name, follow: follow, oflags: oflags,
		base: req.base, inheriting: req.inheriting, fdflags: uint32(req.flags),
	})
	if e != 0 {
		return e
	}
	return g.install(m, nc, fdOut)
}

// fileCreate creates a directory: the one type file_create makes.
func fileCreate(g *Guest, m api.Memory, p []uint64) Errno {
	fd, path, pathLen, typ := uint32(p[0]), uint32(p[1]), uint32(p[2]), uint32(p[3])
	if typ != filetypeDirectory {
		return caps.EINVAL
	}
	return mkdirAt(g, m, (*Guest).dirAt, fd, path, pathLen)
}

// mkdirAt creates the directory path beneath fd: file_create and WASI's
// path_create_directory.
func mkdirAt(g *Guest, m api.Memory, at dirLookup, fd, path, pathLen uint32) Errno {
	c, d, name, e := at(g, m, fd, caps.RightFileCreateDir, path, pathLen)
	if e != 0 {
		return e
	}
	defer c.Release()
	return caps.ErrnoOf(d.Mkdir(name))
}

func fileUnlink(g *Guest, m api.Memory, p []uint64) Errno {
	fd, path, pathLen, flags := uint32(p[0]), uint32(p[1]), uint32(p[2]), uint32(p[3])
	if flags&^unlinkRemovedir != 0 {
		return caps.EINVAL
	}
	return unlinkAt(g, m, (*Guest).dirAt, fd, path, pathLen, flags&unlinkRemovedir != 0)
}

// unlinkAt removes path beneath fd, an empty directory with removeDir and
// anything else without: file_unlink and WASI's path_unlink_file and
// path_remove_directory.
func unlinkAt(g *Guest, m api.Memory, at dirLookup, fd, path, pathLen uint32, removeDir bool) Errno {
	c, d, name, e := at(g, m, fd, caps.RightFileUnlink, path, pathLen)
	if e != 0 {
		return e
	}
	defer c.Release()
	return caps.ErrnoOf(d.Unlink(name, removeDir))
}

// fileLink links path2 beneath fd2 to path1 beneath fd1. Unknown lookup
// flags are EINVAL.
func fileLink(g *Guest, m api.Memory, p []uint64) Errno {
	lookupFlags := uint32(p[1])
	follow, e := lookupFollow(lookupFlags)
	if e != 0 {
		return e
	}
	return linkPaths(g, m, p, (*Guest).dirAt, follow)
}

// linkPaths is file_link and WASI's path_link once the lookup flags are
// decoded (follow: a final symbolic link in path1 is followed). Both take
// (fd1, lookup_flags, *path1, path1_len, fd2, *path2, path2_len).
func linkPaths(g *Guest, m api.Memory, p []uint64, at dirLookup, follow bool) Errno {
	fd1, path1, path1Len := uint32(p[0]), uint32(p[2]), uint32(p[3])
	fd2, path2, path2Len := uint32(p[4]), uint32(p[5]), uint32(p[6])
	c1, d1, name1, e := at(g, m, fd1, caps.RightFileLinkSource, path1, path1Len)
	if e != 0 {
		return e
	}
	defer c1.Release()
	c2, d2, name2, e := at(g, m, fd2, caps.RightFileLinkTarget, path2, path2Len)
	if e != 0 {
		return e
	}
	defer c2.Release()
	if follow {
		return caps.ErrnoOf(d1.LinkFollow(name1, d2, name2))
	}
	return caps.ErrnoOf(d1.Link(name1, d2, name2))
}

func fileRename(g *Guest, m api.Memory, p []uint64) Errno {
	return renamePaths(g, m, p, (*Guest).dirAt)
}

// renamePaths is file_rename and WASI's path_rename, which both take
// (fd1, *path1, path1_len, fd2, *path2, path2_len).
func renamePaths(g *Guest, m api.Memory, p []uint64, at dirLookup) Errno {
	fd1, path1, path1Len := uint32(p[0]), uint32(p[1]), uint32(p[2])
	fd2, path2, path2Len := uint32(p[3]), uint32(p[4]), uint32(p[5])
	c1, d1, name1, e := at(g, m, fd1, caps.RightFileRenameSource, path1, path1Len)
	if e != 0 {
		return e
	}
	defer c1.Release()
	c2, d2, name2, e := at(g, m, fd2, caps.RightFileRenameTarget, path2, path2Len)
	if e != 0 {
		return e
	}
	defer c2.Release()
	return caps.ErrnoOf(d1.Rename(name1, d2, name2))
}

func fileSymlink(g *Guest, m api.Memory, p []uint64) Errno {
	return symlinkAt(g, m, p, (*Guest).dirAt, false)
}

// symlinkAt is file_symlink and WASI's path_symlink, which both take
// (*path1, path1_len, fd, *path2, path2_len): it creates path2 beneath fd,
// a symbolic link to path1. An empty target is ENOENT; with noAbsolute an
// absolute one is EPERM.
func symlinkAt(g *Guest, m api.Memory, p []uint64, at dirLookup, noAbsolute bool) Errno {
	path1, path1Len, fd, path2, path2Len := uint32(p[0]), uint32(p[1]), uint32(p[2]), uint32(p[3]), uint32(p[4])
	c, d, name, e := at(g, m, fd, caps.RightFileSymlink, path2, path2Len)
	if e != 0 {
		return e
	}
	defer c.Release()
	target, e := readString(m, path1, path1Len)
	if e != 0 {
		return e
	}
	if target == "" {
		return caps.ENOENT
	}
	if noAbsolute && target[0] == '/' {
		return caps.EPERM
	}
	return caps.ErrnoOf(d.Symlink(target, name))
}

func fileReadlink(g *Guest, m api.Memory, p []uint64) Errno {
	return readlinkAt(g, m, p, (*Guest).dirAt)
}

// readlinkAt is file_readlink and WASI's path_readlink, which both take
// (fd, *path, path_len, *buf, buf_len, *bufused_out). It copies the
// link's contents into buf, truncated to buf_len as readlink(2) does, and
// reports how many bytes it copied.
func readlinkAt(g *Guest, m api.Memory, p []uint64, at dirLookup) Errno {
	fd, path, pathLen := uint32(p[0]), uint32(p[1]), uint32(p[2])
	buf, bufLen, bufusedOut := uint32(p[3]), uint32(p[4]), uint32(p[5])
	c, d, name, e := at(g, m, fd, caps.RightFileReadlink, path, pathLen)
	if e != 0 {
		return e
	}
	defer c.Release()
	b, e := read(m, buf, bufLen)
	if e != 0 {
		return e
	}
	if e := outInBounds(m, bufusedOut, 4); e != 0 {
		return e // before buf is written
	}
	target, err := d.Readlink(name)
	if err != nil {
		return caps.ErrnoOf(err)
	}
	return writeU32(m, bufusedOut, uint32(copy(b, target)))
}

// fileReaddir fills buf with dirents from entry number cookie on.
var fileReaddir = readdirWith(cloudabiFiletype)

// readdirWith returns the readdir handler of an ABI whose dirents differ
// only in their filetype numbering (file_readdir, WASI's fd_readdir):
// params (fd, buf, buf_len, cookie, bufused_out). Entries are encoded
// straight into the guest's buffer (bounds-checked once), so the host
// allocates nothing in proportion to buf_len; the last entry may be cut
// off, and bufused < buf_len means the listing ended. The listing the
// calls resume from, kept by the directory, is charged to the guest's
// memory and counted against caps.MaxListingMemory (ENOMEM when either
// refuses it).
func readdirWith(typeOf func(caps.FileType) uint8) handler {
	return func(g *Guest, m api.Memory, p []uint64) Errno {
		fd, buf, bufLen, cookie, bufusedOut := uint32(p[0]), uint32(p[1]), uint32(p[2]), p[3], uint32(p[4])
		c, e := g.acquire(fd, caps.RightFileReaddir)
		if e != 0 {
			return e
		}
		defer c.Release()
		d, ok := c.Resource().(*caps.Dir)
		if !ok {
			return caps.ENOTDIR
		}
		b, e := read(m, buf, bufLen)
		if e != 0 {
			return e
		}
		// Checked first: from cookie 0 the call takes a new listing,
		// which a call that fails must not have done.
		if e := outInBounds(m, bufusedOut, 4); e != 0 {
			return e
		}
		ents, err := d.ReaddirAt(cookie, g.tree.memory)
		if err != nil {
			return caps.ErrnoOf(err)
		}
		n := encodeDirents(b, ents, cookie, typeOf)
		return writeU32(m, bufusedOut, uint32(n))
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
	fd, filestatOut := uint32(p[0]), uint32(p[1])
	c, e := g.acquire(fd, caps.RightFileStatFGet)
	if e != 0 {
		return e
	}
	defer c.Release()
	st, e := statOfCap(c)
	if e != 0 {
		return e
	}
	return writeFilestat(m, filestatOut, st)
}

func fileStatGet(g *Guest, m api.Memory, p []uint64) Errno {
	fd, lookupFlags, path, pathLen, filestatOut := uint32(p[0]), uint32(p[1]), uint32(p[2]), uint32(p[3]), uint32(p[4])
	follow, e := lookupFollow(lookupFlags)
	if e != 0 {
		return e
	}
	c, d, name, e := g.dirAt(m, fd, caps.RightFileStatGet, path, pathLen)
	if e != 0 {
		return e
	}
	defer c.Release()
	st, err := d.StatAt(name, follow)
	if err != nil {
		return caps.ErrnoOf(err)
	}
	return writeFilestat(m, filestatOut, st)
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
	fd, filestat, flags := uint32(p[0]), uint32(p[1]), uint32(p[2])
	var need caps.Rights
	switch {
	case flags == fsSize:
		need = caps.RightFileStatFPutSize
	case flags != 0 && flags&^fsTimes == 0:
		need = caps.RightFileStatFPutTimes
	default:
		return caps.EINVAL
	}
	c, e := g.acquire(fd, need)
	if e != 0 {
		return e
	}
	defer c.Release()
	in, e := readFilestat(m, filestat)
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
	fd, lookupFlags, path, pathLen := uint32(p[0]), uint32(p[1]), uint32(p[2]), uint32(p[3])
	filestat, flags := uint32(p[4]), uint32(p[5])
	follow, e := lookupFollow(lookupFlags)
	if e != 0 {
		return e
	}
	if flags == 0 || flags&^fsTimes != 0 {
		return caps.EINVAL
	}
	c, d, name, e := g.dirAt(m, fd, caps.RightFileStatPutTimes, path, pathLen)
	if e != 0 {
		return e
	}
	defer c.Release()
	in, e := readFilestat(m, filestat)
	if e != 0 {
		return e
	}
	a, mt, e := statTimes(in, flags)
	if e != 0 {
		return e
	}
	if follow {
		return caps.ErrnoOf(d.SetTimesAt(name, a, mt))
	}
	return caps.ErrnoOf(d.LsetTimesAt(name, a, mt))
}

// fileAdvise validates the advice (1 DONTNEED … 6 WILLNEED) and length and
// passes it on to the host file (adviseOn). As posix_fadvise(2), it
// refuses a length that is negative as an off_t (EINVAL) but not such an
// offset, which Linux takes.
func fileAdvise(g *Guest, m api.Memory, p []uint64) Errno {
	fd, offset, length, advice := uint32(p[0]), p[1], p[2], uint32(p[3])
	c, e := g.acquire(fd, caps.RightFileAdvise)
	if e != 0 {
		return e
	}
	defer c.Release()
	if advice < adviceDontneed || advice > adviceWillneed {
		return adviseOn(c, offset, length, -1)
	}
	return adviseOn(c, offset, length, cloudabiAdvice[advice-adviceDontneed])
}

// cloudabiAdvice is Linux's advice for CloudABI's, in CloudABI's order:
// DONTNEED, NOREUSE, NORMAL, RANDOM, SEQUENTIAL, WILLNEED.
var cloudabiAdvice = [...]int{unix.FADV_DONTNEED, unix.FADV_NOREUSE, unix.FADV_NORMAL, unix.FADV_RANDOM, unix.FADV_SEQUENTIAL, unix.FADV_WILLNEED}

// adviser is a resource that takes advice about its use: a host file,
// whose kernel answers as posix_fadvise(2) does (ESPIPE for a FIFO).
type adviser interface {
	Advise(off, n int64, advice int) error
}

// adviseOn gives c's resource advice: Linux's POSIX_FADV_* value, or -1
// for advice the ABI does not know. A host file's kernel checks it, after
// what it checks first (ESPIPE for a FIFO). Advice is a hint: a resource
// that takes none (a directory, a byte object) succeeds when the advice
// and the length are valid, as Linux's fadvise of a directory does.
func adviseOn(c *caps.Cap, offset, length uint64, advice int) Errno {
	if a, ok := c.Resource().(adviser); ok {
		return caps.ErrnoOf(a.Advise(int64(offset), int64(length), advice))
	}
	if advice < 0 || length > math.MaxInt64 {
		return caps.EINVAL
	}
	return 0
}

// fileAllocate makes sure [offset, offset+len) is allocated, growing the
// file when it is shorter (posix_fallocate).
func fileAllocate(g *Guest, m api.Memory, p []uint64) Errno {
	fd, offset, length := uint32(p[0]), p[1], p[2]
	c, e := g.acquire(fd, caps.RightFileAllocate)
	if e != 0 {
		return e
	}
	defer c.Release()
	if length == 0 || offset > math.MaxInt64 || length > math.MaxInt64 {
		return caps.EINVAL
	}
	if offset+length > math.MaxInt64 {
		return caps.EFBIG
	}
	a, ok := c.Resource().(caps.Allocator)
	if !ok {
		return caps.EINVAL
	}
	return caps.ErrnoOf(a.Allocate(int64(offset), int64(length)))
}
