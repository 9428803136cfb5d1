package daemon

import (
	"errors"
	"io/fs"
	"path/filepath"

	"github.com/sandboxd/sandboxd/caps"
)

// ErrSocketInUse is RemoveStaleSocket's error for a socket something
// answers on.
var ErrSocketInUse = caps.ErrSocketInUse

// ErrNotSocket is RemoveStaleSocket's error for a path that exists and is
// not a socket.
var ErrNotSocket = caps.ErrNotSocket

// RemoveStaleSocket removes the unix socket file at path if nothing
// listens on it: a socket a process left behind when it died or exited
// without closing its listener (the control socket of a daemon that was
// killed, a guest's listen:unix: socket when the daemon stopped). A path
// that does not exist is no error. It removes nothing else: ErrNotSocket
// for a file of another type, ErrSocketInUse when something answers. The
// links of path's directory are resolved once, and the socket probed and
// removed in the directory they led to (caps.SocketDir.RemoveStale).
func RemoveStaleSocket(path string) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	d, err := caps.OpenSocketDir(caps.RealPath(filepath.Dir(abs)))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer d.Close()
	return d.RemoveStale(filepath.Base(abs))
}
