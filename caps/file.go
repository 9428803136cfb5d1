package caps

import (
	"io"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// File is an open host file: a regular file opened beneath a directory
// capability, or granted on its own. Holding a capability to it allows the
// operations its rights name on this one open file, and nothing on any
// other path: a File has no path-based operations.
type File struct {
	f    *os.File
	desc string
}

// NewFile wraps an open host file. desc is how logs name it.
func NewFile(f *os.File, desc string) *File { return &File{f: f, desc: desc} }

// OS returns the host file.
func (f *File) OS() *os.File { return f.f }

func (f *File) Kind() Kind       { return KindFile }
func (f *File) Close() error     { return f.f.Close() }
func (f *File) Describe() string { return "file " + f.desc }

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

func (f *File) WriteAt(p []byte, off int64) (int, error) {
	// os.File.WriteAt refuses files opened with O_APPEND; pwrite(2) on
	// Linux appends there anyway, which is what POSIX guests expect.
	return unix.Pwrite(int(f.f.Fd()), p, off)
}

func (f *File) Seek(off int64, whence int) (int64, error) { return f.f.Seek(off, whence) }
func (f *File) Sync() error                               { return f.f.Sync() }
func (f *File) Datasync() error                           { return unix.Fdatasync(int(f.f.Fd())) }
func (f *File) Truncate(n int64) error                    { return f.f.Truncate(n) }

func (f *File) Allocate(off, n int64) error {
	return unix.Fallocate(int(f.f.Fd()), 0, off, n)
}

func (f *File) Stat() (FileStat, error) {
	fi, err := f.f.Stat()
	if err != nil {
		return FileStat{}, err
	}
	return statOf(fi), nil
}

func (f *File) SetTimes(atime, mtime *time.Time) error {
	ts := []unix.Timespec{{Nsec: unix.UTIME_OMIT}, {Nsec: unix.UTIME_OMIT}}
	if atime != nil {
		ts[0] = unix.NsecToTimespec(atime.UnixNano())
	}
	if mtime != nil {
		ts[1] = unix.NsecToTimespec(mtime.UnixNano())
	}
	return unix.UtimesNanoAt(int(f.f.Fd()), "", ts, unix.AT_EMPTY_PATH)
}

// Readdir lists the directory this file handle is open on (used when a
// directory is opened as a File through a non-directory path).
func (f *File) Readdir() ([]os.DirEntry, error) { return f.f.ReadDir(-1) }

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
