//go:build wasip1

package sandboxd

import (
	"os"
	"runtime"
	"unsafe"
)

// OpenFlags are file_open's oflags (CloudABI's values).
type OpenFlags uint32

const (
	OpenCreate    OpenFlags = 0x1 // create the file if it does not exist (needs file_create_file on dir)
	OpenDirectory OpenFlags = 0x2 // fail unless path is a directory
	OpenExclusive OpenFlags = 0x4 // with OpenCreate: fail if it exists
	OpenTruncate  OpenFlags = 0x8 // truncate to 0 bytes (needs file_stat_fput_size)
)

// OpenAt opens path beneath the directory handle dir with the rights
// base and inheriting, which must be within dir's inheriting rights, and
// returns the new handle (a child capability of dir). It works on any
// directory handle, including one received while running (a grant sent
// on the supervisor channel, a handle from a peer), where the standard
// library knows only the directories granted at launch. Paths never
// leave dir: ".." above it, absolute paths and symlinks out of it fail
// with ENOTCAPABLE.
func OpenAt(dir uint32, path string, oflags OpenFlags, base, inheriting Rights) (uint32, error) {
	st := &fdstat{base: uint64(base), inheriting: uint64(inheriting)}
	out := new(uint32)
	p := []byte(path)
	e := file_open(dir, lookupSymlinkFollow, unsafe.Pointer(unsafe.SliceData(p)), uint32(len(p)), uint32(oflags), unsafe.Pointer(st), unsafe.Pointer(out))
	runtime.KeepAlive(p)
	if err := errnoErr(e); err != nil {
		return 0, &os.PathError{Op: "openat", Path: path, Err: err}
	}
	return *out, nil
}

// OpenFileAt is OpenAt for a regular file, as an *os.File: read-only
// unless write is set (then the file is created if missing, and
// truncated).
func OpenFileAt(dir uint32, path string, write bool) (*os.File, error) {
	base := RightFDRead | RightFDSeek | RightFDTell | RightFileStatFGet
	var fl OpenFlags
	if write {
		base = RightFDWrite | RightFDSeek | RightFDTell | RightFileStatFGet | RightFileStatFPutSize
		fl = OpenCreate | OpenTruncate
	}
	fd, err := OpenAt(dir, path, fl, base, 0)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), path), nil
}
