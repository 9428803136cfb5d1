//go:build wasip1

package sandboxd

import (
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"
)

// Conn is a channel end or socket that carries handles with its bytes.
// It is also an *os.File underneath (File), so io and net work on it.
//
// Send and Recv never hold up the guest: the handle is non-blocking and
// they wait through Go's netpoller, so other goroutines run meanwhile.
type Conn struct {
	fd uint32
	f  *os.File
	rc syscall.RawConn
	// noticeMu makes RecvNotice calls take turns, so that the notice
	// one sized its buffer for is the one it takes. unwanted counts the
	// answers no one waits for any more (DiscardAnswer), which RecvNotice
	// drops; only it decrements it, holding noticeMu.
	noticeMu sync.Mutex
	unwanted atomic.Int32
}

// NewConn wraps a channel end or socket handle. It makes the handle
// non-blocking (the guest's other users of the same fd see that too).
func NewConn(fd uint32) (*Conn, error) {
	if err := syscall.SetNonblock(int(fd), true); err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), "conn")
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, err
	}
	return &Conn{fd: fd, f: f, rc: rc}, nil
}

// Channel makes a pair of connected channel ends (a stream: message
// boundaries are not kept, but handles arrive with the first byte of the
// bytes they were sent with).
func Channel() (*Conn, *Conn, error) { return channel(filetypeSocketStream) }

// DatagramChannel makes a pair of channel ends that keep message
// boundaries.
func DatagramChannel() (*Conn, *Conn, error) { return channel(filetypeSocketDgram) }

func channel(typ uint32) (*Conn, *Conn, error) {
	a, b := new(uint32), new(uint32)
	if err := errnoErr(fd_create2(typ, unsafe.Pointer(a), unsafe.Pointer(b))); err != nil {
		return nil, nil, err
	}
	ca, err := NewConn(*a)
	if err != nil {
		return nil, nil, err
	}
	cb, err := NewConn(*b)
	if err != nil {
		ca.Close()
		return nil, nil, err
	}
	return ca, cb, nil
}

// Fd returns the handle.
func (c *Conn) Fd() uint32 { return c.fd }

// File returns the connection as an *os.File.
func (c *Conn) File() *os.File { return c.f }

// Read and Write move bytes only, as on any *os.File.
func (c *Conn) Read(b []byte) (int, error)  { return c.f.Read(b) }
func (c *Conn) Write(b []byte) (int, error) { return c.f.Write(b) }

// Close closes the handle.
func (c *Conn) Close() error { return c.f.Close() }

// Send sends data with handles attached. The receiver gets new handles
// derived from these (same rights, revoked when these are), and this
// guest keeps its own. It returns how many bytes were taken; on a stream
// it may be fewer than len(data), and the handles go with the first byte.
func (c *Conn) Send(data []byte, fds ...uint32) (int, error) {
	var n int
	var serr error
	err := c.rc.Write(func(fd uintptr) bool {
		n, serr = sendOnce(uint32(fd), data, fds)
		return serr != syscall.EAGAIN
	})
	if err != nil {
		return 0, err
	}
	return n, serr
}

func sendOnce(sock uint32, data []byte, fds []uint32) (int, error) {
	in := new(sendIn)
	out := new(uint32)
	iov := new(iovec)
	if len(fds) == 0 {
		fds = []uint32{}
	}
	iov.len = uint32(len(data))
	iov.buf = uint32(uintptr(unsafe.Pointer(unsafe.SliceData(data))))
	in.data, in.dataLen = uint32(uintptr(unsafe.Pointer(iov))), 1
	in.fds, in.fdsLen = uint32(uintptr(unsafe.Pointer(unsafe.SliceData(fds)))), uint32(len(fds))
	e := sock_send(sock, unsafe.Pointer(in), unsafe.Pointer(out))
	runtime.KeepAlive(data)
	runtime.KeepAlive(fds)
	runtime.KeepAlive(iov)
	if err := errnoErr(e); err != nil {
		return 0, err
	}
	return int(*out), nil
}

// Received is what one Recv delivered.
type Received struct {
	N    int // bytes written to the buffer
	NFDs int // handles written to fds (now open in this guest)
	// FDsTruncated: more handles arrived than fds had room for; the rest
	// were closed. DataTruncated: a datagram was longer than the buffer;
	// the rest was dropped.
	FDsTruncated, DataTruncated bool
}

// Recv receives into buf, and handles into fds, waiting until something
// arrives. On a stream (Channel), N == 0 with no handles means the other
// end has closed or shut down writing. On a datagram channel a datagram
// of 0 bytes reads the same, and so does one of handles alone when fds
// has no room for them (with FDsTruncated): a protocol that sends either
// must tell the end some other way, by a message that says so.
func (c *Conn) Recv(buf []byte, fds []uint32) (Received, error) {
	return c.recv(buf, fds, 0)
}

// recv is Recv with sock_recv's flags (recvPeek: look at what waits
// without taking it).
func (c *Conn) recv(buf []byte, fds []uint32, flags uint16) (Received, error) {
	var r Received
	var rerr error
	err := c.rc.Read(func(fd uintptr) bool {
		r, rerr = recvOnce(uint32(fd), buf, fds, flags)
		return rerr != syscall.EAGAIN
	})
	if err != nil {
		return Received{}, err
	}
	return r, rerr
}

func recvOnce(sock uint32, buf []byte, fds []uint32, flags uint16) (Received, error) {
	in := new(recvIn)
	out := new(recvOut)
	iov := new(iovec)
	if len(fds) == 0 {
		fds = []uint32{}
	}
	iov.len = uint32(len(buf))
	iov.buf = uint32(uintptr(unsafe.Pointer(unsafe.SliceData(buf))))
	in.data, in.dataLen = uint32(uintptr(unsafe.Pointer(iov))), 1
	in.fds, in.fdsLen = uint32(uintptr(unsafe.Pointer(unsafe.SliceData(fds)))), uint32(len(fds))
	in.flags = flags
	e := sock_recv(sock, unsafe.Pointer(in), unsafe.Pointer(out))
	runtime.KeepAlive(buf)
	runtime.KeepAlive(fds)
	runtime.KeepAlive(iov)
	if err := errnoErr(e); err != nil {
		return Received{}, err
	}
	return Received{
		N: int(out.dataLen), NFDs: int(out.fdsLen),
		FDsTruncated:  out.flags&recvFDsTruncated != 0,
		DataTruncated: out.flags&recvDataTruncated != 0,
	}, nil
}
