package abi

import (
	"github.com/sandboxd/sandboxd/caps"
	"github.com/tetratelabs/wazero/api"
)

// WASI preview1 path_* functions. Paths resolve beneath the directory
// capability named by fd and nowhere else: caps.Dir refuses absolute
// paths, ".." above the directory and symlinks that lead out
// (ENOTCAPABLE), whatever the guest's libc did with the path first.

// wasiNoDir is the directory fd a libc passes when no preopen covers a
// path (Go's syscall package passes -1). No table can hold a handle at
// that number, so it means "a path under no capability": ENOTCAPABLE, the
// answer wasi-libc itself gives for such a path, rather than EBADF.
const wasiNoDir = ^uint32(0)

// wasiDirAt reads a path argument and acquires fd, which must be a
// directory with the rights in need. On success the caller must Release
// the capability.
func wasiDirAt(g *Guest, m api.Memory, fd, ptr, n uint32, need caps.Rights) (*caps.Cap, *caps.Dir, string, Errno) {
	path, e := readString(m, ptr, n)
	if e != 0 {
		return nil, nil, "", e
	}
	if fd == wasiNoDir {
		return nil, nil, "", caps.ENOTCAPABLE
	}
	c, err := g.table.Acquire(fd, need, 0)
	if err != nil {
		return nil, nil, "", caps.ErrnoOf(err)
	}
	d, ok := c.Resource().(*caps.Dir)
	if !ok {
		c.Release()
		return nil, nil, "", caps.ENOTDIR
	}
	return c, d, path, 0
}

func wasiPathCreateDirectory(g *Guest, m api.Memory, p []uint64) Errno {
	c, d, path, e := wasiDirAt(g, m, uint32(p[0]), uint32(p[1]), uint32(p[2]), caps.RightFileCreateDir)
	if e != 0 {
		return e
	}
	defer c.Release()
	return caps.ErrnoOf(d.Mkdir(path))
}

func wasiPathFilestatGet(g *Guest, m api.Memory, p []uint64) Errno {
	c, d, path, e := wasiDirAt(g, m, uint32(p[0]), uint32(p[2]), uint32(p[3]), caps.RightFileStatGet)
	if e != 0 {
		return e
	}
	defer c.Release()
	st, err := d.StatAt(path, uint32(p[1])&wasiLookupSymlinkFollow != 0)
	if err != nil {
		return caps.ErrnoOf(err)
	}
	b := wasiFilestat(st)
	return writeBytes(m, uint32(p[4]), b[:])
}

func wasiPathFilestatSetTimes(g *Guest, m api.Memory, p []uint64) Errno {
	c, d, path, e := wasiDirAt(g, m, uint32(p[0]), uint32(p[2]), uint32(p[3]), caps.RightFileStatPutTimes)
	if e != 0 {
		return e
	}
	defer c.Release()
	a, mt, e := wasiTimes(p[4], p[5], uint32(p[6]))
	if e != 0 {
		return e
	}
	if uint32(p[1])&wasiLookupSymlinkFollow == 0 {
		return caps.ErrnoOf(d.LsetTimesAt(path, a, mt))
	}
	return caps.ErrnoOf(d.SetTimesAt(path, a, mt))
}

func wasiPathLink(g *Guest, m api.Memory, p []uint64) Errno {
	oc, od, oldPath, e := wasiDirAt(g, m, uint32(p[0]), uint32(p[2]), uint32(p[3]), caps.RightFileLinkSource)
	if e != 0 {
		return e
	}
	defer oc.Release()
	nc, nd, newPath, e := wasiDirAt(g, m, uint32(p[4]), uint32(p[5]), uint32(p[6]), caps.RightFileLinkTarget)
	if e != 0 {
		return e
	}
	defer nc.Release()
	if uint32(p[1])&wasiLookupSymlinkFollow != 0 {
		return caps.ErrnoOf(od.LinkFollow(oldPath, nd, newPath))
	}
	return caps.ErrnoOf(od.Link(oldPath, nd, newPath))
}

// wasiPathOpen opens a path beneath a directory capability as a new child
// capability.
//
// CloudABI's file_open refuses a request for any right the directory
// cannot pass on; cloudlibc's openat therefore asks for its access mode's
// minimum plus "whatever the directory allows". WASI programs do not: Go
// always asks for the same fixed sets and wasi-libc for the fdstat it saw.
// So the adapter takes cloudlibc's side of that contract: the rights that
// decide the access mode (fd_read, fd_write) and the ones the open flags
// need (CREAT: file_create_file on the directory; TRUNC: file_stat_fput_size;
// DSYNC/RSYNC/SYNC: fd_datasync/fd_sync) must be inheritable, or the call
// fails with ENOTCAPABLE before anything is touched; every other requested
// right is intersected with the directory's inheriting rights. The new
// handle never holds a right its directory could not pass on.
func wasiPathOpen(g *Guest, m api.Memory, p []uint64) Errno {
	dirfd, dirflags := uint32(p[0]), uint32(p[1])
	oflags, fdflags, out := uint32(p[4]), uint32(p[7]), uint32(p[8])
	if oflags&^wasiOflagsAll != 0 || fdflags&^wasiFdflagsAll != 0 {
		return caps.EINVAL
	}
	reqBase, reqInh := RightsOfWASI(p[5]), RightsOfWASI(p[6])

	needBase := caps.RightFileOpen
	needInh := reqBase & (caps.RightFDRead | caps.RightFDWrite)
	if oflags&wasiOflagCreat != 0 {
		needBase |= caps.RightFileCreateFile
	}
	if oflags&wasiOflagTrunc != 0 {
		needInh |= caps.RightFileStatFPutSize
	}
	if fdflags&caps.FlagDsync != 0 {
		needInh |= caps.RightFDDatasync
	}
	if fdflags&(caps.FlagRsync|caps.FlagSync) != 0 {
		needInh |= caps.RightFDSync
	}
	c, d, path, e := wasiDirAt(g, m, dirfd, uint32(p[2]), uint32(p[3]), needBase)
	if e != 0 {
		return e
	}
	defer c.Release()
	_, dirInh := c.Rights()
	if !dirInh.Has(needInh) {
		return caps.ENOTCAPABLE
	}
	base, inh := reqBase&dirInh, reqInh&dirInh

	// The access mode follows CloudABI's file_open: any right that reads
	// opens for reading, any right that modifies contents opens for
	// writing, so the host file is never opened wider than the handle's
	// rights.
	fl := caps.OpenFlags{
		Read:      base&(caps.RightFDRead|caps.RightFileReaddir) != 0,
		Write:     base&(caps.RightFDDatasync|caps.RightFDWrite|caps.RightFileAllocate|caps.RightFileStatFPutSize) != 0,
		Create:    oflags&wasiOflagCreat != 0,
		Excl:      oflags&wasiOflagExcl != 0,
		Trunc:     oflags&wasiOflagTrunc != 0,
		Directory: oflags&wasiOflagDirectory != 0,
		Append:    fdflags&caps.FlagAppend != 0,
		Sync:      fdflags&(caps.FlagDsync|caps.FlagRsync|caps.FlagSync) != 0,
		NoFollow:  dirflags&wasiLookupSymlinkFollow == 0,
	}
	res, err := d.Open(path, fl)
	if err != nil {
		return caps.ErrnoOf(err)
	}
	nc, err := g.kernel.Derive(c, caps.Derivation{Holder: g.holder, Edge: caps.EdgeOpen, Base: base, Inheriting: inh, Resource: res})
	if err != nil {
		return caps.ErrnoOf(err)
	}
	nc.SetFlags(fdflags)
	fd, err := g.table.Insert(nc)
	if err != nil {
		g.kernel.Close(nc)
		return caps.ErrnoOf(err)
	}
	if e := writeU32(m, out, fd); e != 0 {
		_ = g.table.Remove(fd)
		return e
	}
	return 0
}

func wasiPathReadlink(g *Guest, m api.Memory, p []uint64) Errno {
	c, d, path, e := wasiDirAt(g, m, uint32(p[0]), uint32(p[1]), uint32(p[2]), caps.RightFileReadlink)
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
	n := copy(buf, target)
	return writeU32(m, uint32(p[5]), uint32(n))
}

func wasiPathRemoveDirectory(g *Guest, m api.Memory, p []uint64) Errno {
	c, d, path, e := wasiDirAt(g, m, uint32(p[0]), uint32(p[1]), uint32(p[2]), caps.RightFileUnlink)
	if e != 0 {
		return e
	}
	defer c.Release()
	return caps.ErrnoOf(d.Unlink(path, true))
}

func wasiPathRename(g *Guest, m api.Memory, p []uint64) Errno {
	oc, od, oldPath, e := wasiDirAt(g, m, uint32(p[0]), uint32(p[1]), uint32(p[2]), caps.RightFileRenameSource)
	if e != 0 {
		return e
	}
	defer oc.Release()
	nc, nd, newPath, e := wasiDirAt(g, m, uint32(p[3]), uint32(p[4]), uint32(p[5]), caps.RightFileRenameTarget)
	if e != 0 {
		return e
	}
	defer nc.Release()
	return caps.ErrnoOf(od.Rename(oldPath, nd, newPath))
}

func wasiPathSymlink(g *Guest, m api.Memory, p []uint64) Errno {
	target, e := readString(m, uint32(p[0]), uint32(p[1]))
	if e != 0 {
		return e
	}
	c, d, path, e := wasiDirAt(g, m, uint32(p[2]), uint32(p[3]), uint32(p[4]), caps.RightFileSymlink)
	if e != 0 {
		return e
	}
	defer c.Release()
	return caps.ErrnoOf(d.Symlink(target, path))
}

func wasiPathUnlinkFile(g *Guest, m api.Memory, p []uint64) Errno {
	c, d, path, e := wasiDirAt(g, m, uint32(p[0]), uint32(p[1]), uint32(p[2]), caps.RightFileUnlink)
	if e != 0 {
		return e
	}
	defer c.Release()
	return caps.ErrnoOf(d.Unlink(path, false))
}
