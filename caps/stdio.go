package caps

import (
	"io"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// Stdio is one of a guest's standard streams, backed by a host reader or
// writer (the terminal, a log buffer, a client's stream). Holding it allows
// reading or writing that stream only. Stdio reports itself always ready:
// a read may block in the host (as reading a terminal does) but never
// spins.
type Stdio struct {
	name string
	r    io.Reader
	w    io.Writer
	// mu serialises writes from several holders of the stream, for
	// writers that are not safe for concurrent use; nil for those that
	// are (see NewStdout).
	mu *sync.Mutex
	sw StopWriter // w, if its writes may wait and can be stopped
	sr StopReader // r, if its reads may wait and can be stopped
	// terminal is set for a terminal's stream (AsTerminal).
	terminal bool
}

// AsTerminal marks s as a terminal's stream and returns it: the guest
// sees it as a character device (isatty, Go's os.ModeCharDevice), and
// any other stream as one of unknown type, as a pipe or a file is shown
// by wasmtime: a program buffers its output to it, and reads input piped
// to it, as it would natively.
func (s *Stdio) AsTerminal() *Stdio {
	s.terminal = true
	return s
}

// StopWriter is a writer whose writes may wait (for a slow reader at the
// other end) and can be told to stop waiting: revoked is closed when the
// capability written through is revoked (Revoke waits for the write), and
// ended when the guest writing is killed (its process handle closed, its
// tree ended), which must end whatever it waits for. Either may be nil. It
// must be safe for concurrent use: the stream's holders write to it
// without a lock of the stream's, since a write waiting for that lock could
// not stop.
type StopWriter interface {
	WriteUntil(p []byte, revoked, ended <-chan struct{}) (int, error)
}

// StopReader is a reader whose reads may wait (for input that has not
// come) and can be told to stop waiting, as a StopWriter's writes can:
// revoked is closed when the capability read through is revoked (Revoke
// waits for the read), and ended when the guest reading is killed. Either
// may be nil. It must be safe for concurrent use: a stream's holders read
// it without a lock of the stream's.
type StopReader interface {
	ReadUntil(p []byte, revoked, ended <-chan struct{}) (int, error)
}

// NewStdin wraps r as a readable standard stream.
func NewStdin(r io.Reader) *Stdio {
	s := &Stdio{name: "stdin", r: r}
	s.sr, _ = r.(StopReader)
	return s
}

// NewStdout wraps w as a writable standard stream named name ("stdout",
// "stderr"). Writes from the stream's holders are serialised unless w is
// safe for concurrent use already (an *os.File, io.Discard, a StopWriter).
func NewStdout(name string, w io.Writer) *Stdio {
	s := &Stdio{name: name, w: w}
	s.sw, _ = w.(StopWriter)
	if _, isFile := w.(*os.File); !isFile && s.sw == nil && w != io.Discard {
		s.mu = new(sync.Mutex)
	}
	return s
}

func (s *Stdio) Kind() Kind       { return KindStdio }
func (s *Stdio) Close() error     { return nil }
func (s *Stdio) Describe() string { return s.name }

// Readable and Writable report the stream's direction.
func (s *Stdio) Readable() bool { return s.r != nil }
func (s *Stdio) Writable() bool { return s.w != nil }

func (s *Stdio) Read(p []byte) (int, error) {
	if s.r == nil {
		return 0, EBADF
	}
	return endOfFile(s.r.Read(p))
}

// StopsReading reports whether a read may wait and stop waiting when told
// (ReadUntil).
func (s *Stdio) StopsReading() bool { return s.sr != nil }

// ReadUntil reads into p as Read does; a read that waits stops waiting
// once revoked (the capability read through was revoked) or ended (the
// reader was killed) is closed, if the stream's reader can (StopsReading).
func (s *Stdio) ReadUntil(p []byte, revoked, ended <-chan struct{}) (int, error) {
	if s.sr == nil {
		return s.Read(p)
	}
	return endOfFile(s.sr.ReadUntil(p, revoked, ended))
}

// endOfFile reports the end of the stream as a read of nothing, which is
// how a guest is told of it.
func endOfFile(n int, err error) (int, error) {
	if err == io.EOF {
		err = nil
	}
	return n, err
}

// Stoppable reports whether a write may wait and stop waiting when told
// (WriteUntil).
func (s *Stdio) Stoppable() bool { return s.sw != nil }

// WriteUntil writes p as Write does; a write that waits stops waiting once
// revoked (the capability written through was revoked) or ended (the
// writer was killed) is closed, if the stream's writer can (Stoppable).
func (s *Stdio) WriteUntil(p []byte, revoked, ended <-chan struct{}) (int, error) {
	if s.sw == nil {
		return s.Write(p)
	}
	return s.sw.WriteUntil(p, revoked, ended)
}

func (s *Stdio) Write(p []byte) (int, error) {
	if s.w == nil {
		return 0, EBADF
	}
	if s.mu == nil {
		return s.w.Write(p)
	}
	s.mu.Lock()
	n, err := s.w.Write(p)
	s.mu.Unlock()
	return n, err
}

// Writev writes the buffers of iov in turn, as Write writes each. A
// stream that is a host file (an *os.File: the daemon's own standard
// stream, a terminal, a pipe) takes them in one writev(2), as the same
// write on Linux is one call: on a pipe the PIPE_BUF rule, and a
// packet-mode pipe's packet, apply to the whole of it. What one writev
// leaves (a pipe that filled) it writes as Write writes the rest of a
// buffer, waiting until the file takes it.
func (s *Stdio) Writev(iov [][]byte) (int, error) {
	if f, ok := s.w.(*os.File); ok {
		return writevFile(f, iov)
	}
	total := 0
	for _, b := range iov {
		n, err := s.Write(b)
		total += n
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// writevFile writes all of iov (at most IOV_MAX buffers) to f with
// writev(2), again for what a short write left, through f's poller so
// that a full pipe waits as f.Write does.
func writevFile(f *os.File, iov [][]byte) (int, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return 0, err
	}
	left := 0
	for _, b := range iov {
		left += len(b)
	}
	total, copied := 0, false
	for left > 0 {
		var n int
		var werr error
		err := rc.Write(func(fd uintptr) bool {
			for {
				n, werr = unix.Writev(int(fd), iov)
				if werr != unix.EINTR {
					return werr != unix.EAGAIN
				}
			}
		})
		n = max(n, 0)
		total, left = total+n, left-n
		switch {
		case err != nil:
			return total, err
		case werr == unix.EPIPE:
			// No reader: as f.Write reports it, which on the process's
			// own stdout or stderr raises SIGPIPE, as a write of one
			// buffer to the stream does.
			n, err := f.Write(SkipBytes(iov, 0)[0])
			return total + n, err
		case werr != nil:
			return total, werr
		case n == 0:
			return total, io.ErrShortWrite
		}
		if !copied && left > 0 {
			iov, copied = append([][]byte(nil), iov...), true // the caller's stays as it was
		}
		iov = SkipBytes(iov, n)
	}
	return total, nil
}

// SkipBytes drops the first n bytes of iov, in place, and the empty
// buffers after them: what is left to move of a transfer that moved n.
func SkipBytes(iov [][]byte, n int) [][]byte {
	for len(iov) > 0 && n >= len(iov[0]) {
		n -= len(iov[0])
		iov = iov[1:]
	}
	if len(iov) > 0 {
		iov[0] = iov[0][n:]
	}
	return iov
}

// FileType: a terminal's standard stream is a character device to the
// guest, any other of unknown type (AsTerminal). Neither is seekable.
func (s *Stdio) FileType() FileType {
	if s.terminal {
		return TypeCharDevice
	}
	return TypeUnknown
}

func (s *Stdio) Stat() (FileStat, error) { return FileStat{Type: s.FileType()}, nil }
