package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/hashicorp/go-hclog"
	"github.com/sandboxd/sandboxd/daemon/server"
)

// listenFDsStart is the first descriptor systemd passes (sd_listen_fds(3)).
const listenFDsStart = 3

// controlListener returns serve's control socket: the one systemd passed
// by socket activation (LISTEN_PID is this process and LISTEN_FDS is 1,
// the socket at fd 3, as sd_listen_fds(3) defines), or else a new one at
// path (server.Listen). An activated socket's path and mode are the
// socket unit's (ListenStream=, SocketMode=0600); activated says which.
// What looks like a mistake in the unit is logged: sockets passed to
// another process, an activated socket every user may connect to.
func controlListener(path string, log hclog.Logger) (l *net.UnixListener, activated bool, err error) {
	n, err := listenFDs(log)
	if err != nil || n == 0 {
		if err != nil {
			return nil, false, err
		}
		l, err := server.Listen(path)
		return l, false, err
	}
	if n != 1 {
		return nil, true, fmt.Errorf("socket activation passed %d sockets (LISTEN_FDS): serve takes exactly one, its control socket: give the socket unit one ListenStream= (docs/DAEMON.md, Running under systemd)", n)
	}
	f := os.NewFile(listenFDsStart, "LISTEN_FDS socket")
	defer f.Close() // FileListener dups it
	fl, err := net.FileListener(f)
	if err != nil {
		return nil, true, fmt.Errorf("socket activation: fd %d is not a listening socket: %v", listenFDsStart, err)
	}
	ul, ok := fl.(*net.UnixListener)
	if !ok {
		fl.Close()
		return nil, true, fmt.Errorf("socket activation: fd %d is a %s socket: the control socket must be a unix stream socket (ListenStream=/run/sandboxd/sandboxd.sock)", listenFDsStart, fl.Addr().Network())
	}
	warnIfOpenToAll(log, ul.Addr().String())
	return ul, true, nil
}

// warnIfOpenToAll logs a warning when users other than the socket's
// owner may connect to the activated socket at path: its mode lets them
// write it, and its directory lets them reach it. systemd makes a socket
// 0666 unless the unit says SocketMode=, and whoever connects may launch
// guests.
func warnIfOpenToAll(log hclog.Logger, path string) {
	if path == "" || path[0] == '@' {
		return // an abstract socket has no mode: nothing to check
	}
	sock, err := os.Stat(path)
	if err != nil {
		return
	}
	dir, err := os.Stat(filepath.Dir(path))
	if err != nil {
		return
	}
	if sock.Mode().Perm()&0o022 != 0 && dir.Mode().Perm()&0o011 != 0 {
		log.Warn("the activated control socket admits other users, and whoever connects may launch guests: set SocketMode=0600 in the socket unit unless they should",
			"socket", path, "mode", sock.Mode().Perm().String())
	}
}

// listenFDs reads sd_listen_fds(3)'s variables: how many sockets were
// passed to this process, 0 when none were (or they were meant for
// another process, which is logged: a wrapper that did not exec serve
// keeps them from it). It unsets them, so that nothing this process
// starts takes them as its own.
func listenFDs(log hclog.Logger) (int, error) {
	pid, fds := os.Getenv("LISTEN_PID"), os.Getenv("LISTEN_FDS")
	defer func() {
		os.Unsetenv("LISTEN_PID")
		os.Unsetenv("LISTEN_FDS")
		os.Unsetenv("LISTEN_FDNAMES")
	}()
	if pid == "" || fds == "" {
		return 0, nil
	}
	if me := strconv.Itoa(os.Getpid()); pid != me {
		log.Warn("socket activation: the sockets passed (LISTEN_FDS) are for another process: serving --socket instead; have systemd start serve itself (ExecStart=, or exec it from a wrapper) for it to take them",
			"LISTEN_PID", pid, "pid", me, "LISTEN_FDS", fds)
		return 0, nil
	}
	n, err := strconv.Atoi(fds)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("socket activation: LISTEN_FDS=%q is not a count of sockets", fds)
	}
	return n, nil
}

// sdNotify tells systemd about the service's state (sd_notify(3)) when it
// runs as a Type=notify unit, which sets NOTIFY_SOCKET; otherwise it does
// nothing. state is "READY=1", "STOPPING=1", …
func sdNotify(state string) error {
	addr := os.Getenv("NOTIFY_SOCKET")
	if addr == "" {
		return nil
	}
	if strings.HasPrefix(addr, "@") {
		addr = "\x00" + addr[1:] // an abstract socket
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("sd_notify: %w", err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(state)); err != nil {
		return fmt.Errorf("sd_notify %s: %w", state, err)
	}
	return nil
}
