package caps

import (
	"net"
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"
)

// Listener is a host listening socket (TCP or unix) granted to a guest.
//
// Holding a capability to a Listener allows taking the connections that
// arrive on it, each as a new Socket capability whose rights are within
// the listener's inheriting rights. It never allows choosing the address,
// listening anywhere else, or connecting out.
//
// Accept is non-blocking (EAGAIN when no connection waits) and Poll waits
// through Go's netpoller, as for Socket.
type Listener struct {
	l    net.Listener // owns the descriptor
	rc   syscall.RawConn
	desc string
	file *socketFile // a unix listener's socket file, removed by Close
}

// NewListener wraps a host listener. l must expose its descriptor
// (syscall.Conn), as *net.TCPListener and *net.UnixListener do. The
// Listener owns l from then on. A unix listener's socket file is removed
// when it closes, as net.Listen's listener does, but only that file (see
// socketFile).
func NewListener(l net.Listener, desc string) (*Listener, error) {
	rc, err := rawConnOf(l)
	if err != nil {
		return nil, err
	}
	var sf *socketFile
	if ul, ok := l.(*net.UnixListener); ok {
		if sf = pinSocketFile(ul.Addr().String()); sf != nil {
			ul.SetUnlinkOnClose(false)
		}
	}
	return &Listener{l: l, rc: rc, desc: desc, file: sf}, nil
}

func (l *Listener) Kind() Kind       { return KindListener }
func (l *Listener) Describe() string { return "listen " + l.desc }

func (l *Listener) Close() error {
	if l.file != nil {
		l.file.remove()
	}
	return l.l.Close()
}

// socketFile is the socket file a unix listener bound: its directory,
// held open, and the file's identity. net.UnixListener removes its path
// on close, resolving it again: a symbolic link put in the place of a
// directory on it meanwhile (by whoever can write the directory above, a
// guest with a dir grant of it included) would have the daemon remove a
// file of the socket's name wherever the link leads, and a server that
// bound the path since would lose its socket file.
type socketFile struct {
	dir     int // O_PATH descriptor of the directory the file is in
	name    string
	dev     uint64
	ino     uint64
	removed bool
}

// pinSocketFile returns the socket file at path, or nil when there is
// none to remove (an abstract or unnamed address). The path's links are
// followed: a listener that must bind where no link leads is made with
// SocketDir.Listen, which knows its directory.
func pinSocketFile(path string) *socketFile {
	if path == "" || path[0] == '@' {
		return nil
	}
	dir, err := unix.Open(filepath.Dir(path), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil
	}
	return boundFile(dir, filepath.Base(path))
}

// remove removes the socket file from the directory it was bound in, if
// it is still there, once.
func (f *socketFile) remove() {
	if f.removed {
		return
	}
	f.removed = true
	_ = unlinkIfSame(f.dir, f.name, f.dev, f.ino)
	unix.Close(f.dir)
}

// Addr is the address the listener is bound to.
func (l *Listener) Addr() net.Addr { return l.l.Addr() }

func (l *Listener) Stat() (FileStat, error) { return FileStat{Type: TypeSocketStream}, nil }

// Accept takes the next waiting connection with a non-blocking accept4(2)
// and returns it as a *Socket, or EAGAIN when none is waiting.
// Connections reset before they were taken are skipped, as net.Listener
// does.
func (l *Listener) Accept() (Resource, error) {
	var nfd int
	for {
		err := control(l.rc, func(fd int) (err error) {
			nfd, _, err = unix.Accept4(fd, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
			return err
		})
		if err == ECONNABORTED {
			continue
		}
		if err != nil {
			return nil, err
		}
		break
	}
	f := os.NewFile(uintptr(nfd), "accepted")
	conn, err := net.FileConn(f) // duplicates the descriptor
	f.Close()
	if err != nil {
		return nil, ErrnoOf(err)
	}
	desc := l.desc
	if ra := conn.RemoteAddr(); ra != nil && ra.String() != "" {
		desc += " from " + ra.String()
	}
	s, err := NewSocket(conn, desc)
	if err != nil {
		conn.Close()
		return nil, EIO
	}
	return s, nil
}

// Poll reports EventRead when a connection is waiting to be accepted.
func (l *Listener) Poll(want Events, w *Waiter) (Events, func()) { return pollHost(l.rc, want, w) }

// PollFD returns the listening descriptor (HostPollable).
func (l *Listener) PollFD() (int, bool) { return fdOf(l.rc) }
