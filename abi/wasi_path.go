package abi

import (
	"strings"

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

// wasiFollows reports whether a lookup of path follows a final symbolic
// link: when the lookup flags say so, and always when the path ends in
// "/", which makes its last component name a directory, so that a link
// there is resolved as POSIX path resolution, open(2) and utimensat(2)
// resolve it (Node's and wazero's WASI do too). Calls that remove or
// replace a name (unlink, rename) keep refusing "link/" with ENOTDIR, as
// Linux does.
func wasiFollows(flags uint32, path string) bool {
	return flags&lookupSymlinkFollow != 0 || strings.HasSuffix(path, "/")
}

// wasiDirAt is dirAt (acquire fd, a directory with the rights in need,
// then read the path) with WASI's "no directory" fd answered by
// ENOTCAPABLE: the guard that makes a native path call WASI's. On success
// the caller must Release the capability.
func (g *Guest) wasiDirAt(m api.Memory, fd uint32, need caps.Rights, ptr, n uint32) (*caps.Cap, *caps.Dir, string, Errno) {
	if fd == wasiNoDir {
		return nil, nil, "", caps.ENOTCAPABLE
	}
	return g.dirAt(m, fd, need, ptr, n)
}

func wasiPathCreateDirectory(g *Guest, m api.Memory, p []uint64) Errno {
	fd, path, pathLen := uint32(p[0]), uint32(p[1]), uint32(p[2])
	return mkdirAt(g, m, (*Guest).wasiDirAt, fd, path, pathLen)
}

func wasiPathFilestatGet(g *Guest, m api.Memory, p []uint64) Errno {
	fd, flags, path, pathLen, buf := uint32(p[0]), uint32(p[1]), uint32(p[2]), uint32(p[3]), uint32(p[4])
	c, d, name, e := g.wasiDirAt(m, fd, caps.RightFileStatGet, path, pathLen)
	if e != 0 {
		return e
	}
	defer c.Release()
	st, err := d.StatAt(name, flags&lookupSymlinkFollow != 0)
	if err != nil {
		return caps.ErrnoOf(err)
	}
	b := wasiFilestat(st)
	return writeBytes(m, buf, b[:])
}

func wasiPathFilestatSetTimes(g *Guest, m api.Memory, p []uint64) Errno {
	fd, flags, path, pathLen := uint32(p[0]), uint32(p[1]), uint32(p[2]), uint32(p[3])
	atim, mtim, fstFlags := p[4], p[5], uint32(p[6])
	if fstFlags&^fsTimes != 0 {
		return caps.EINVAL
	}
	c, d, name, e := g.wasiDirAt(m, fd, caps.RightFileStatPutTimes, path, pathLen)
	if e != 0 {
		return e
	}
	defer c.Release()
	a, mt, e := statTimes(filestatIn{atim: atim, mtim: mtim}, fstFlags)
	if e != 0 {
		return e
	}
	follow := wasiFollows(flags, name)
	if a == nil && mt == nil {
		_, err := d.StatAt(name, follow)
		return caps.ErrnoOf(err)
	}
	if !follow {
		return caps.ErrnoOf(d.LsetTimesAt(name, a, mt))
	}
	return caps.ErrnoOf(d.SetTimesAt(name, a, mt))
}

// wasiPathLink is file_link with WASI's lookup flags, whose bits other
// than SYMLINK_FOLLOW are ignored.
func wasiPathLink(g *Guest, m api.Memory, p []uint64) Errno {
	oldFlags := uint32(p[1])
	return linkPaths(g, m, p, (*Guest).wasiDirAt, oldFlags&lookupSymlinkFollow != 0)
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
	fd, dirflags, path, pathLen, oflags := uint32(p[0]), uint32(p[1]), uint32(p[2]), uint32(p[3]), uint32(p[4])
	fsRightsBase, fsRightsInheriting, fdflags, fdOut := p[5], p[6], uint32(p[7]), uint32(p[8])
	if dirflags&^lookupSymlinkFollow != 0 {
		return caps.EINVAL
	}
	c, _, name, e := g.wasiDirAt(m, fd, caps.RightFileOpen, path, pathLen)
	if e != 0 {
		return e
	}
	defer c.Release()
	reqBase, reqInh := wasiOpenRights(fsRightsBase, fsRightsInheriting)
	_, dirInh := c.Rights()
	if !dirInh.Has(reqBase & (caps.RightFDRead | caps.RightFDWrite)) {
		return caps.ENOTCAPABLE
	}
	// fd_out is checked before the open, which may create or truncate.
	if e := outInBounds(m, fdOut, 4); e != 0 {
		return e
	}
	nc, e := g.openBeneath(c, openRequest{
		path: name, follow: wasiFollows(dirflags, name), oflags: oflags,
		base: reqBase & dirInh, inheriting: reqInh & dirInh, fdflags: fdflags,
	})
	if e != 0 {
		return e
	}
	return g.install(m, nc, fdOut)
}

// wasiPathReadlink is file_readlink, except that a buffer of size 0 is
// EINVAL, as readlink(2) answers: wasi-libc returns the byte count as
// readlink's result, and 0 would say the link is empty. The handle and
// its rights are checked first, as for every call.
func wasiPathReadlink(g *Guest, m api.Memory, p []uint64) Errno {
	bufLen := uint32(p[4])
	return readlinkAt(g, m, p, func(g *Guest, m api.Memory, fd uint32, need caps.Rights, ptr, n uint32) (*caps.Cap, *caps.Dir, string, Errno) {
		c, d, name, e := g.wasiDirAt(m, fd, need, ptr, n)
		if e == 0 && bufLen == 0 {
			c.Release()
			return nil, nil, "", caps.EINVAL
		}
		return c, d, name, e
	})
}

func wasiPathRemoveDirectory(g *Guest, m api.Memory, p []uint64) Errno {
	fd, path, pathLen := uint32(p[0]), uint32(p[1]), uint32(p[2])
	return unlinkAt(g, m, (*Guest).wasiDirAt, fd, path, pathLen, true)
}

func wasiPathRename(g *Guest, m api.Memory, p []uint64) Errno {
	return renamePaths(g, m, p, (*Guest).wasiDirAt)
}

// wasiPathSymlink creates a symbolic link beneath a directory. A link
// whose target is absolute is refused with EPERM, as wasmtime (cap-std)
// and wazero refuse it: the target names the host's namespace, which the
// guest does not have, so no sandboxed program could follow the link, and
// a host program that later did would be led wherever the guest chose.
// WASI programs probe for this (Go's testenv does) to learn that absolute
// links are unavailable.
func wasiPathSymlink(g *Guest, m api.Memory, p []uint64) Errno {
	return symlinkAt(g, m, p, (*Guest).wasiDirAt, true)
}

func wasiPathUnlinkFile(g *Guest, m api.Memory, p []uint64) Errno {
	fd, path, pathLen := uint32(p[0]), uint32(p[1]), uint32(p[2])
	return unlinkAt(g, m, (*Guest).wasiDirAt, fd, path, pathLen, false)
}
