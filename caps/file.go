package caps

import (
	"io"
	"os"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// File is an open host file: a regular file opened beneath a directory
// capability, or granted on its own. Holding a capability to it allows the
// operations its rights name on this one open file, and nothing on any
// other path: a File has no path-based operations.
//
// Every handle derived from one capability to a File (dup, delegation)
// shares the open file, as dup'd POSIX descriptors share an open file
// description: the offset, and the append mode (SetAppend), are shared.
type File struct {
	f    *os.File
	rc   syscall.RawConn
	desc string
	typ  FileType
}

// NewFile wraps an open host file. desc is how logs name it.
func NewFile(f *os.File, desc string) *File {
	typ := TypeUnknown
	if fi, err := f.Stat(); err == nil {
		typ = fileTypeOf(fi.Mode())
	}
	return newFile(f, desc, typ)
}

func newFile(f *os.File, desc string, typ FileType) *File {
	nf := &File{f: f, desc: desc, typ: typ}
	nf.rc, _ = f.SyscallConn() // fails only on a closed file; control then reports EBADF
	return nf
}

// hostStream is a File on a FIFO or a character device, opened beneath a
// directory. Its host descriptor is non-blocking, and its reads and writes
// return EAGAIN rather than wait, so that a guest's blocking read or write
// waits the way one on a socket does (Pollable): a kill, a revocation or
// the guest's deadline ends the wait. Reading a FIFO the guest itself
// holds open for writing would otherwise park the daemon's goroutine for
// good.
type hostStream struct{ *File }

// newHostStream wraps f, opened with O_NONBLOCK.
func newHostStream(f *os.File, desc string, typ FileType) hostStream {
	return hostStream{newFile(f, desc, typ)}
}

func (s hostStream) Read(p []byte) (int, error)  { return s.do(unix.Read, p) }
func (s hostStream) Write(p []byte) (int, error) { return s.do(unix.Write, p) }

// do runs op (read or write) on the descriptor once, without waiting.
func (s hostStream) do(op func(fd int, p []byte) (int, error), p []byte) (int, error) {
	if s.rc == nil {
		return 0, EBADF // see File.control
	}
	var n int
	err := control(s.rc, func(fd int) (err error) {
		n, err = op(fd, p)
		return err
	})
	return max(n, 0), err
}

// Poll reports the descriptor's readiness (Pollable).
func (s hostStream) Poll(want Events, w *Waiter) (Events, func()) { return pollHost(s.rc, want, w) }

// PollFD returns the descriptor (HostPollable).
func (s hostStream) PollFD() (int, bool) { return fdOf(s.rc) }

// OS returns the host file.
func (f *File) OS() *os.File { return f.f }

func (f *File) Kind() Kind       { return KindFile }
func (f *File) Close() error     { return f.f.Close() }
func (f *File) Describe() string { return "file " + f.desc }

// FileType is the type of the host object, known since it was opened: a
// file capability may designate a device or a FIFO as well as a regular
// file.
func (f *File) FileType() FileType { return f.typ }

// control runs fn on the host descriptor while the os.File keeps it open,
// so that a concurrent Close cannot hand fn a recycled descriptor number.
func (f *File) control(fn func(fd int) error) error {
	if f.rc == nil {
		return EBADF
	}
	var opErr error
	if err := f.rc.Control(func(fd uintptr) { opErr = fn(int(fd)) }); err != nil {
		return EBADF // Control fails only once the file is closed
	}
	return opErr
}

func (f *File) Read(p []byte) (int, error) {
	n, err := f.f.Read(p)
	if err == io.EOF {
		err = nil
	}
	return n, err
}

func (f *File) Write(p []byte) (int, error) { return f.f.Write(p) }

func (f *File) ReadAt(p []byte, off int64) (int, error) {
	n, err := f.f.ReadAt(p, off)
	if err == io.EOF {
		err = nil
	}
	return n, err
}

// WriteAt writes at off with pwrite(2). os.File.WriteAt refuses files in
// append mode; Linux's pwrite appends there, which is what POSIX guests
// running on Linux expect.
func (f *File) WriteAt(p []byte, off int64) (int, error) {
	var n int
	err := f.control(func(fd int) error {
		var err error
		n, err = unix.Pwrite(fd, p, off)
		return err
	})
	if n < 0 {
		n = 0
	}
	return n, err
}

// Readv, Writev, Preadv and Pwritev move several buffers in one host
// call, readv(2), writev(2), preadv(2) and pwritev(2), rather than one
// per buffer: what one call writes is not interleaved with another
// writer's append, on a pipe the PIPE_BUF rule applies to the whole
// transfer, and a packet-mode pipe's packet is the whole transfer. They
// move what one call moves, so a transfer may be short; on a FIFO's
// non-blocking descriptor one that can move nothing is EAGAIN. iov holds
// at most 1024 buffers (IOV_MAX; the kernel refuses more, EINVAL).
func (f *File) Readv(iov [][]byte) (int, error) {
	return f.vector(func(fd int) (int, error) { return unix.Readv(fd, iov) })
}

func (f *File) Writev(iov [][]byte) (int, error) {
	return f.vector(func(fd int) (int, error) { return unix.Writev(fd, iov) })
}

func (f *File) Preadv(iov [][]byte, off int64) (int, error) {
	return f.vector(func(fd int) (int, error) { return unix.Preadv(fd, iov, off) })
}

// Pwritev appends on a file in append mode, as pwritev(2) does (see
// WriteAt).
func (f *File) Pwritev(iov [][]byte, off int64) (int, error) {
	return f.vector(func(fd int) (int, error) { return unix.Pwritev(fd, iov, off) })
}

// vector runs op on the descriptor once (again only if a signal
// interrupted it before it moved a byte) and returns what it moved.
func (f *File) vector(op func(fd int) (int, error)) (int, error) {
	if f.rc == nil {
		return 0, EBADF // see File.control
	}
	var n int
	err := control(f.rc, func(fd int) (err error) {
		n, err = op(fd)
		return err
	})
	return max(n, 0), err
}

func (f *File) Seek(off int64, whence int) (int64, error) { return f.f.Seek(off, whence) }
func (f *File) Sync() error                               { return f.f.Sync() }
func (f *File) Truncate(n int64) error                    { return f.f.Truncate(n) }

func (f *File) Datasync() error {
	return f.control(func(fd int) error { return unix.Fdatasync(fd) })
}

// Allocate makes sure the bytes [off, off+n) are allocated, growing the
// file if it is shorter (posix_fallocate). On file systems that cannot
// reserve space it still grows the file, as glibc's emulation does, so the
// size guarantee holds everywhere.
func (f *File) Allocate(off, n int64) error {
	return f.control(func(fd int) error {
		err := unix.Fallocate(fd, 0, off, n)
		if err != unix.EOPNOTSUPP {
			return err
		}
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			return err
		}
		if st.Size < off+n {
			return unix.Ftruncate(fd, off+n)
		}
		return nil
	})
}

// Advise is posix_fadvise(2) on the descriptor (advice: a POSIX_FADV_*
// value), so that the kernel answers as it would a host program: ESPIPE
// for a FIFO.
func (f *File) Advise(off, n int64, advice int) error {
	return f.control(func(fd int) error { return unix.Fadvise(fd, off, n, advice) })
}

// Append reports whether writes go to the end of the file. It asks the
// host, which is the one authority: anything holding the descriptor may
// have changed the flag.
func (f *File) Append() bool {
	on := false
	_ = f.control(func(fd int) error {
		fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
		on = err == nil && fl&unix.O_APPEND != 0
		return err
	})
	return on
}

// SetAppend turns append mode on or off for every handle to the file.
func (f *File) SetAppend(on bool) error {
	return f.control(func(fd int) error {
		fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
		if err != nil {
			return err
		}
		if on {
			fl |= unix.O_APPEND
		} else {
			fl &^= unix.O_APPEND
		}
		_, err = unix.FcntlInt(uintptr(fd), unix.F_SETFL, fl)
		return err
	})
}

func (f *File) Stat() (FileStat, error) {
	fi, err := f.f.Stat()
	if err != nil {
		return FileStat{}, err
	}
	return statOf(fi), nil
}

// SetTimes is futimens(2): utimensat with a NULL path acts on the
// descriptor itself on every Linux version (AT_EMPTY_PATH is newer).
func (f *File) SetTimes(atime, mtime *time.Time) error {
	ts := utimes(atime, mtime)
	return f.control(func(fd int) error {
		_, _, e := unix.Syscall6(unix.SYS_UTIMENSAT, uintptr(fd), 0, uintptr(unsafe.Pointer(&ts[0])), 0, 0, 0)
		if e != 0 {
			return e
		}
		return nil
	})
}

func statOf(fi os.FileInfo) FileStat {
	st := FileStat{Type: fileTypeOf(fi.Mode()), Size: uint64(fi.Size()), HostMode: fi.Mode()}
	st.Mtim = fi.ModTime().UnixNano()
	st.Atim, st.Ctim = st.Mtim, st.Mtim
	if s, ok := fi.Sys().(*syscall.Stat_t); ok {
		st.Dev, st.Ino, st.Nlink = s.Dev, s.Ino, uint64(s.Nlink)
		st.Atim = s.Atim.Nano()
		st.Mtim = s.Mtim.Nano()
		st.Ctim = s.Ctim.Nano()
		st.HasHostIdent = true
	}
	return st
}

func fileTypeOf(m os.FileMode) FileType {
	switch {
	case m.IsRegular():
		return TypeRegular
	case m.IsDir():
		return TypeDirectory
	case m&os.ModeSymlink != 0:
		return TypeSymlink
	case m&os.ModeSocket != 0:
		return TypeSocketStream
	case m&os.ModeNamedPipe != 0:
		return TypeSocketStream
	case m&os.ModeCharDevice != 0:
		return TypeCharDevice
	case m&os.ModeDevice != 0:
		return TypeBlockDevice
	}
	return TypeUnknown
}
