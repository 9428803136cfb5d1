package caps

import (
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// A host path the daemon must not be led elsewhere on (a unix socket's
// directory, a dir or file grant decided on as resolved) is opened
// following no symbolic link: with openat2(2)'s RESOLVE_NO_SYMLINKS, or,
// where openat2 is unavailable, one element at a time with O_NOFOLLOW
// (walkNoLinks). It is unavailable before Linux 5.6 (ENOSYS) and under
// container runtimes whose seccomp profile refuses it (ENOSYS, or EPERM:
// Docker before 20.10, some gVisor and runc profiles). Either way a link
// on the path fails the open with ELOOP.

// Openat2 is the signature of unix.Openat2, the call OpenNoLinks tries
// first.
type Openat2 func(dirfd int, path string, how *unix.OpenHow) (int, error)

// openat2 is what this package's opens try first: unix.Openat2, a
// variable for tests, which make it fail as a kernel or seccomp profile
// without it does.
var openat2 Openat2 = unix.Openat2

// OpenNoLinks opens rel beneath the directory dirfd (AT_FDCWD: the working
// directory; an absolute rel: from the root) as openat(2) does with flag
// and, if flag has O_CREAT, perm, and close-on-exec, except that it fails
// with ELOOP if any element of rel is a symbolic link. It tries sys
// (unix.Openat2, or a test's stand-in) with RESOLVE_NO_SYMLINKS, and where
// that fails with ENOSYS or EPERM, which is how a kernel or a seccomp
// profile without openat2 answers, it opens rel one element at a time:
// each directory O_PATH|O_DIRECTORY|O_NOFOLLOW, the last element with
// flag|O_NOFOLLOW (so O_CREAT|O_EXCL creates only where nothing, not even
// a dangling link, is). Other errors are the open's.
func OpenNoLinks(sys Openat2, dirfd int, rel string, flag int, perm uint32) (int, error) {
	how := unix.OpenHow{Flags: uint64(flag | unix.O_CLOEXEC), Resolve: unix.RESOLVE_NO_SYMLINKS}
	if flag&unix.O_CREAT != 0 {
		how.Mode = uint64(perm)
	}
	fd, err := sys(dirfd, rel, &how)
	if err == unix.ENOSYS || err == unix.EPERM {
		// An EPERM of the open itself (O_NOATIME on another's file, an
		// immutable file opened to write) comes back from the walk too.
		return walkNoLinks(dirfd, rel, flag, perm)
	}
	return fd, err
}

// openDirNoLinks opens the directory at path, an absolute path, (O_PATH)
// if no element of it is a symbolic link, else fails with ELOOP.
func openDirNoLinks(path string) (int, error) {
	if !filepath.IsAbs(path) {
		return -1, unix.EINVAL
	}
	return openNoLinks(unix.AT_FDCWD, path, true)
}

// openNoLinks opens rel beneath the directory dirfd (O_PATH; with
// AT_FDCWD, rel is absolute) if no element of it is a symbolic link, else
// fails with ELOOP (OpenNoLinks). With dirOnly it must be a directory
// (ENOTDIR).
func openNoLinks(dirfd int, rel string, dirOnly bool) (int, error) {
	flag := unix.O_PATH
	if dirOnly {
		flag |= unix.O_DIRECTORY
	}
	return OpenNoLinks(openat2, dirfd, rel, flag, 0)
}

// walkNoLinks is OpenNoLinks without openat2: the directories of rel
// opened one at a time from dirfd (from the root for an absolute rel),
// each following no link, and the last element opened in the last of
// them. rel is taken as filepath.Clean has it; an empty rel is ENOENT, as
// openat2 has it.
func walkNoLinks(dirfd int, rel string, flag int, perm uint32) (int, error) {
	if rel == "" {
		return -1, unix.ENOENT
	}
	dir, name, owned, err := walkToParent(dirfd, rel)
	if err != nil {
		return -1, err
	}
	if owned {
		defer unix.Close(dir)
	}
	return openElement(dir, name, flag, perm)
}

// walkToParent opens the directory that holds rel's last element, one
// directory at a time from dirfd (from the root for an absolute rel),
// each following no link, and returns it with that element's name ("."
// for where rel starts). dir is dirfd itself where rel is one relative
// element; else it was opened here (owned), and is the caller's to close.
func walkToParent(dirfd int, rel string) (dir int, name string, owned bool, err error) {
	var names []string
	for _, n := range strings.Split(filepath.Clean(rel), "/") {
		if n != "" && n != "." {
			names = append(names, n)
		}
	}
	dir = dirfd
	if filepath.IsAbs(rel) {
		if dir, err = unix.Open("/", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0); err != nil {
			return -1, "", false, err
		}
		owned = true
	}
	if len(names) == 0 {
		return dir, ".", owned, nil
	}
	for _, n := range names[:len(names)-1] {
		next, err := openElement(dir, n, unix.O_PATH|unix.O_DIRECTORY, 0)
		if owned {
			unix.Close(dir)
		}
		if err != nil {
			return -1, "", false, err
		}
		dir, owned = next, true
	}
	return dir, names[len(names)-1], owned, nil
}

// openElement opens name, one path element, in the directory dir with
// flag|O_NOFOLLOW and perm, close-on-exec, failing with ELOOP if it is a
// symbolic link, as RESOLVE_NO_SYMLINKS does: O_NOFOLLOW alone fails a
// link with ELOOP, but with ENOTDIR beside O_DIRECTORY, and beside O_PATH
// opens the link itself.
func openElement(dir int, name string, flag int, perm uint32) (int, error) {
	fd, err := unix.Openat(dir, name, flag|unix.O_NOFOLLOW|unix.O_CLOEXEC, perm)
	if err == unix.ENOTDIR && flag&unix.O_DIRECTORY != 0 && isLink(dir, name) {
		return -1, unix.ELOOP
	}
	if err != nil || flag&unix.O_PATH == 0 || flag&unix.O_DIRECTORY != 0 {
		return fd, err
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil || st.Mode&unix.S_IFMT == unix.S_IFLNK {
		unix.Close(fd)
		if err == nil {
			err = unix.ELOOP
		}
		return -1, err
	}
	return fd, nil
}

// isLink reports whether name in the directory dir is a symbolic link.
func isLink(dir int, name string) bool {
	var st unix.Stat_t
	return unix.Fstatat(dir, name, &st, unix.AT_SYMLINK_NOFOLLOW) == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK
}
