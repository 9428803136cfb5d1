package caps

import (
	"errors"
	"net"
	"os"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"
)

// Socket is a connected byte stream to a host endpoint: a TCP or unix
// connection that the supervisor opened for a guest or that a guest
// accepted from a Listener.
//
// Holding a capability to a Socket allows sending and receiving bytes on
// this one connection and shutting it down, as its rights say. It never
// allows connecting anywhere else, learning or choosing addresses, or
// sending capabilities: a capability means nothing outside the kernel, so
// Send with capabilities attached fails with ENOTSUP.
//
// Every operation is non-blocking (see Resource): reads and writes go
// through syscall.RawConn.Control to the non-blocking descriptor Go's net
// package keeps, and report EAGAIN instead of parking. Waiting is done by
// Poll, through Go's netpoller, so a guest blocked on a socket costs a
// parked goroutine and never an OS thread.
type Socket struct {
	conn net.Conn // owns the descriptor
	rc   syscall.RawConn
	desc string
	tcp  bool
}

// NewSocket wraps a connected host stream. conn must expose its descriptor
// (syscall.Conn), as *net.TCPConn and *net.UnixConn do. The Socket owns
// conn from then on.
func NewSocket(conn net.Conn, desc string) (*Socket, error) {
	rc, err := rawConnOf(conn)
	if err != nil {
		return nil, err
	}
	_, tcp := conn.(*net.TCPConn)
	return &Socket{conn: conn, rc: rc, desc: desc, tcp: tcp}, nil
}

func rawConnOf(x any) (syscall.RawConn, error) {
	sc, ok := x.(syscall.Conn)
	if !ok {
		return nil, errors.New("caps: connection has no host descriptor (syscall.Conn)")
	}
	return sc.SyscallConn()
}

func (s *Socket) Kind() Kind       { return KindSocket }
func (s *Socket) Describe() string { return "sock " + s.desc }
func (s *Socket) Close() error     { return s.conn.Close() }

func (s *Socket) Stat() (FileStat, error) { return FileStat{Type: TypeSocketStream}, nil }

// Read reads what is waiting, as Recv; a read of 0 bytes returns 0 at
// once, as read(2) of 0 bytes on a socket does (recv(2) of 0 bytes asks).
func (s *Socket) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	n, _, _, err := s.Recv([][]byte{p}, 0, false)
	return n, err
}

func (s *Socket) Write(p []byte) (int, error) { return s.Send([][]byte{p}, nil) }

// Recv reads what is waiting, without blocking: EAGAIN when nothing is,
// (0, nil) at end of stream. No capabilities ever arrive on a host socket.
// A receive into no room asks the host all the same, as recv(2) of 0
// bytes does: EAGAIN when nothing waits, an error the connection has
// (ECONNRESET), else 0.
func (s *Socket) Recv(iov [][]byte, maxCaps int, peek bool) (int, []*Cap, RecvFlags, error) {
	flags := unix.MSG_DONTWAIT
	if peek {
		flags |= unix.MSG_PEEK
	}
	var n int
	err := control(s.rc, func(fd int) (err error) {
		n, _, _, _, err = unix.RecvmsgBuffers(fd, iov, nil, flags)
		return err
	})
	if err != nil {
		return 0, nil, 0, err
	}
	return n, nil, 0, nil
}

// RecvMore goes on with a receive that has bytes already (MSG_WAITALL),
// as Linux's own MSG_WAITALL does: on TCP, an error the connection has
// (ECONNRESET) once nothing is left to read ends the receive, with (0,
// nil), and stays for the next one to report; a unix stream's next
// receive takes it, as Linux's takes it when it ends a MSG_WAITALL
// receive that has bytes. Otherwise it is Recv.
func (s *Socket) RecvMore(iov [][]byte) (int, error) {
	var n int
	err := control(s.rc, func(fd int) (err error) {
		if s.tcp && errorOnly(fd) {
			return nil
		}
		n, _, _, _, err = unix.RecvmsgBuffers(fd, iov, nil, unix.MSG_DONTWAIT)
		return err
	})
	return n, err
}

// errorOnly reports whether the TCP socket fd has nothing to read and an
// error to report.
func errorOnly(fd int) bool {
	if q, err := unix.IoctlGetInt(fd, unix.SIOCINQ); err != nil || q > 0 {
		return false
	}
	pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	for {
		_, err := unix.Poll(pfd, 0)
		if err != unix.EINTR {
			break
		}
	}
	return pfd[0].Revents&unix.POLLERR != 0
}

// CarriesCaps reports false: a host socket carries bytes only.
func (s *Socket) CarriesCaps() bool { return false }

// Send writes as much of iov as the host buffer takes, without blocking.
// A send of 0 bytes asks the host all the same, as send(2) does: EPIPE
// once writing was shut down or the peer is gone, an error the connection
// has (ECONNRESET), else 0.
func (s *Socket) Send(iov [][]byte, caps []*Cap) (int, error) {
	if len(caps) > 0 {
		return 0, ENOTSUP
	}
	var n int
	err := control(s.rc, func(fd int) (err error) {
		n, err = unix.SendmsgBuffers(fd, iov, nil, nil, unix.MSG_DONTWAIT|unix.MSG_NOSIGNAL)
		return err
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}

// SendWoken is Send for a blocking send woken from its wait for room,
// which has sent bytes already (sent) or none: an error the connection
// has (a reset, or a unix peer's close with bytes unread) ends the send as
// it ends Linux's blocking send(2). A unix stream's send takes the error
// and reports it, as its wait for room looks for one first (Send would
// find the peer's shutdown first, EPIPE, and leave the error for a read);
// a TCP send that has sent bytes leaves it for the next call (EPIPE here,
// which ends the send with its count), as tcp_sendmsg does.
func (s *Socket) SendWoken(iov [][]byte, sent bool) (int, error) {
	var n int
	err := control(s.rc, func(fd int) (err error) {
		if hasError(fd) {
			if !s.tcp {
				if e, _ := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR); e != 0 {
					return unix.Errno(e)
				}
			} else if sent {
				return unix.EPIPE
			}
		}
		n, err = unix.SendmsgBuffers(fd, iov, nil, nil, unix.MSG_DONTWAIT|unix.MSG_NOSIGNAL)
		return err
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}

// hasError reports whether the socket fd has an error to report (POLLERR).
func hasError(fd int) bool {
	pfd := []unix.PollFd{{Fd: int32(fd)}}
	for {
		_, err := unix.Poll(pfd, 0)
		if err != unix.EINTR {
			break
		}
	}
	return pfd[0].Revents&unix.POLLERR != 0
}

// Shutdown shuts down the read side, the write side, or both.
func (s *Socket) Shutdown(read, write bool) error {
	how := unix.SHUT_RDWR
	switch {
	case read && !write:
		how = unix.SHUT_RD
	case write && !read:
		how = unix.SHUT_WR
	}
	return control(s.rc, func(fd int) error { return unix.Shutdown(fd, how) })
}

func (s *Socket) Poll(want Events, w *Waiter) (Events, func()) { return pollHost(s.rc, want, w) }

// PollFD returns the socket's descriptor (HostPollable).
func (s *Socket) PollFD() (int, bool) { return fdOf(s.rc) }

// fdOf returns rc's descriptor number, or false if it is closed.
func fdOf(rc syscall.RawConn) (fd int, ok bool) {
	err := rc.Control(func(d uintptr) { fd = int(d) })
	return fd, err == nil
}

func totalLen(iov [][]byte) int {
	n := 0
	for _, b := range iov {
		n += len(b)
	}
	return n
}

// control runs f on rc's descriptor, retrying on EINTR, and maps host
// errors to Errno. f must not block: the descriptor is non-blocking.
func control(rc syscall.RawConn, f func(fd int) error) error {
	var ferr error
	if err := rc.Control(func(fd uintptr) {
		for {
			ferr = f(int(fd))
			if ferr != unix.EINTR {
				return
			}
		}
	}); err != nil {
		return EBADF // the descriptor is closed
	}
	if ferr != nil {
		return ErrnoOf(ferr)
	}
	return nil
}

// pollHost implements Pollable for a host descriptor. It asks the kernel
// for the descriptor's readiness with a zero-timeout poll(2), which never
// blocks; when nothing wanted is ready it starts a watcher that wakes w
// through Go's netpoller.
func pollHost(rc syscall.RawConn, want Events, w *Waiter) (Events, func()) {
	var ready Events
	if err := rc.Control(func(fd uintptr) { ready = readiness(int(fd), want) }); err != nil {
		// Closed under us: every operation now fails at once, so it is
		// "ready" in the sense that it will not block.
		return want | EventHangup, noop
	}
	if ready&want != 0 || w == nil {
		return ready, noop
	}
	return ready, watchHost(rc, want, w)
}

// readiness reports which of want the descriptor is ready for now, as
// PollReady says.
func readiness(fd int, want Events) Events {
	pfd := []unix.PollFd{{Fd: int32(fd), Events: PollRequest(want)}}
	for {
		_, err := unix.Poll(pfd, 0)
		if err != unix.EINTR {
			break
		}
	}
	return PollReady(pfd[0].Revents, want)
}

// PollRequest is the events field of a poll(2) entry that asks for want,
// hang-ups included, as HostPollable resources report readiness.
func PollRequest(want Events) int16 {
	var ev int16 = unix.POLLRDHUP
	if want&EventRead != 0 {
		ev |= unix.POLLIN
	}
	if want&EventWrite != 0 {
		ev |= unix.POLLOUT
	}
	return ev
}

// PollReady maps the revents poll(2) returned for a PollRequest(want)
// entry to what Poll reports: a hang-up or error makes the descriptor
// readable and writable too, since the next read or write returns at once
// (end of stream, or the error). A peer that only shut down sending
// (POLLRDHUP) makes it readable (end of stream) but not writable: the peer
// may still read, and a write to a full buffer still waits for room.
func PollReady(revents int16, want Events) Events {
	var ready Events
	if revents&unix.POLLIN != 0 {
		ready |= EventRead
	}
	if revents&unix.POLLOUT != 0 {
		ready |= EventWrite
	}
	switch {
	case revents&(unix.POLLHUP|unix.POLLERR|unix.POLLNVAL) != 0:
		ready |= EventHangup | (want & (EventRead | EventWrite))
	case revents&unix.POLLRDHUP != 0 && want&EventRead != 0:
		ready |= EventHangup | EventRead
	}
	return ready
}

// watchHost parks one goroutine per wanted direction in Go's netpoller on
// a duplicate of rc's descriptor, and wakes w when the descriptor may have
// become ready. The duplicate gives each watcher its own registration, so
// watchers of one socket can be cancelled independently and never hold
// the connection's own read or write lock. The returned cancel function
// closes the duplicate, which ends the watchers at once.
func watchHost(rc syscall.RawConn, want Events, w *Waiter) func() {
	var dup int
	derr := control(rc, func(fd int) (err error) {
		dup, err = unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
		return err
	})
	if derr != nil {
		w.Wake() // let the caller retry the operation and see the error
		return noop
	}
	f := os.NewFile(uintptr(dup), "poll")
	frc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		w.Wake()
		return noop
	}
	var cancelled atomic.Bool
	wait := func(dir Events, rawWait func(func(uintptr) bool) error) {
		checked := false
		_ = rawWait(func(fd uintptr) bool {
			if checked {
				return true // the netpoller saw an edge
			}
			checked = true
			// Readiness that arrived before the netpoller registration
			// produced no edge this watcher can see: look once.
			return readiness(int(fd), dir)&(dir|EventHangup) != 0
		})
		if !cancelled.Load() {
			w.Wake()
		}
	}
	if want&EventRead != 0 {
		go wait(EventRead, frc.Read)
	}
	if want&EventWrite != 0 {
		go wait(EventWrite, frc.Write)
	}
	return func() {
		cancelled.Store(true)
		f.Close() // evicts the parked watchers and waits for them to let go
	}
}
