package caps

import (
	"context"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"sync"

	"golang.org/x/sys/unix"
)

// SocketPath is the path of a unix socket file to connect to, pinned to
// the directories it led to when it was opened. connect(2), like bind(2),
// takes neither a directory descriptor nor a flag against symbolic links:
// a socket connected to by its path is whatever the links on the path
// lead to at that moment. A SocketPath holds open (O_PATH) the deepest
// directory of the path that existed when it was opened, reached following
// no link, and connects to the socket beneath that directory, following no
// link there either. Holding one allows connecting to the socket file at
// the rest of the path in that directory, and nothing else: a symbolic
// link put on the path since (by a guest with a dir grant above it, say)
// fails the connection with ELOOP and leads nowhere, and a directory of
// the path moved aside and replaced keeps the socket in the one moved.
//
// The socket file is looked up anew on each Dial, so a server that
// removes its socket and binds it again (a restart) is reached again. A
// directory removed since it was opened (its link count 0: a server that
// removes its runtime directory when it stops and makes it anew when it
// starts) is replaced by the directory of the same name in the same
// parent, opened following no link. Removing it takes removing every
// file in it, the socket file included, which whoever could do could
// replace the socket file as well; once it is gone, whoever can make a
// directory in the parent decides which directory that is, as they would
// for the path itself. A directory that was moved, not removed, stays
// the one looked in.
type SocketPath struct {
	path string

	mu     sync.Mutex // guards dir and closed
	closed bool
	dir    int    // the deepest directory of path that existed when opened
	parent int    // dir's parent, to look dir up again if it is removed; -1 for the root
	name   string // dir's name in parent
	rest   string // what of path is beneath dir: the socket's file name, and the directories above it that did not exist then
}

// OpenSocketPath pins path, the absolute path of a unix socket file with
// its symbolic links already resolved (RealPath), where it leads now:
// the deepest of its directories that exists is opened following no
// link. A link on the path is an *fs.PathError with ELOOP. The socket
// file itself need not exist yet, nor the directories above it that do
// not: they are looked for on each Dial.
func OpenSocketPath(path string) (*SocketPath, error) {
	if !filepath.IsAbs(path) || filepath.Clean(path) == "/" {
		return nil, &fs.PathError{Op: "open", Path: path, Err: unix.EINVAL}
	}
	path = filepath.Clean(path)
	dir, rest := filepath.Dir(path), filepath.Base(path)
	for {
		p, err := openBelowParent(dir, rest)
		if err != unix.ENOENT {
			return p, err
		}
		dir, rest = filepath.Dir(dir), filepath.Join(filepath.Base(dir), rest)
	}
}

// openBelowParent returns the SocketPath of dir/rest with dir opened
// beneath its parent, both following no link; ENOENT, unwrapped, when
// either does not exist.
func openBelowParent(dir, rest string) (*SocketPath, error) {
	p := &SocketPath{path: filepath.Join(dir, rest), parent: -1, name: filepath.Base(dir), rest: rest}
	if dir == "/" {
		fd, err := openDirNoLinks("/")
		if err != nil {
			return nil, &fs.PathError{Op: "open", Path: dir, Err: err}
		}
		p.dir = fd
		return p, nil
	}
	parent, err := openDirNoLinks(filepath.Dir(dir))
	if err == unix.ENOENT {
		return nil, err
	}
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: filepath.Dir(dir), Err: err}
	}
	fd, err := openNoLinks(parent, p.name, true)
	if err != nil {
		unix.Close(parent)
		if err == unix.ENOENT {
			return nil, err
		}
		return nil, &fs.PathError{Op: "open", Path: dir, Err: err}
	}
	p.dir, p.parent = fd, parent
	return p, nil
}

// Path is the socket file's path as pinned.
func (p *SocketPath) Path() string { return p.path }

// Close closes the directories held. A Dial running meanwhile fails or
// completes on its own descriptor; later ones fail with EBADF.
func (p *SocketPath) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	p.closed = true
	if p.parent >= 0 {
		unix.Close(p.parent)
	}
	return unix.Close(p.dir)
}

// Dial connects to the socket file, looked up now beneath the directory
// held, following no link: ELOOP if an element is a link, ENOENT if the
// socket file (or a directory above it made since) does not exist. The
// file is opened (O_PATH) and connected to through its /proc/self/fd
// entry (ErrNoProc where /proc is not mounted). Errors are *net.OpError,
// as nd.DialContext's.
func (p *SocketPath) Dial(ctx context.Context, nd *net.Dialer) (net.Conn, error) {
	fd, err := p.openSocket()
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: "unix", Addr: &net.UnixAddr{Name: p.path, Net: "unix"}, Err: os.NewSyscallError("openat", err)}
	}
	defer unix.Close(fd)
	if protected(fd) {
		return nil, &net.OpError{Op: "dial", Net: "unix", Addr: &net.UnixAddr{Name: p.path, Net: "unix"}, Err: ErrProtectedSocket}
	}
	c, err := nd.DialContext(ctx, "unix", fdPath(fd))
	if err != nil && viaProc(err) == ErrNoProc {
		return nil, &net.OpError{Op: "dial", Net: "unix", Addr: &net.UnixAddr{Name: p.path, Net: "unix"}, Err: ErrNoProc}
	}
	return c, err
}

// openSocket opens the socket file beneath the directory held (O_PATH),
// following no link.
func (p *SocketPath) openSocket() (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return -1, unix.EBADF
	}
	p.replaceRemoved()
	return openNoLinks(p.dir, p.rest, false)
}

// replaceRemoved puts the directory now named p.name in p.parent in the
// place of p.dir if p.dir has been removed (its link count is 0). It
// keeps p.dir while there is none, and the lookup beneath it fails with
// ENOENT.
func (p *SocketPath) replaceRemoved() {
	var st unix.Stat_t
	if p.parent < 0 || unix.Fstat(p.dir, &st) != nil || st.Nlink != 0 {
		return
	}
	fd, err := openNoLinks(p.parent, p.name, true)
	if err != nil {
		return
	}
	unix.Close(p.dir)
	p.dir = fd
}
