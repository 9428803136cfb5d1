package caps

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// Errno is the error vocabulary of sandboxd's guest ABIs. Values and names are
// CloudABI's, which WASI preview1 kept unchanged, so one table serves both
// ABIs. It implements error so that kernel operations can return it directly.
type Errno uint16

const (
	ESUCCESS Errno = iota
	E2BIG
	EACCES
	EADDRINUSE
	EADDRNOTAVAIL
	EAFNOSUPPORT
	EAGAIN
	EALREADY
	EBADF
	EBADMSG
	EBUSY
	ECANCELED
	ECHILD
	ECONNABORTED
	ECONNREFUSED
	ECONNRESET
	EDEADLK
	EDESTADDRREQ
	EDOM
	EDQUOT
	EEXIST
	EFAULT
	EFBIG
	EHOSTUNREACH
	EIDRM
	EILSEQ
	EINPROGRESS
	EINTR
	EINVAL
	EIO
	EISCONN
	EISDIR
	ELOOP
	EMFILE
	EMLINK
	EMSGSIZE
	EMULTIHOP
	ENAMETOOLONG
	ENETDOWN
	ENETRESET
	ENETUNREACH
	ENFILE
	ENOBUFS
	ENODEV
	ENOENT
	ENOEXEC
	ENOLCK
	ENOLINK
	ENOMEM
	ENOMSG
	ENOPROTOOPT
	ENOSPC
	ENOSYS
	ENOTCONN
	ENOTDIR
	ENOTEMPTY
	ENOTRECOVERABLE
	ENOTSOCK
	ENOTSUP
	ENOTTY
	ENXIO
	EOVERFLOW
	EOWNERDEAD
	EPERM
	EPIPE
	EPROTO
	EPROTONOSUPPORT
	EPROTOTYPE
	ERANGE
	EROFS
	ESPIPE
	ESRCH
	ESTALE
	ETIMEDOUT
	ETXTBSY
	EXDEV
	ENOTCAPABLE
)

// errnoNames names each Errno, keyed by the constant so that a name can
// never drift to another value. Its length is checked at compile time.
var errnoNames = [...]string{
	ESUCCESS: "ESUCCESS", E2BIG: "E2BIG", EACCES: "EACCES", EADDRINUSE: "EADDRINUSE",
	EADDRNOTAVAIL: "EADDRNOTAVAIL", EAFNOSUPPORT: "EAFNOSUPPORT", EAGAIN: "EAGAIN",
	EALREADY: "EALREADY", EBADF: "EBADF", EBADMSG: "EBADMSG", EBUSY: "EBUSY",
	ECANCELED: "ECANCELED", ECHILD: "ECHILD", ECONNABORTED: "ECONNABORTED",
	ECONNREFUSED: "ECONNREFUSED", ECONNRESET: "ECONNRESET", EDEADLK: "EDEADLK",
	EDESTADDRREQ: "EDESTADDRREQ", EDOM: "EDOM", EDQUOT: "EDQUOT", EEXIST: "EEXIST",
	EFAULT: "EFAULT", EFBIG: "EFBIG", EHOSTUNREACH: "EHOSTUNREACH", EIDRM: "EIDRM",
	EILSEQ: "EILSEQ", EINPROGRESS: "EINPROGRESS", EINTR: "EINTR", EINVAL: "EINVAL", EIO: "EIO",
	EISCONN: "EISCONN", EISDIR: "EISDIR", ELOOP: "ELOOP", EMFILE: "EMFILE", EMLINK: "EMLINK",
	EMSGSIZE: "EMSGSIZE", EMULTIHOP: "EMULTIHOP", ENAMETOOLONG: "ENAMETOOLONG",
	ENETDOWN: "ENETDOWN", ENETRESET: "ENETRESET", ENETUNREACH: "ENETUNREACH", ENFILE: "ENFILE",
	ENOBUFS: "ENOBUFS", ENODEV: "ENODEV", ENOENT: "ENOENT", ENOEXEC: "ENOEXEC", ENOLCK: "ENOLCK",
	ENOLINK: "ENOLINK", ENOMEM: "ENOMEM", ENOMSG: "ENOMSG", ENOPROTOOPT: "ENOPROTOOPT",
	ENOSPC: "ENOSPC", ENOSYS: "ENOSYS", ENOTCONN: "ENOTCONN", ENOTDIR: "ENOTDIR",
	ENOTEMPTY: "ENOTEMPTY", ENOTRECOVERABLE: "ENOTRECOVERABLE", ENOTSOCK: "ENOTSOCK",
	ENOTSUP: "ENOTSUP", ENOTTY: "ENOTTY", ENXIO: "ENXIO", EOVERFLOW: "EOVERFLOW",
	EOWNERDEAD: "EOWNERDEAD", EPERM: "EPERM", EPIPE: "EPIPE", EPROTO: "EPROTO",
	EPROTONOSUPPORT: "EPROTONOSUPPORT", EPROTOTYPE: "EPROTOTYPE", ERANGE: "ERANGE",
	EROFS: "EROFS", ESPIPE: "ESPIPE", ESRCH: "ESRCH", ESTALE: "ESTALE", ETIMEDOUT: "ETIMEDOUT",
	ETXTBSY: "ETXTBSY", EXDEV: "EXDEV", ENOTCAPABLE: "ENOTCAPABLE",
}

// The array above has exactly one name per constant, ENOTCAPABLE last.
var _ = [1]struct{}{}[len(errnoNames)-int(ENOTCAPABLE)-1]

func (e Errno) Error() string {
	if int(e) < len(errnoNames) {
		return errnoNames[e]
	}
	return "errno(" + strconv.Itoa(int(e)) + ")"
}

// errEscapes is how os.Root reports a path that would leave the root
// (through "..", an absolute symlink or a symlink that climbs out). os does
// not export the value, so it is recognised by its text.
const errEscapesText = "path escapes from parent"

// ErrnoOf maps any error from the kernel or the host to the ABI's errno.
// nil maps to ESUCCESS; an error with no better mapping maps to EIO.
//
// A guest's own descriptor limit is its handle table, which reports
// EMFILE itself (Table.Insert). The host's EMFILE means that sandboxd's
// process, whose descriptors all its guests share, is at its
// RLIMIT_NOFILE: to the guest that is a limit of the system it runs on,
// so it maps to ENFILE, as the host's own ENFILE does. The guest can tell
// the two apart: closing its own handles cures EMFILE, and may not cure
// ENFILE.
func ErrnoOf(err error) Errno {
	if err == nil {
		return ESUCCESS
	}
	var e Errno
	if errors.As(err, &e) {
		return e
	}
	if strings.Contains(err.Error(), errEscapesText) {
		return ENOTCAPABLE
	}
	var se syscall.Errno
	if errors.As(err, &se) {
		return fromSyscall(se)
	}
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return ENOENT
	case errors.Is(err, fs.ErrExist):
		return EEXIST
	case errors.Is(err, fs.ErrPermission):
		return EPERM
	case errors.Is(err, fs.ErrClosed), errors.Is(err, os.ErrClosed):
		return EBADF
	case errors.Is(err, io.ErrShortWrite):
		return EIO
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return ECANCELED
	case errors.Is(err, os.ErrDeadlineExceeded):
		return EAGAIN
	}
	return EIO
}

var syscallErrno = map[syscall.Errno]Errno{
	syscall.E2BIG: E2BIG, syscall.EACCES: EACCES, syscall.EADDRINUSE: EADDRINUSE,
	syscall.EADDRNOTAVAIL: EADDRNOTAVAIL, syscall.EAFNOSUPPORT: EAFNOSUPPORT,
	syscall.EAGAIN: EAGAIN, syscall.EALREADY: EALREADY, syscall.EBADF: EBADF,
	syscall.EBADMSG: EBADMSG, syscall.EBUSY: EBUSY, syscall.ECANCELED: ECANCELED,
	syscall.ECHILD: ECHILD, syscall.ECONNABORTED: ECONNABORTED,
	syscall.ECONNREFUSED: ECONNREFUSED, syscall.ECONNRESET: ECONNRESET,
	syscall.EDEADLK: EDEADLK, syscall.EDESTADDRREQ: EDESTADDRREQ, syscall.EDOM: EDOM,
	syscall.EDQUOT: EDQUOT, syscall.EEXIST: EEXIST, syscall.EFAULT: EFAULT,
	syscall.EFBIG: EFBIG, syscall.EHOSTUNREACH: EHOSTUNREACH, syscall.EIDRM: EIDRM,
	syscall.EILSEQ: EILSEQ, syscall.EINPROGRESS: EINPROGRESS, syscall.EINTR: EINTR,
	syscall.EINVAL: EINVAL, syscall.EIO: EIO, syscall.EISCONN: EISCONN,
	syscall.EISDIR: EISDIR, syscall.ELOOP: ELOOP, syscall.EMFILE: ENFILE,
	syscall.EMLINK: EMLINK, syscall.EMSGSIZE: EMSGSIZE, syscall.EMULTIHOP: EMULTIHOP,
	syscall.ENAMETOOLONG: ENAMETOOLONG, syscall.ENETDOWN: ENETDOWN,
	syscall.ENETRESET: ENETRESET, syscall.ENETUNREACH: ENETUNREACH,
	syscall.ENFILE: ENFILE, syscall.ENOBUFS: ENOBUFS, syscall.ENODEV: ENODEV,
	syscall.ENOENT: ENOENT, syscall.ENOEXEC: ENOEXEC, syscall.ENOLCK: ENOLCK,
	syscall.ENOLINK: ENOLINK, syscall.ENOMEM: ENOMEM, syscall.ENOMSG: ENOMSG,
	syscall.ENOPROTOOPT: ENOPROTOOPT, syscall.ENOSPC: ENOSPC, syscall.ENOSYS: ENOSYS,
	syscall.ENOTCONN: ENOTCONN, syscall.ENOTDIR: ENOTDIR, syscall.ENOTEMPTY: ENOTEMPTY,
	syscall.ENOTRECOVERABLE: ENOTRECOVERABLE, syscall.ENOTSOCK: ENOTSOCK,
	syscall.ENOTSUP: ENOTSUP, syscall.ENOTTY: ENOTTY, syscall.ENXIO: ENXIO,
	syscall.EOVERFLOW: EOVERFLOW, syscall.EOWNERDEAD: EOWNERDEAD, syscall.EPERM: EPERM,
	syscall.EPIPE: EPIPE, syscall.EPROTO: EPROTO, syscall.EPROTONOSUPPORT: EPROTONOSUPPORT,
	syscall.EPROTOTYPE: EPROTOTYPE, syscall.ERANGE: ERANGE, syscall.EROFS: EROFS,
	syscall.ESPIPE: ESPIPE, syscall.ESRCH: ESRCH, syscall.ESTALE: ESTALE,
	syscall.ETIMEDOUT: ETIMEDOUT, syscall.ETXTBSY: ETXTBSY, syscall.EXDEV: EXDEV,
}

func fromSyscall(se syscall.Errno) Errno {
	if e, ok := syscallErrno[se]; ok {
		return e
	}
	return EIO
}
