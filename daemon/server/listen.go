package server

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"github.com/sandboxd/sandboxd/daemon"
	"golang.org/x/sys/unix"
)

// SocketMode is the permission of the control socket: only its owner (the
// daemon's user) and root may connect. Anyone who can connect can launch
// guests with the daemon's authority over the files the grants name.
const SocketMode os.FileMode = 0o600

// Listen creates the control socket at path with mode SocketMode and
// returns its listener. The parent directory is created (mode 0700) if it
// does not exist; a symbolic link on its path that belongs to another user
// than the daemon's or root fails Listen, and the socket is bound where
// the links led (the listener's address). A stale socket left by a daemon
// that died is replaced; a socket with a live daemon behind it is not, and
// Listen fails.
//
// The socket is bound under a umask that leaves it 0600 from the moment
// it exists, so there is no window in which another user could connect.
// Listen changes the process umask for the duration of the bind: call it
// before starting goroutines that create files.
func Listen(path string) (*net.UnixListener, error) {
	if path == "" {
		return nil, errors.New("listen: no socket path given")
	}
	path, err := socketPath(path)
	if err != nil {
		return nil, err
	}
	if err := removeStaleSocket(path); err != nil {
		return nil, err
	}
	old := unix.Umask(0o177)
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	unix.Umask(old)
	if err != nil {
		return nil, bindError(path, err)
	}
	// Closing the listener removes the socket file; a second daemon that
	// replaced a stale socket must not have it removed by the first.
	l.SetUnlinkOnClose(true)
	if err := os.Chmod(path, SocketMode); err != nil {
		l.Close()
		return nil, fmt.Errorf("listen: setting mode of %s: %w", path, err)
	}
	return l, nil
}

// socketPath is where the control socket asked for at path is bound: in
// its directory, made if missing, with the directory's symbolic links
// resolved (daemon.ResolveOwnLinks), so that no link another user owns
// leads the daemon elsewhere, nor one changed later moves the socket.
func socketPath(path string) (string, error) {
	if len(path) > daemon.MaxUnixPath {
		return "", fmt.Errorf("listen on %s: the path is %d bytes, longer than the %d a unix socket's path may have: give a shorter --socket", path, len(path), daemon.MaxUnixPath)
	}
	dir, err := filepath.Abs(filepath.Dir(path))
	if err == nil {
		dir, err = daemon.ResolveOwnLinks(dir)
	}
	if err != nil {
		return "", fmt.Errorf("listen on %s: %w: choose another path with --socket", path, err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("listen: creating socket directory: %w: %s", err, socketAdvice())
	}
	if dir, err = daemon.ResolveOwnLinks(dir); err != nil {
		return "", fmt.Errorf("listen on %s: %w: choose another path with --socket", path, err)
	}
	bound := filepath.Join(dir, filepath.Base(path))
	if len(bound) > daemon.MaxUnixPath {
		return "", fmt.Errorf("listen on %s: its directory's links lead to %s, %d bytes, longer than the %d a unix socket's path may have: give a shorter --socket", path, bound, len(bound), daemon.MaxUnixPath)
	}
	return bound, nil
}

// bindError is the error of a failed bind of the control socket at path.
// A socket bound there already is another process's, which bound it after
// removeStaleSocket found none live: the path's directory is not at fault.
func bindError(path string, err error) error {
	if errors.Is(err, unix.EADDRINUSE) {
		return fmt.Errorf("listen on %s: %w: another process is serving %s: stop it, or give another --socket", path, errors.Unwrap(err), path)
	}
	return fmt.Errorf("listen on %s: %w: %s", path, errors.Unwrap(err), socketAdvice())
}

// socketAdvice is what to do about a socket path the daemon cannot bind
// (a read-only file system, a directory of another user's).
func socketAdvice() string {
	return fmt.Sprintf("choose another path with --socket, in a directory the daemon's user (uid %d) may write", os.Geteuid())
}

// removeStaleSocket deletes path if it is a socket nobody listens on
// (daemon.RemoveStaleSocket), saying what to do when it may not.
func removeStaleSocket(path string) error {
	err := daemon.RemoveStaleSocket(path)
	switch {
	case errors.Is(err, daemon.ErrNotSocket):
		return fmt.Errorf("listen: %s exists and is not a socket; remove it or choose another path with --socket", path)
	case errors.Is(err, daemon.ErrSocketInUse):
		return fmt.Errorf("listen: another sandboxd is already serving %s; stop it or choose another path with --socket", path)
	case err != nil:
		return fmt.Errorf("listen: %w", err)
	}
	return nil
}

// peerCredentials returns the credentials the kernel recorded for the
// process at the other end of c when it connected (SO_PEERCRED). They
// cannot be forged by the peer and do not change if the socket is passed
// to another process.
func peerCredentials(c *net.UnixConn) (*unix.Ucred, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	var cred *unix.Ucred
	var serr error
	if err := rc.Control(func(fd uintptr) {
		cred, serr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return nil, err
	}
	if serr != nil {
		return nil, fmt.Errorf("SO_PEERCRED: %w", serr)
	}
	return cred, nil
}
