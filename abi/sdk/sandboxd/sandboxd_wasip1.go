//go:build wasip1

package sandboxd

import (
	"errors"
	"maps"
	"os"
	"runtime"
	"slices"
	"sync"
	"syscall"
	"unsafe"
)

// errnoErr converts a call's result to an error: nil for success, else a
// syscall.Errno with the same number (WASI's numbering is CloudABI's).
func errnoErr(e uint32) error {
	if e == 0 {
		return nil
	}
	return syscall.Errno(e)
}

// IsNotCapable reports whether err is (or wraps) ENOTCAPABLE: a handle
// lacked a right, was revoked, or a path led outside its directory.
func IsNotCapable(err error) bool { return errors.Is(err, syscall.ENOTCAPABLE) }

// maxArgdata bounds what this package reads from argdata_get and
// fd_describe, so a supervisor bug cannot make a guest allocate without
// limit.
const maxArgdata = 16 << 20

var (
	startupOnce sync.Once
	startup     Startup
	startupErr  error
)

// getSized calls a (buf, len, size_out) call that answers ENOBUFS with the
// size when buf is too small, and returns its bytes.
func getSized(call func(buf unsafe.Pointer, n uint32, size unsafe.Pointer) uint32) ([]byte, error) {
	size := new(uint32)
	buf := make([]byte, 256)
	for {
		e := call(unsafe.Pointer(unsafe.SliceData(buf)), uint32(len(buf)), unsafe.Pointer(size))
		if e == 0 {
			return buf[:*size], nil
		}
		if syscall.Errno(e) != syscall.ENOBUFS || *size <= uint32(len(buf)) || *size > maxArgdata {
			return nil, errnoErr(e)
		}
		buf = make([]byte, *size)
	}
}

// StartupData returns what the guest was started with (argdata_get),
// decoded once. Its Args, Env and Handles are the caller's own copies:
// changing them changes nothing this package finds later.
func StartupData() (Startup, error) {
	st, err := loadStartup()
	st.Args = slices.Clone(st.Args)
	st.Env = maps.Clone(st.Env)
	st.Handles = maps.Clone(st.Handles)
	return st, err
}

// loadStartup decodes the startup argdata once and returns the package's
// own copy, which no caller may change.
func loadStartup() (Startup, error) {
	startupOnce.Do(func() {
		b, err := getSized(argdata_get)
		if err != nil {
			startupErr = err
			return
		}
		startup, startupErr = ParseStartup(b)
	})
	return startup, startupErr
}

// Args returns the guest's arguments from its startup argdata (the same
// strings os.Args holds), in a slice of the caller's own.
func Args() []string {
	st, _ := loadStartup()
	return slices.Clone(st.Args)
}

// Env returns the environment the guest was started with, in a map of
// the caller's own.
func Env() map[string]string {
	st, _ := loadStartup()
	return maps.Clone(st.Env)
}

// Handles returns the guest's named handles: "stdin", "stdout", "stderr"
// and the name of each grant, with their fds. The map is the caller's
// own: adding a name to it (to give a child one more handle, say) or
// deleting one changes nothing Handle, File and the others find.
func Handles() map[string]uint32 {
	st, _ := loadStartup()
	return maps.Clone(st.Handles)
}

// Handle returns the fd of the handle named name. It only looks the
// number up and takes nothing (see File): a caller that wraps the fd
// itself, with os.NewFile or NewConn, owns the handle without this
// package knowing, and should not also pass the name to File, NetConn,
// NetListener, DialFunc or Supervisor.
func Handle(name string) (uint32, bool) {
	st, _ := loadStartup()
	fd, ok := st.Handles[name]
	return fd, ok
}

// File returns the handle named name as an *os.File (a directory, a file,
// a socket or a channel end), ready for the standard library. The file
// owns the handle: closing it (or dropping it to the garbage collector)
// closes the handle, and a second File, NetConn, NetListener, DialFunc or
// Supervisor of the name is refused with ErrHandleTaken. A handle at fd
// 0, 1 or 2 already has its owner, os.Stdin, os.Stdout or os.Stderr:
// File returns that one, so that nothing closes the stream under it.
func File(name string) (*os.File, error) {
	fd, ok := Handle(name)
	if !ok {
		return nil, &os.PathError{Op: "handle", Path: name, Err: syscall.EBADF}
	}
	if _, err := take(name, "File"); err != nil {
		return nil, err
	}
	switch fd {
	case 0:
		return os.Stdin, nil
	case 1:
		return os.Stdout, nil
	case 2:
		return os.Stderr, nil
	}
	return os.NewFile(uintptr(fd), name), nil
}

// Describe reports the capability behind fd: its public id, kind, name,
// rights and provenance. A revoked handle is ENOTCAPABLE.
func Describe(fd uint32) (Description, error) {
	b, err := getSized(func(buf unsafe.Pointer, n uint32, size unsafe.Pointer) uint32 {
		return fd_describe(fd, buf, n, size)
	})
	if err != nil {
		return Description{}, err
	}
	return ParseDescription(b)
}

// Dup makes a second handle on the same object with the same rights (a
// child capability, so it can be narrowed on its own, and made revocable
// on its own with Revocable).
func Dup(fd uint32) (uint32, error) {
	out := new(uint32)
	if err := errnoErr(fd_dup(fd, unsafe.Pointer(out))); err != nil {
		return 0, err
	}
	return *out, nil
}

// Close closes a handle. What was derived from it stays open.
func Close(fd uint32) error { return errnoErr(fd_close(fd)) }

// Narrow reduces a handle's rights to base and inheriting. Asking for a
// right the handle does not hold is ENOTCAPABLE and changes nothing.
func Narrow(fd uint32, base, inheriting Rights) error {
	st := &fdstat{base: uint64(base), inheriting: uint64(inheriting)}
	return errnoErr(fd_stat_put(fd, unsafe.Pointer(st), fdstatRights))
}

// Revocable makes a forwarder of fd to give away (same rights, same
// object) and a revoker to keep. Revoke(revoker) cuts off the forwarder
// and everything derived from it, in every guest, and leaves fd alone.
func Revocable(fd uint32) (forwarder, revoker uint32, err error) {
	f, r := new(uint32), new(uint32)
	if err := errnoErr(cap_revocable(fd, unsafe.Pointer(f), unsafe.Pointer(r))); err != nil {
		return 0, 0, err
	}
	return *f, *r, nil
}

// Revoke revokes the forwarder a revoker controls. When it returns, every
// use of the forwarder or anything derived from it fails with
// ENOTCAPABLE, in every guest.
func Revoke(revoker uint32) error { return errnoErr(cap_revoke(revoker)) }

// OpenModule opens path beneath the directory handle dir as a module a
// child can be spawned from. The handle holds proc_exec, which spawning
// needs, and file_stat_fget (the module's size) when dir can give it, as
// the daemon's module handles do; it cannot be read. A dir whose
// inheriting rights lack proc_exec is ENOTCAPABLE.
func OpenModule(dir uint32, path string) (uint32, error) {
	ds := new(fdstat)
	if err := errnoErr(fd_stat_get(dir, unsafe.Pointer(ds))); err != nil {
		return 0, &os.PathError{Op: "open module", Path: path, Err: err}
	}
	st := &fdstat{base: uint64(RightProcExec) | ds.inheriting&uint64(RightFileStatFGet)}
	out := new(uint32)
	p := []byte(path)
	e := file_open(dir, lookupSymlinkFollow, unsafe.Pointer(unsafe.SliceData(p)), uint32(len(p)), 0, unsafe.Pointer(st), unsafe.Pointer(out))
	runtime.KeepAlive(p)
	if err := errnoErr(e); err != nil {
		return 0, &os.PathError{Op: "open module", Path: path, Err: err}
	}
	return *out, nil
}
