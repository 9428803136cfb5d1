package caps

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// MaxUnixPath is the longest unix socket path Linux takes: sun_path holds
// 108 bytes with the terminating NUL.
const MaxUnixPath = 107

// ErrSocketInUse is SocketDir.RemoveStale's error for a socket something
// answers on.
var ErrSocketInUse = errors.New("something listens on it")

// ErrNotSocket is SocketDir.RemoveStale's error for a file that exists
// and is not a socket.
var ErrNotSocket = errors.New("it exists and is not a socket")

// ErrNoProc is the error of binding, connecting to or probing a unix
// socket beneath its directory (SocketDir, SocketPath) where /proc, through
// which that is done, is not mounted.
var ErrNoProc = errors.New("/proc is not mounted, and the daemon binds and connects to unix sockets through /proc/self/fd: mount it (mount -t proc proc /proc)")

// SocketDir is a directory held open (O_PATH) to bind a unix socket in.
// bind(2), unlike openat(2), takes neither a directory descriptor nor a
// flag against symbolic links: a socket bound by its path lands wherever
// the links on the path lead at that moment. Opened following no link,
// and bound beneath its /proc/self/fd entry, the socket lands in the
// directory the path led to when it was opened, whatever has been put in
// the place of a directory on it since (by a guest with a dir grant above
// it, say); a stale socket file is probed and removed in that same
// directory, and so is the socket's own file when its listener closes.
type SocketDir struct {
	fd   int
	path string
}

// OpenSocketDir opens the directory at path, an absolute path, following
// no symbolic link in it: an *fs.PathError with ELOOP if an element is
// one.
func OpenSocketDir(path string) (*SocketDir, error) {
	fd, err := openDirNoLinks(path)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	return &SocketDir{fd: fd, path: path}, nil
}

// Close closes the directory. Listeners bound in it keep their own
// descriptor of it.
func (d *SocketDir) Close() error { return unix.Close(d.fd) }

// Path is the path the directory was opened at.
func (d *SocketDir) Path() string { return d.path }

// MaxName is the longest file name a socket can be bound with in d: its
// address, /proc/self/fd/FD/NAME, must fit in MaxUnixPath bytes.
func (d *SocketDir) MaxName() int { return MaxUnixPath - len(d.beneath("")) }

// beneath is the path that reaches name in d through d's descriptor.
func (d *SocketDir) beneath(name string) string {
	return fdPath(d.fd) + "/" + name
}

// procFD is the directory through which this process reaches its own
// descriptors by path: bind(2) and connect(2) take no directory
// descriptor, so a unix socket is bound and connected to through it. A
// variable for tests.
var procFD = "/proc/self/fd/"

// fdPath is the path that reaches what the descriptor fd is open on.
func fdPath(fd int) string { return procFD + strconv.Itoa(fd) }

// viaProc is err, from binding or connecting through fdPath, or ErrNoProc
// when err is ENOENT and procFD itself is missing: the socket and its
// directory are there, /proc is not.
func viaProc(err error) error {
	if errors.Is(err, unix.ENOENT) {
		if _, serr := os.Stat(procFD); serr != nil {
			return ErrNoProc
		}
	}
	return err
}

// checkSocketName checks that name is one element of a path.
func checkSocketName(name string) error {
	if name == "" || name == "." || name == ".." || strings.Contains(name, "/") {
		return fmt.Errorf("caps: %q is not a file name", name)
	}
	return nil
}

// RemoveStale removes the unix socket file name in d if nothing listens
// on it: one a process left behind when it died or exited without closing
// its listener. A name that does not exist is no error. It removes
// nothing else: ErrNotSocket for a file of another type (a symbolic link
// included, which is not followed), ErrSocketInUse when something
// answers; ErrNoProc, and nothing removed, where /proc, through which
// the socket is probed, is not mounted. The socket is probed, and
// removed, in d only, and only if it is still the file that was probed.
func (d *SocketDir) RemoveStale(name string) error {
	if err := checkSocketName(name); err != nil {
		return err
	}
	path := filepath.Join(d.path, name)
	f, err := unix.Openat(d.fd, name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err == unix.ENOENT {
		return nil
	}
	if err != nil {
		return &fs.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(f)
	var st unix.Stat_t
	if err := unix.Fstat(f, &st); err != nil {
		return &fs.PathError{Op: "stat", Path: path, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFSOCK {
		return fmt.Errorf("%s: %w", path, ErrNotSocket)
	}
	c, err := net.Dial("unix", fdPath(f))
	if err == nil {
		c.Close()
		return fmt.Errorf("%s: %w", path, ErrSocketInUse)
	}
	if !errors.Is(err, unix.ECONNREFUSED) {
		var oe *net.OpError
		if errors.As(err, &oe) {
			err = oe.Err // without the fdPath dialed, which means nothing to a reader
		}
		return fmt.Errorf("probing the socket %s: %w", path, viaProc(err))
	}
	if err := unlinkIfSame(d.fd, name, st.Dev, st.Ino); err != nil {
		return fmt.Errorf("removing the stale socket %s: %w", path, err)
	}
	return nil
}

// unlinkIfSame removes name from the directory dir if it is still the
// file dev and ino identify; a name that is gone is no error.
func unlinkIfSame(dir int, name string, dev, ino uint64) error {
	var st unix.Stat_t
	err := unix.Fstatat(dir, name, &st, unix.AT_SYMLINK_NOFOLLOW)
	if err == nil && st.Dev == dev && st.Ino == ino {
		err = unix.Unlinkat(dir, name, 0)
	}
	if err == unix.ENOENT {
		return nil
	}
	return err
}

// Listen binds a unix stream socket named name in d, through d's
// descriptor, and listens on it. desc says what it is for logs and the
// capability graph. The Listener removes its socket file from d when it
// closes, if it is still the one it bound (socketFile). A name longer
// than MaxName is ENAMETOOLONG; the bind's errors are net.Listen's, or
// ErrNoProc.
func (d *SocketDir) Listen(name, desc string) (*Listener, error) {
	if err := checkSocketName(name); err != nil {
		return nil, err
	}
	addr := d.beneath(name)
	if len(addr) > MaxUnixPath {
		return nil, &net.OpError{Op: "listen", Net: "unix", Err: os.NewSyscallError("bind", unix.ENAMETOOLONG)}
	}
	dir, err := unix.FcntlInt(uintptr(d.fd), unix.F_DUPFD_CLOEXEC, 0) // the listener's, to remove its file
	if err != nil {
		return nil, &net.OpError{Op: "listen", Net: "unix", Err: os.NewSyscallError("fcntl", err)}
	}
	ul, err := net.ListenUnix("unix", &net.UnixAddr{Name: addr, Net: "unix"})
	if err != nil {
		unix.Close(dir)
		if viaProc(err) == ErrNoProc {
			return nil, &net.OpError{Op: "listen", Net: "unix", Addr: &net.UnixAddr{Name: filepath.Join(d.path, name), Net: "unix"}, Err: ErrNoProc}
		}
		return nil, err
	}
	// Go would remove the file by its /proc/self/fd path, which leads
	// nowhere, or elsewhere, once d is closed.
	ul.SetUnlinkOnClose(false)
	rc, err := rawConnOf(ul)
	if err != nil {
		ul.Close()
		unix.Close(dir)
		return nil, err
	}
	return &Listener{l: ul, rc: rc, desc: desc, file: boundFile(dir, name)}, nil
}

// boundFile returns the socket file name in dir, which owns dir, or nil
// (and closes dir) when there is none to remove: it was replaced by
// something other than a socket as soon as it was bound.
func boundFile(dir int, name string) *socketFile {
	var st unix.Stat_t
	if err := unix.Fstatat(dir, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil || st.Mode&unix.S_IFMT != unix.S_IFSOCK {
		unix.Close(dir)
		return nil
	}
	return &socketFile{dir: dir, name: name, dev: st.Dev, ino: st.Ino}
}
