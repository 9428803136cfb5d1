package daemon

import (
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
)

// ErrSocketInUse is RemoveStaleSocket's error for a socket something
// answers on.
var ErrSocketInUse = errors.New("something listens on it")

// ErrNotSocket is RemoveStaleSocket's error for a path that exists and is
// not a socket.
var ErrNotSocket = errors.New("it exists and is not a socket")

// RemoveStaleSocket removes the unix socket file at path if nothing
// listens on it: a socket a process left behind when it died or exited
// without closing its listener (the control socket of a daemon that was
// killed, a guest's listen:unix: socket when the daemon stopped). A path
// that does not exist is no error. It removes nothing else: ErrNotSocket
// for a file of another type, ErrSocketInUse when something answers.
func RemoveStaleSocket(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.Mode()&os.ModeSocket == 0 {
		return fmt.Errorf("%s: %w", path, ErrNotSocket)
	}
	c, err := net.Dial("unix", path)
	if err == nil {
		c.Close()
		return fmt.Errorf("%s: %w", path, ErrSocketInUse)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("probing the socket %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("removing the stale socket %s: %w", path, err)
	}
	return nil
}
