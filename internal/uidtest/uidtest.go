// Package uidtest connects to unix sockets as other users, for tests of
// what a daemon does with the credentials the kernel records for its
// peers (SO_PEERCRED). It needs root.
package uidtest

import (
	"fmt"
	"net"
	"runtime"

	"golang.org/x/sys/unix"
)

// Dial makes n connections to the unix socket at path as uid and gid.
//
// The kernel records the credentials of the thread that calls connect(2),
// so Dial connects from a thread of its own whose effective ids it sets
// first; the process's other threads keep theirs. The thread is never
// returned to the Go scheduler: it exits with the goroutine that locked
// it, and the runtime starts no thread from a locked one, so no other
// goroutine ever runs with these ids. The socket and its directories must
// admit uid.
func Dial(path string, uid, gid uint32, n int) ([]*net.UnixConn, error) {
	type result struct {
		conns []*net.UnixConn
		err   error
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: see above
		conns, err := dialAs(path, uid, gid, n)
		done <- result{conns, err}
	}()
	r := <-done
	return r.conns, r.err
}

func dialAs(path string, uid, gid uint32, n int) ([]*net.UnixConn, error) {
	if err := become(uid, gid); err != nil {
		return nil, err
	}
	conns := make([]*net.UnixConn, 0, n)
	for range n {
		c, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: path, Net: "unix"})
		if err != nil {
			for _, c := range conns {
				c.Close()
			}
			return nil, fmt.Errorf("connection %d of %d as uid %d: %w", len(conns)+1, n, uid, err)
		}
		conns = append(conns, c)
	}
	return conns, nil
}

// Listen listens on the unix socket at path as uid and gid, so that the
// credentials the kernel records for it (SO_PEERCRED, as its clients see
// them) are that user's. As Dial, it does so from a locked thread of its
// own. The directory must admit uid.
func Listen(path string, uid, gid uint32) (*net.UnixListener, error) {
	type result struct {
		l   *net.UnixListener
		err error
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: see Dial
		if err := become(uid, gid); err != nil {
			done <- result{nil, err}
			return
		}
		l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
		done <- result{l, err}
	}()
	r := <-done
	return r.l, r.err
}

// become sets the calling thread's effective ids. Raw system calls change
// this thread only; syscall.Setresuid would change every thread of the
// process.
func become(uid, gid uint32) error {
	const keep = ^uintptr(0) // -1: leave that id as it is
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESGID, keep, uintptr(gid), keep); e != 0 {
		return fmt.Errorf("setting effective gid %d: %w", gid, e)
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESUID, keep, uintptr(uid), keep); e != 0 {
		return fmt.Errorf("setting effective uid %d: %w", uid, e)
	}
	return nil
}
