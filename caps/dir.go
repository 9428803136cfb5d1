package caps

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io/fs"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Dir is a directory on the host, opened through os.Root.
//
// Holding a capability to a Dir allows the path operations its rights name
// on the directory and everything beneath it, and nothing outside it.
// Every path is resolved beneath the directory by os.Root, one component at
// a time with openat and O_NOFOLLOW, following a symbolic link only while
// its target stays beneath the directory. Absolute paths, ".." that would
// climb above the directory, and symbolic links whose target leaves it
// (absolute, or climbing out) are refused with ENOTCAPABLE; this holds
// against concurrent renames on the host too, since nothing is checked by
// string prefix. Symbolic links whose target stays beneath it are followed.
//
// The last component of a path is handled by a single *at system call on
// its parent directory, never by a check followed by a second lookup: an
// operation that must not follow a final symbolic link (open without
// LOOKUP_SYMLINK_FOLLOW, lstat, unlink, rename, link, utimensat) acts on the
// link itself even if the name is swapped concurrently. (os.Root on its own
// follows a final symbolic link in OpenFile even when O_NOFOLLOW is passed,
// and Remove tries both unlink and rmdir, so neither is used for that.)
//
// What holding a Dir does not prevent, as for os.Root: crossing mount
// points beneath the directory, and opening device files that exist
// beneath it. Grant directories accordingly.
//
// Operations that name two directories (rename, link) work when both were
// reached from the same granted directory, and fail with EXDEV otherwise,
// even on one host file system: moving a file between two grants would take
// it out of one capability's reach and into another's.
type Dir struct {
	root  *os.Root
	grant *grant // the granted directory this one was reached from
	host  string

	mu      sync.Mutex
	listing []DirEntry   // snapshot that Readdir resumes from
	held    int64        // what listing is charged to charge
	charge  MemoryCharge // who is charged for listing (nil: nobody)
}

// grant identifies one granted directory tree; Dirs opened beneath it share
// the pointer.
type grant struct {
	host     string
	listings *byteBudget // what the listings of its Dirs count against: listingBudget
	// opened, when not nil, runs in Open between the open of what a path
	// names and its description: a test's way to remove it exactly there.
	opened func()
}

// MaxListingMemory bounds the host memory that the listings directory
// handles keep for fd_readdir (ReaddirAt) hold together in the process,
// charged to a guest's memory or not: each is as large as its directory,
// and a guest may keep one for every directory handle it may open. A
// fresh listing past it is ENOMEM.
const MaxListingMemory = 1 << 30

var listingBudget = &byteBudget{limit: MaxListingMemory}

// maxOpenAttempts bounds how often Open retries when the name it opened is
// replaced on the host before the directory could be re-opened as a Root.
const maxOpenAttempts = 4

// OpenDir opens a host directory as a Dir: the root of a new grant.
func OpenDir(hostPath string) (*Dir, error) {
	r, err := os.OpenRoot(hostPath)
	if err != nil {
		return nil, err
	}
	return &Dir{root: r, grant: &grant{host: hostPath, listings: listingBudget}, host: hostPath}, nil
}

func (d *Dir) Kind() Kind         { return KindDirectory }
func (d *Dir) Describe() string   { return "dir " + d.host }
func (d *Dir) FileType() FileType { return TypeDirectory }

// HostPath is the host path the directory was reached by, for display.
func (d *Dir) HostPath() string { return d.host }

func (d *Dir) Close() error {
	d.mu.Lock()
	d.drop()
	d.mu.Unlock()
	return d.root.Close()
}

// SameGrant reports whether d and o were reached from the same granted
// directory, which is when rename and link between them are allowed.
func (d *Dir) SameGrant(o *Dir) bool { return d.grant == o.grant }

// CheckPath validates a guest path before any host call: it must be
// shorter than Linux's PATH_MAX (which counts a terminating NUL), non-empty,
// free of NUL bytes, and relative. Whether its ".." components and
// symbolic links keep it beneath the directory is for os.Root to decide,
// as it resolves the path: "l/../.." stays beneath it when l leads to a
// directory two levels down, and "a/../.." is ENOENT when there is no a,
// as the kernel's RESOLVE_BENEATH has them; a path that does leave it is
// ENOTCAPABLE (os.Root's "path escapes from parent").
func CheckPath(p string) error {
	if len(p) >= unix.PathMax {
		return ENAMETOOLONG
	}
	if p == "" {
		return ENOENT
	}
	if strings.IndexByte(p, 0) >= 0 {
		return EINVAL
	}
	if p[0] == '/' {
		return ENOTCAPABLE
	}
	return nil
}

// lastComponent splits a checked path into the directory holding its last
// component, that component and the trailing slashes after it. A last component ".." always names a directory
// reached through os.Root, so it is returned as (p, "."): no *at call is
// ever given "..", which from a directory at the top of the grant would
// leave it.
func lastComponent(p string) (dir, name, slashes string) {
	t := strings.TrimRight(p, "/")
	slashes = p[len(t):]
	if endsInDotDot(t) {
		return t, ".", slashes
	}
	dir, name = ".", t
	if i := strings.LastIndexByte(t, '/'); i >= 0 {
		dir, name = t[:i+1], t[i+1:]
	}
	return dir, name, slashes
}

// endsInDotDot reports whether p's last component, trailing slashes
// aside, is "..": lastComponent turns it into ".".
func endsInDotDot(p string) bool {
	t := strings.TrimRight(p, "/")
	return t == ".." || strings.HasSuffix(t, "/..")
}

// at calls op with an open descriptor of the directory that holds p's last
// component and the component's name (no slashes, never ""). Everything
// before the last component is resolved beneath d by os.Root. With a
// trailing slash the last component, if it exists, must be a directory and
// not a symbolic link (ENOTDIR otherwise). op must not follow a symbolic
// link named by name: the kernel would follow it without confinement.
func (d *Dir) at(p string, op func(dirfd int, name string) error) error {
	return d.look(p, 0, op)
}

// atFollow is at with a final symbolic link followed, beneath d only, for
// operations whose *at call cannot be told to follow a link safely
// (linkat's AT_SYMLINK_FOLLOW and utimensat would follow it unconfined):
// op is called on what the link leads to. A link's contents take the
// link's place in the path, which os.Root then resolves as it resolves any
// path, so a ".." in them goes up from where the link really is, and a
// link that leads out of d is ENOTCAPABLE. Each link followed costs one
// resolution; after maxFinalLinks, ELOOP.
func (d *Dir) atFollow(p string, op func(dirfd int, name string) error) error {
	return d.look(p, followLast, op)
}

// lookup says what at, atFollow and pair ask of a path's last component.
type lookup uint8

const (
	// followLast follows a final symbolic link, beneath d only (atFollow).
	followLast lookup = 1 << iota
	// lastExists asks that the last component exist (as a symbolic link
	// too, when it is not followed): fstatat(2)'s error, ENOENT, when it
	// does not, and op is not called.
	lastExists
	// lastIsNew says that the last component is a name link or symlink is
	// to make: with trailing slashes it would have to be a directory,
	// which neither makes, so op is not called and they fail as noDirAt
	// says.
	lastIsNew
	// slashesToOp hands op the last component with its trailing slashes,
	// for renameat(2) to answer for them where rename(2) does, after both
	// parents are found.
	slashesToOp
)

// look is at with the last component looked up as how says.
func (d *Dir) look(p string, how lookup, op func(dirfd int, name string) error) error {
	for range maxFinalLinks + 1 {
		next, err := d.atOnce(p, how, op)
		if err != nil || next == "" {
			return err
		}
		p = next
	}
	return ELOOP
}

// maxFinalLinks bounds the final symbolic links atFollow follows in a row:
// as many as os.Root follows in one path, so that every call that follows
// links gives up where StatAt and Open do.
const maxFinalLinks = 8

// atOnce opens the directory holding p's last component beneath d and
// calls op on it, unless how follows a final link and the component is a
// symbolic link: it then returns the path the link's contents make of p
// instead.
func (d *Dir) atOnce(p string, how lookup, op func(dirfd int, name string) error) (next string, err error) {
	dir, name, slashes := lastComponent(p)
	parent, err := d.root.Open(dir)
	if err != nil {
		return "", err
	}
	defer parent.Close()
	rc, err := parent.SyscallConn()
	if err != nil {
		return "", err
	}
	var opErr error
	err = rc.Control(func(fd uintptr) {
		next, opErr = lastAt(int(fd), dir, name, slashes, how, op)
	})
	if err != nil {
		return "", err
	}
	return next, opErr
}

// lastAt is atOnce on the open directory dirfd, which p's dir names, for
// p's last component name and the slashes after it. The component is
// looked at, with one fstatat(2), only when something is asked of it: a
// trailing slash, following or existing.
func lastAt(dirfd int, dir, name, slashes string, how lookup, op func(dirfd int, name string) error) (string, error) {
	mustDir := slashes != ""
	switch {
	case how&slashesToOp != 0:
		return "", op(dirfd, name+slashes)
	case how&lastIsNew != 0 && mustDir:
		return "", noDirAt(dirfd, name)
	case name == "." || (!mustDir && how&(followLast|lastExists) == 0):
		return "", op(dirfd, name)
	}
	var st unix.Stat_t
	if err := unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		if how&lastExists != 0 {
			return "", err
		}
		return "", op(dirfd, name)
	}
	switch typ := st.Mode & unix.S_IFMT; {
	case typ == unix.S_IFLNK && how&followLast != 0:
		return linkedPath(dirfd, dir, name, mustDir)
	case mustDir && typ != unix.S_IFDIR:
		return "", ENOTDIR
	}
	return "", op(dirfd, name)
}

// linkedPath returns the path beneath d that the symbolic link name in
// dirfd (which dir names) makes: its contents in its place, with a
// trailing slash kept. A link to an absolute path is ENOTCAPABLE, an empty
// one ENOENT.
func linkedPath(dirfd int, dir, name string, mustDir bool) (string, error) {
	buf := make([]byte, unix.PathMax)
	n, err := unix.Readlinkat(dirfd, name, buf)
	switch {
	case err != nil:
		return "", err
	case n == len(buf):
		return "", ENAMETOOLONG
	case n == 0:
		return "", ENOENT
	case buf[0] == '/':
		return "", ENOTCAPABLE
	}
	next := string(buf[:n])
	if dir != "." {
		next = dir + next // dir ends in "/"
	}
	if mustDir {
		next += "/"
	}
	return next, nil
}

// OpenFlags are the ABI-neutral options of Open.
type OpenFlags struct {
	Read, Write  bool
	Create, Excl bool
	Trunc        bool
	Directory    bool // fail with ENOTDIR unless the target is a directory
	Append       bool
	Sync         bool // O_SYNC on the host descriptor
	NoFollow     bool // the last component must not be a symbolic link (ELOOP), unless a "/" follows it
}

// errRaced reports that the object at a path changed between two steps of
// one operation; the operation is retried.
var errRaced = errors.New("path replaced during open")

// Open opens p beneath d. The result is a *Dir when the target is a
// directory and a *File otherwise.
func (d *Dir) Open(p string, fl OpenFlags) (Resource, error) {
	if fl.Directory && fl.Create {
		// open(2) refuses O_CREAT|O_DIRECTORY with EINVAL since Linux 6.4,
		// before it looks at the path; older kernels made a regular file.
		// Writing or truncating with Directory is left to the kernel:
		// ENOTDIR for what is not a directory, EISDIR for a directory.
		return nil, EINVAL
	}
	if err := CheckPath(p); err != nil {
		return nil, err
	}
	if _, name, slashes := lastComponent(p); fl.Create && slashes != "" && name != "." {
		// open(2): a name ending in "/" is no file to make, which it
		// finds once it has found the directory the name is in. A last
		// "." or ".." names that directory, and is opened as such:
		// EEXIST with Excl, EISDIR without.
		err := d.at(p[:len(p)-len(slashes)], func(int, string) error { return EISDIR })
		return nil, err
	}
	// O_NONBLOCK: opening a FIFO no one has open at the other end would
	// block in open(2), where nothing can end the wait; reads and writes on
	// one wait through the guest's poll instead (hostStream). It does
	// nothing to regular files. O_NOCTTY: a terminal beneath the directory
	// must not become the daemon's controlling terminal.
	flag := syscall.O_CLOEXEC | syscall.O_NONBLOCK | syscall.O_NOCTTY
	switch {
	case fl.Read && fl.Write:
		flag |= os.O_RDWR
	case fl.Write:
		flag |= os.O_WRONLY
	default:
		flag |= os.O_RDONLY
	}
	if fl.Create {
		flag |= os.O_CREATE
	}
	if fl.Excl {
		flag |= os.O_EXCL
	}
	if fl.Trunc {
		flag |= os.O_TRUNC
	}
	if fl.Append {
		flag |= os.O_APPEND
	}
	if fl.Sync {
		flag |= os.O_SYNC
	}
	if fl.Directory {
		flag |= syscall.O_DIRECTORY
	}
	// A name ending in "/" names a directory, and a final symbolic link
	// there is followed with NoFollow too, as open(2) follows it with
	// O_NOFOLLOW.
	noFollow := fl.NoFollow && !strings.HasSuffix(p, "/")
	var err error
	for range maxOpenAttempts {
		var res Resource
		res, err = d.open(p, flag, noFollow)
		if err != errRaced {
			return res, err
		}
	}
	return nil, EAGAIN
}

func (d *Dir) open(p string, flag int, noFollow bool) (Resource, error) {
	var f *os.File
	var err error
	if noFollow {
		err = d.at(p, func(dirfd int, name string) error {
			fd, err := unix.Openat(dirfd, name, flag|unix.O_NOFOLLOW, 0o666)
			if err != nil {
				return err
			}
			f = os.NewFile(uintptr(fd), path.Join(d.host, p))
			return nil
		})
	} else {
		f, err = d.root.OpenFile(p, flag, 0o666)
	}
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if d.grant.opened != nil {
		d.grant.opened()
	}
	host := d.hostPathOf(p, f)
	switch typ := fileTypeOf(fi.Mode()); {
	case fi.Mode()&os.ModeNamedPipe != 0 || typ == TypeCharDevice:
		return newHostStream(f, host, typ), nil
	case !fi.IsDir():
		return newFile(f, host, typ), nil
	}
	defer f.Close()
	// A directory needs an os.Root for the path operations beneath it, and
	// os.Root cannot be made from a descriptor: open it again by name and
	// make sure it is the object opened above (with the follow rule asked
	// for), not whatever was renamed into its place in between.
	r, err := d.root.OpenRoot(p)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) && pe.Err.Error() == syscall.ENOTDIR.Error() {
			return nil, errRaced // no longer a directory
		}
		return nil, err
	}
	rfi, err := r.Stat(".")
	if err != nil || !os.SameFile(fi, rfi) {
		r.Close()
		return nil, errRaced
	}
	return &Dir{root: r, grant: d.grant, host: host}, nil
}

// hostPathOf is the host path of f, just opened as p beneath d, as its
// description says it: d's path joined with p; but where p has a ".."
// component, which goes up from where the links before it lead, as the
// kernel resolved it ("x/../y" with x leading to sub/deep is sub/y, not
// y). The audit graph reads what a capability reaches from that path.
// It is said beneath d's own path, as every other path beneath d is, not
// where the kernel has d (a grant made through a symbolic link, d opened
// through one): f is beneath d, and its description names no place
// outside the path d's does.
func (d *Dir) hostPathOf(p string, f *os.File) string {
	if !hasDotDot(p) {
		return path.Join(d.host, p)
	}
	if rel, ok := d.relativePath(f); ok {
		return path.Join(d.host, rel)
	}
	return d.host + "/" + p // as asked: caps.RealPath resolves it as the kernel did
}

// hasDotDot reports whether p has a ".." component, without allocating:
// every open beneath a directory asks.
func hasDotDot(p string) bool {
	for p != "" {
		var c string
		c, p, _ = strings.Cut(p, "/")
		if c == ".." {
			return true
		}
	}
	return false
}

// relativePath is where f is beneath d, as the kernel names both now
// (/proc/self/fd); ok is false when it cannot tell, or f is not beneath d
// by those names (one of them moved or removed meanwhile).
func (d *Dir) relativePath(f *os.File) (rel string, ok bool) {
	top, err := d.root.Open(".")
	if err != nil {
		return "", false
	}
	defer top.Close()
	dirReal, fileReal := kernelPath(top), kernelPath(f)
	if removed(f) {
		// Removed since it was opened: the kernel's name for it is the
		// one it had, and " (deleted)", which would be another file's.
		fileReal = strings.TrimSuffix(fileReal, " (deleted)")
	}
	switch {
	case dirReal == "" || fileReal == "":
		return "", false
	case fileReal == dirReal:
		return ".", true
	case dirReal == "/" && strings.HasPrefix(fileReal, "/"):
		return fileReal[1:], true
	case strings.HasPrefix(fileReal, dirReal+"/"):
		return fileReal[len(dirReal)+1:], true
	}
	return "", false
}

// removed reports whether f has no name left on its file system (no
// link to it): the kernel then ends its path with " (deleted)".
func removed(f *os.File) bool {
	fi, err := f.Stat()
	if err != nil {
		return false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && st.Nlink == 0
}

// kernelPath is the absolute path the kernel has for f's descriptor, ""
// when it has none to give. (Not fdPath, whose procFD tests change.)
func kernelPath(f *os.File) string {
	rc, err := f.SyscallConn()
	if err != nil {
		return ""
	}
	var real string
	_ = rc.Control(func(fd uintptr) {
		real, _ = os.Readlink("/proc/self/fd/" + strconv.Itoa(int(fd)))
	})
	if !strings.HasPrefix(real, "/") {
		return ""
	}
	return real
}

// Mkdir creates directory p beneath d.
func (d *Dir) Mkdir(p string) error {
	if err := CheckPath(p); err != nil {
		return err
	}
	return d.root.Mkdir(p, 0o777)
}

// Unlink removes p: a non-directory, or with dir set an empty directory. A
// final symbolic link is removed, not followed. Removing a directory without
// dir fails with EISDIR, and a non-directory with dir with ENOTDIR. A
// directory named by a last component ".." is never empty (ENOTEMPTY), as
// rmdir(2) has it: at has turned it into ".", which rmdir refuses with
// EINVAL.
func (d *Dir) Unlink(p string, dir bool) error {
	if err := CheckPath(p); err != nil {
		return err
	}
	flags := 0
	if dir {
		flags = unix.AT_REMOVEDIR
	}
	dotdot := endsInDotDot(p)
	return d.at(p, func(fd int, name string) error {
		if dir && dotdot {
			return ENOTEMPTY
		}
		err := unix.Unlinkat(fd, name, flags)
		if dir && err == unix.EEXIST {
			err = unix.ENOTEMPTY // some file systems say EEXIST; POSIX allows both
		}
		return err
	})
}

// pair runs op on the parents of p1 beneath d and p2 beneath to, which
// must be reached from the same grant (EXDEV otherwise), their last
// components looked up as how1 and how2 say. As rename(2) and link(2) do,
// it looks p1 up before anything of p2, so that p1's errors come first,
// and p2's, an empty or too long p2's included, after them (link(2) looks
// up the whole of its old path first: lastExists).
func (d *Dir) pair(p1 string, how1 lookup, to *Dir, p2 string, how2 lookup, op func(fd1 int, n1 string, fd2 int, n2 string) error) error {
	if err := CheckPath(p1); err != nil {
		return err
	}
	if !d.SameGrant(to) {
		return EXDEV
	}
	return d.look(p1, how1, func(fd1 int, n1 string) error {
		if err := CheckPath(p2); err != nil {
			return err
		}
		return to.look(p2, how2, func(fd2 int, n2 string) error {
			return op(fd1, n1, fd2, n2)
		})
	})
}

// Rename moves p1 beneath d to p2 beneath to, with POSIX rename semantics
// (an existing p2 is replaced when the types allow). Neither final component
// is followed if it is a symbolic link. Trailing slashes are left to
// renameat(2), which follows no link for them either: a name with them
// must be a directory (ENOTDIR), "mv file dir/" included, checked where
// rename(2) checks it, after both parents are found (slashesToOp).
func (d *Dir) Rename(p1 string, to *Dir, p2 string) error {
	return d.pair(p1, slashesToOp, to, p2, slashesToOp, renameat)
}

func renameat(fd1 int, n1 string, fd2 int, n2 string) error {
	return unix.Renameat(fd1, n1, fd2, n2)
}

// Link makes p2 beneath to a hard link to p1 beneath d. A final symbolic
// link in p1 is linked itself, not followed (linkat without
// AT_SYMLINK_FOLLOW), unless a "/" comes after it, which makes link(2)
// follow it too; LinkFollow follows it.
func (d *Dir) Link(p1 string, to *Dir, p2 string) error {
	if strings.HasSuffix(p1, "/") {
		return d.LinkFollow(p1, to, p2)
	}
	return d.pair(p1, lastExists, to, p2, lastIsNew, linkat)
}

// LinkFollow is Link with a final symbolic link in p1 followed, beneath d
// only: a link whose target leaves d is refused with ENOTCAPABLE. As in
// pair, p1 is looked up whole before p2.
func (d *Dir) LinkFollow(p1 string, to *Dir, p2 string) error {
	return d.pair(p1, followLast|lastExists, to, p2, lastIsNew, linkat)
}

func linkat(fd1 int, n1 string, fd2 int, n2 string) error {
	return unix.Linkat(fd1, n1, fd2, n2, 0)
}

// noDirAt is how link(2) and symlink(2) fail for a new name with a slash
// after it, which they cannot make: EEXIST when the name exists in dirfd,
// whatever it is, ENOENT when it does not.
func noDirAt(dirfd int, name string) error {
	var st unix.Stat_t
	if unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW) == nil {
		return unix.EEXIST
	}
	return unix.ENOENT
}

// Symlink creates p beneath d as a symbolic link with the given contents.
// The contents are not checked: a link that points outside is created, and
// refused when something tries to follow it. As symlink(2), the contents
// are taken before the path: contents of PATH_MAX bytes or more are
// ENAMETOOLONG whatever p is; and a name with a slash after it is made
// nowhere (noDirAt), its last component not followed, not even to find
// that a link there leads out.
func (d *Dir) Symlink(target, p string) error {
	if len(target) >= unix.PathMax {
		return ENAMETOOLONG
	}
	if strings.IndexByte(target, 0) >= 0 {
		return EINVAL
	}
	if err := CheckPath(p); err != nil {
		return err
	}
	return d.look(p, lastIsNew, func(dirfd int, name string) error {
		return unix.Symlinkat(target, dirfd, name)
	})
}

// Readlink returns the contents of the symbolic link p.
func (d *Dir) Readlink(p string) (string, error) {
	if err := CheckPath(p); err != nil {
		return "", err
	}
	return d.root.Readlink(p)
}

// StatAt reports on p beneath d; follow decides whether a final symbolic
// link is followed.
func (d *Dir) StatAt(p string, follow bool) (FileStat, error) {
	if err := CheckPath(p); err != nil {
		return FileStat{}, err
	}
	var fi fs.FileInfo
	var err error
	if follow {
		fi, err = d.root.Stat(p)
	} else {
		fi, err = d.root.Lstat(p)
	}
	if err != nil {
		return FileStat{}, err
	}
	return statOf(fi), nil
}

// SetTimesAt changes p's access and modification times; nil leaves a time
// unchanged. A final symbolic link is followed, beneath d only.
func (d *Dir) SetTimesAt(p string, atime, mtime *time.Time) error {
	if err := CheckPath(p); err != nil {
		return err
	}
	return d.atFollow(p, utimesAt(atime, mtime))
}

// LsetTimesAt is SetTimesAt acting on a final symbolic link itself.
func (d *Dir) LsetTimesAt(p string, atime, mtime *time.Time) error {
	if err := CheckPath(p); err != nil {
		return err
	}
	return d.at(p, utimesAt(atime, mtime))
}

// utimesAt returns the op that sets a name's times, not following it.
func utimesAt(atime, mtime *time.Time) func(fd int, name string) error {
	ts := utimes(atime, mtime)
	return func(fd int, name string) error {
		return unix.UtimesNanoAt(fd, name, ts[:], unix.AT_SYMLINK_NOFOLLOW)
	}
}

// utimes converts optional times to utimensat's form.
func utimes(atime, mtime *time.Time) [2]unix.Timespec {
	ts := [2]unix.Timespec{{Nsec: unix.UTIME_OMIT}, {Nsec: unix.UTIME_OMIT}}
	if atime != nil {
		ts[0] = unix.NsecToTimespec(atime.UnixNano())
	}
	if mtime != nil {
		ts[1] = unix.NsecToTimespec(mtime.UnixNano())
	}
	return ts
}

// Stat reports on the directory itself.
func (d *Dir) Stat() (FileStat, error) { return d.StatAt(".", true) }

// SetTimes changes the directory's own times.
func (d *Dir) SetTimes(atime, mtime *time.Time) error {
	return d.LsetTimesAt(".", atime, mtime)
}

func (d *Dir) Sync() error {
	f, err := d.root.Open(".")
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

func (d *Dir) Datasync() error { return d.Sync() }

// DirEntry is one name in a directory listing.
type DirEntry struct {
	Name string
	Type FileType
	Ino  uint64
}

// Readdir returns a fresh listing of the directory: ReaddirAt(0, nil).
func (d *Dir) Readdir() ([]DirEntry, error) { return d.ReaddirAt(0, nil) }

// ReaddirAt returns the directory listing from index cookie on: ".", ".."
// (whose inode is reported as 0: above a granted directory it is not the
// guest's to know), then the other names in byte order. Cookie 0 takes a
// fresh listing; a later cookie resumes the listing taken last, so that a
// listing read in several calls is one consistent snapshot and every name
// present when it was taken is returned exactly once. Handles that share
// this Dir share the snapshot: a listing restarted through one of them
// while another is resuming may make the other skip or repeat names that
// changed in between. The returned slice must not be modified.
//
// The snapshot is host memory in proportion to the directory, kept until
// the next fresh listing or Close: a fresh listing is charged to charge
// (nil: to nobody) and counted against the process's MaxListingMemory, in
// place of the one it replaces, a batch at a time as it is read: it is
// ENOMEM, kept by no one, at the first batch past either, so that a
// listing refused costs about its budget, not its directory.
func (d *Dir) ReaddirAt(cookie uint64, charge MemoryCharge) ([]DirEntry, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if cookie == 0 || d.listing == nil {
		d.drop()
		m := &listingMeter{budget: d.grant.listings, charge: charge}
		l, err := d.list(m)
		if err != nil {
			m.undo()
			return nil, err
		}
		d.listing, d.held, d.charge = l, m.held, charge
	}
	if cookie >= uint64(len(d.listing)) {
		return nil, nil
	}
	return d.listing[cookie:], nil
}

// drop lets go of the snapshot and gives back its charge and its room in
// the process's. Called with mu held.
func (d *Dir) drop() {
	if d.charge != nil {
		d.charge.Give(d.held)
	}
	d.grant.listings.release(d.held)
	d.listing, d.held, d.charge = nil, 0, nil
}

// direntSize is what one entry of a listing costs besides its name.
const direntSize = int64(unsafe.Sizeof(DirEntry{}))

// listingMeter charges a listing as it is read, to charge (nil: to
// nobody) and to budget, the process's bound, so that a listing either
// refuses is given up at the first batch past it rather than read whole.
type listingMeter struct {
	budget *byteBudget
	charge MemoryCharge
	held   int64 // what has been taken from both
}

func (m *listingMeter) take(n int64) bool {
	if !m.budget.reserve(n) {
		return false
	}
	if m.charge != nil && !m.charge.Take(n) {
		m.budget.release(n)
		return false
	}
	m.held += n
	return true
}

// undo gives back everything taken.
func (m *listingMeter) undo() {
	if m.charge != nil {
		m.charge.Give(m.held)
	}
	m.budget.release(m.held)
	m.held = 0
}

// add appends batch to out after charging its names and any room out
// must grow by (before that room is allocated); ENOMEM when refused.
func (m *listingMeter) add(out, batch []DirEntry) ([]DirEntry, error) {
	var n int64
	for i := range batch {
		n += int64(len(batch[i].Name))
	}
	need := len(out) + len(batch)
	newCap := cap(out)
	if need > newCap {
		newCap = max(2*newCap, need)
		n += int64(newCap-cap(out)) * direntSize
	}
	if !m.take(n) {
		return out, ENOMEM
	}
	if newCap > cap(out) {
		out = append(make([]DirEntry, 0, newCap), out...)
	}
	return append(out, batch...), nil
}

// direntNameOff is where the name starts in a Linux dirent64 record.
const direntNameOff = int(unsafe.Offsetof(unix.Dirent{}.Name))

// list reads the directory with getdents64, which reports each entry's
// inode and type without a stat per entry, charging m a batch at a time.
func (d *Dir) list(m *listingMeter) ([]DirEntry, error) {
	f, err := d.root.Open(".")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, err
	}
	var out, batch []DirEntry
	buf := make([]byte, 32<<10)
	var readErr error
	err = rc.Control(func(fd uintptr) {
		var st unix.Stat_t
		if readErr = unix.Fstat(int(fd), &st); readErr != nil {
			return
		}
		batch = append(batch, DirEntry{Name: ".", Type: TypeDirectory, Ino: st.Ino}, DirEntry{Name: "..", Type: TypeDirectory})
		for {
			if out, readErr = m.add(out, batch); readErr != nil {
				return
			}
			n, err := unix.Getdents(int(fd), buf)
			if err != nil || n <= 0 {
				readErr = err
				return
			}
			batch = appendDirents(batch[:0], int(fd), buf[:n])
		}
	})
	if err == nil {
		err = readErr
	}
	if err != nil {
		return nil, err
	}
	sort.Slice(out[2:], func(i, j int) bool { return out[2+i].Name < out[2+j].Name })
	return out, nil
}

// appendDirents decodes the dirent64 records in b, skipping "." and "..".
func appendDirents(out []DirEntry, dirfd int, b []byte) []DirEntry {
	for len(b) >= direntNameOff {
		ino := binary.NativeEndian.Uint64(b[unsafe.Offsetof(unix.Dirent{}.Ino):])
		reclen := int(binary.NativeEndian.Uint16(b[unsafe.Offsetof(unix.Dirent{}.Reclen):]))
		typ := b[unsafe.Offsetof(unix.Dirent{}.Type)]
		if reclen < direntNameOff || reclen > len(b) {
			break
		}
		name := b[direntNameOff:reclen]
		if i := bytes.IndexByte(name, 0); i >= 0 {
			name = name[:i]
		}
		b = b[reclen:]
		if s := string(name); s != "." && s != ".." {
			e := DirEntry{Name: s, Ino: ino, Type: direntType(typ)}
			if typ == unix.DT_UNKNOWN {
				var st unix.Stat_t
				if unix.Fstatat(dirfd, s, &st, unix.AT_SYMLINK_NOFOLLOW) == nil {
					e.Type = fileTypeOf(modeOf(st.Mode))
				}
			}
			out = append(out, e)
		}
	}
	return out
}

func direntType(t uint8) FileType {
	switch t {
	case unix.DT_REG:
		return TypeRegular
	case unix.DT_DIR:
		return TypeDirectory
	case unix.DT_LNK:
		return TypeSymlink
	case unix.DT_CHR:
		return TypeCharDevice
	case unix.DT_BLK:
		return TypeBlockDevice
	case unix.DT_FIFO, unix.DT_SOCK:
		return TypeSocketStream
	}
	return TypeUnknown
}

// modeOf maps the type bits of a host st_mode to an fs.FileMode type.
func modeOf(m uint32) fs.FileMode {
	switch m & unix.S_IFMT {
	case unix.S_IFREG:
		return 0
	case unix.S_IFDIR:
		return fs.ModeDir
	case unix.S_IFLNK:
		return fs.ModeSymlink
	case unix.S_IFCHR:
		return fs.ModeDevice | fs.ModeCharDevice
	case unix.S_IFBLK:
		return fs.ModeDevice
	case unix.S_IFIFO:
		return fs.ModeNamedPipe
	case unix.S_IFSOCK:
		return fs.ModeSocket
	}
	return fs.ModeIrregular
}
