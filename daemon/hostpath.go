package daemon

import (
	"io/fs"
	"os"
	"syscall"

	"github.com/sandboxd/sandboxd/caps"
	"github.com/sandboxd/sandboxd/policies"
	"golang.org/x/sys/unix"
)

// A policy decides on a host path, and the daemon, with its own authority,
// opens it. Were the daemon to follow symbolic links as it opens, anyone
// who can write beneath a path the policy allows could plant a link there
// to something it denies. So under a policy a host path is resolved first
// (caps.RealPath), decided on as resolved, and opened only if no element of it
// is a symbolic link (openat2's RESOLVE_NO_SYMLINKS, or where openat2 is
// unavailable the path's elements opened one at a time with O_NOFOLLOW): a
// link planted between the two makes the open fail, never follow.

// DecideHostPath decides req, whose Path is an inline host path resolved
// by caps.RealPath from asked, as the daemon does: on where it leads, and, if
// that is allowed, against the deny rules written for the path as asked,
// so that a rule written through a link does not silently stop matching.
// It returns the request that decided and its decision.
func DecideHostPath(p *policies.Policy, req policies.Request, asked string) (policies.Request, policies.Decision) {
	d := policies.Evaluate(p, req)
	if !d.Allowed || asked == "" || asked == req.Path {
		return req, d
	}
	as := req
	as.Path = asked
	if da := policies.Evaluate(p, as); da.Rule != nil && da.Rule.Type == policies.TypeDeny {
		return as, da
	}
	return req, d
}

// openat2 is unix.Openat2, which openHost tries first: a variable for
// tests, which make it fail as a kernel before Linux 5.6 (ENOSYS) or a
// seccomp profile refusing it (EPERM) does.
var openat2 caps.Openat2 = unix.Openat2

// openHost opens path as os.OpenFile does (close-on-exec), except that
// for an exact grant it fails with ELOOP if any element of path is a
// symbolic link: with openat2, or where the kernel or a seccomp profile
// refuses it, one element at a time (caps.OpenNoLinks).
func (g Grant) openHost(path string, flag int, perm fs.FileMode) (*os.File, error) {
	if !g.exact {
		return os.OpenFile(path, flag|syscall.O_CLOEXEC, perm)
	}
	fd, err := caps.OpenNoLinks(openat2, unix.AT_FDCWD, path, flag, uint32(perm.Perm()))
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	return os.NewFile(uintptr(fd), path), nil
}

// statHost is os.Stat, or for an exact grant the status of what path
// names when no element of it is a symbolic link.
func (g Grant) statHost(path string) (fs.FileInfo, error) {
	if !g.exact {
		return os.Stat(path)
	}
	f, err := g.openHost(path, unix.O_PATH, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.Stat()
}

// sameInode reports whether st and fi describe the same file.
func sameInode(st caps.FileStat, fi fs.FileInfo) bool {
	sys, ok := fi.Sys().(*syscall.Stat_t)
	return ok && st.HasHostIdent && st.Dev == uint64(sys.Dev) && st.Ino == sys.Ino
}
