package caps

import (
	"net"
	"os"
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
}

// NewListener wraps a host listener. l must expose its descriptor
// (syscall.Conn), as *net.TCPListener and *net.UnixListener do. The
// Listener owns l from then on.
func NewListener(l net.Listener, desc string) (*Listener, error) {
	rc, err := rawConnOf(l)
	if err != nil {
		return nil, err
	}
	return &Listener{l: l, rc: rc, desc: desc}, nil
}

func (l *Listener) Kind() Kind       { return KindListener }
func (l *Listener) Describe() string { return "listen " + l.desc }
func (l *Listener) Close() error     { return l.l.Close() }

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
