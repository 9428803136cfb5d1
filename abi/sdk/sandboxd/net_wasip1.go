//go:build wasip1

package sandboxd

import (
	"context"
	"fmt"
	"net"
	"os"
	"syscall"
	"unsafe"
)

// NetConn returns the connected socket named name (a `--grant sock:NAME`)
// as a net.Conn, ready to use. It makes the handle non-blocking first, so
// that reads and writes wait through Go's netpoller and the guest's other
// goroutines run meanwhile. A handle that is not a socket is ENOTSOCK,
// here and in NetListener and DialFunc, and stays open.
//
// The net.Conn owns the handle: closing it closes the handle (and the
// connection). A second NetConn, NetListener, DialFunc, File or
// Supervisor of the name, even after that Close, is ErrHandleTaken: one
// connected socket is one connection, and a second net.Conn on it would
// close it under the first. For more connections to one target, grant a
// dialer (`--grant sock:NAME:dial`) and use DialFunc.
func NetConn(name string) (net.Conn, error) {
	f, err := netFile(name, "NetConn", false)
	if err != nil {
		return nil, err
	}
	// The net.Conn holds its own reference to the handle. netFile let
	// through only what net.FileConn takes; were it to fail anyway, the
	// handle is closed and stays taken.
	defer f.Close()
	return net.FileConn(f)
}

// NetListener returns the listener named name (a `--grant listen:NAME`)
// or the dialer named name (`--grant sock:NAME:dial`) as a net.Listener.
// Accept on a listener takes the next incoming connection; on a dialer it
// opens a new connection to the dialer's one target. A datagram socket
// has no connections to accept: it is EOPNOTSUPP, here and in DialFunc,
// and stays open. The net.Listener owns the handle, as NetConn's net.Conn
// does: a second call for the name is ErrHandleTaken.
func NetListener(name string) (net.Listener, error) { return netListener(name, "NetListener") }

// netListener is NetListener for the call by.
func netListener(name, by string) (net.Listener, error) {
	f, err := netFile(name, by, true)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return net.FileListener(f)
}

// DialFunc returns a dial function on the dialer named name (`--grant
// sock:NAME:dial`), of the shape database and HTTP clients take for their
// connection pools. Each call opens a new connection to the dialer's
// target; network and address are ignored, since the dialer reaches that
// one target only. A call already waiting for its connection is not
// interrupted by ctx: the supervisor bounds each attempt (ETIMEDOUT).
// The function owns the dialer handle for the rest of the guest's life:
// call DialFunc once per name and share the function; a second call is
// ErrHandleTaken.
func DialFunc(name string) (func(ctx context.Context, network, address string) (net.Conn, error), error) {
	l, err := netListener(name, "DialFunc")
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context, _, _ string) (net.Conn, error) {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		c, err := l.Accept()
		if err != nil {
			return nil, fmt.Errorf("sandboxd: dial %s: %w", name, err)
		}
		return c, nil
	}, nil
}

// netFile takes the handle named name for the call by and returns it as a
// non-blocking *os.File, for a listener (or dialer) if listener is set.
// What net.FileConn and net.FileListener would refuse for its kind is
// refused here, and the handle left open and not taken: an *os.File made
// of it would close it when closed or collected, and they close theirs
// when they refuse it.
func netFile(name, by string, listener bool) (*os.File, error) {
	fd, ok := Handle(name)
	if !ok {
		return nil, fmt.Errorf("sandboxd: no handle named %q: the guest was not granted it (--grant sock:%s, sock:%s:dial or listen:%s)", name, name, name, name)
	}
	release, err := take(name, by)
	if err != nil {
		return nil, err
	}
	if err := checkNetHandle(name, fd, listener); err != nil {
		release()
		return nil, err
	}
	return os.NewFile(uintptr(fd), name), nil
}

// checkNetHandle checks that fd, the handle named name, is a socket (one
// with connections to accept if listener is set), and makes it
// non-blocking.
func checkNetHandle(name string, fd uint32, listener bool) error {
	st := new(fdstat)
	if err := errnoErr(fd_stat_get(fd, unsafe.Pointer(st))); err != nil {
		return fmt.Errorf("sandboxd: handle %q: %w", name, err)
	}
	if st.filetype != filetypeSocketStream && st.filetype != filetypeSocketDgram {
		return fmt.Errorf("sandboxd: handle %q is not a socket, listener or dialer: %w", name, syscall.ENOTSOCK)
	}
	if listener && st.filetype == filetypeSocketDgram {
		return fmt.Errorf("sandboxd: handle %q is a datagram socket, which has no connections to accept (NetConn takes it): %w", name, syscall.EOPNOTSUPP)
	}
	if err := syscall.SetNonblock(int(fd), true); err != nil {
		return fmt.Errorf("sandboxd: handle %q: %w", name, err)
	}
	return nil
}
