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

// wasiDirAt is dirAt (acquire fd, a directory with the rights in need,
// then read the path) with WASI's "no directory" fd answered by
// ENOTCAPABLE. On success the caller must Release the capability.
func wasiDirAt(g *Guest, m api.Memory, fd, ptr, n uint32, need caps.Rights) (*caps.Cap, *caps.Dir, string, Errno) {
	if fd == wasiNoDir {
		return nil, nil, "", caps.ENOTCAPABLE
	}
	return g.dirAt(m, fd, need, ptr, n)
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
	st, err := d.StatAt(path, uint32(p[1])&lookupSymlinkFollow != 0)
	if err != nil {
		return caps.ErrnoOf(err)
	}
	b := wasiFilestat(st)
	return writeBytes(m, uint32(p[4]), b[:])
}

func wasiPathFilestatSetTimes(g *Guest, m api.Memory, p []uint64) Errno {
	if uint32(p[6])&^fsTimes != 0 {
		return caps.EINVAL
	}
	c, d, path, e := wasiDirAt(g, m, uint32(p[0]), uint32(p[2]), uint32(p[3]), caps.RightFileStatPutTimes)
	if e != 0 {
		return e
	}
	defer c.Release()
	a, mt, e := statTimes(filestatIn{atim: p[4], mtim: p[5]}, uint32(p[6]))
	if e != 0 {
		return e
	}
	if a == nil && mt == nil {
		_, err := d.StatAt(path, uint32(p[1])&lookupSymlinkFollow != 0)
		return caps.ErrnoOf(err)
	}
	if uint32(p[1])&lookupSymlinkFollow == 0 {
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
	if uint32(p[1])&lookupSymlinkFollow != 0 {
		return caps.ErrnoOf(od.LinkFollow(oldPath, nd, newPath))
	}
	return caps.ErrnoOf(od.Link(oldPath, nd, newPath))
}

// wasiPathOpen opens a path beneath a directory capability as a new child
// capability, through the native file_open's openBeneath.
//
// CloudABI's file_open refuses a request for any right the directory
// cannot pass on; cloudlibc's openat therefore asks for its access mode's
// minimum plus "whatever the directory allows". WASI programs do not: Go
// always asks for the same fixed sets, and wasi-libc for what it read from
// fd_fdstat_get. So the adapter takes cloudlibc's side of that contract:
// the rights that decide the access mode (fd_read, fd_write) must be
// inheritable, or the call fails with ENOTCAPABLE before anything is
// touched; every other requested right (translated by wasiOpenRights,
// where half of a split right asks for it) is intersected with the
// directory's inheriting rights; then file_open's own rules apply (CREAT,
// TRUNC and the sync flags need their rights). The new handle never holds
// a right its directory could not pass on.
func wasiPathOpen(g *Guest, m api.Memory, p []uint64) Errno {
	dirflags := uint32(p[1])
	if dirflags&^lookupSymlinkFollow != 0 {
		return caps.EINVAL
	}
	c, _, path, e := wasiDirAt(g, m, uint32(p[0]), uint32(p[2]), uint32(p[3]), caps.RightFileOpen)
	if e != 0 {
		return e
	}
	defer c.Release()
	reqBase, reqInh := wasiOpenRights(p[5], p[6])
	_, dirInh := c.Rights()
	if !dirInh.Has(reqBase & (caps.RightFDRead | caps.RightFDWrite)) {
		return caps.ENOTCAPABLE
	}
	nc, e := g.openBeneath(c, openRequest{
		path: path, follow: dirflags&lookupSymlinkFollow != 0, oflags: uint32(p[4]),
		base: reqBase & dirInh, inheriting: reqInh & dirInh, fdflags: uint32(p[7]),
	})
	if e != 0 {
		return e
	}
	return g.install(m, nc, uint32(p[8]))
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

// wasiPathSymlink creates a symbolic link beneath a directory. A link
// whose target is absolute is refused with EPERM, as wasmtime (cap-std)
// and wazero refuse it: the target names the host's namespace, which the
// guest does not have, so no sandboxed program could follow the link, and
// a host program that later did would be led wherever the guest chose.
// WASI programs probe for this (Go's testenv does) to learn that absolute
// links are unavailable.
func wasiPathSymlink(g *Guest, m api.Memory, p []uint64) Errno {
	c, d, path, e := wasiDirAt(g, m, uint32(p[2]), uint32(p[3]), uint32(p[4]), caps.RightFileSymlink)
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
	if target[0] == '/' {
		return caps.EPERM
	}
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
