package caps

import (
	"io/fs"
	"sync"
	"sync/atomic"
	"time"
)

// Resource is the object behind one or more capabilities: a directory, an
// open file, a channel end, a process. Operations a resource supports are
// the optional interfaces below; the ABI asks for them with a type
// assertion and answers EBADF/ENOTSUP/ESPIPE where one is missing.
//
// Non-blocking contract: Read, Write, Accept and Recv never block on a
// resource that implements Pollable; they return EAGAIN instead, and the
// caller waits through Poll. This keeps every blocking wait in one place
// (the ABI), where it also watches the guest's context and the
// capability's revocation.
type Resource interface {
	Kind() Kind
	// Close releases host state. It is called once, when the last
	// capability referring to the resource is closed or revoked.
	Close() error
}

// Reader is a resource with a byte stream to read.
type Reader interface {
	Read(p []byte) (int, error)
}

// Writer is a resource that accepts bytes.
type Writer interface {
	Write(p []byte) (int, error)
}

// Positional is a resource with random access and an offset (files and
// byte objects).
type Positional interface {
	ReadAt(p []byte, off int64) (int, error)
	WriteAt(p []byte, off int64) (int, error)
	Seek(off int64, whence int) (int64, error)
}

// Stater reports metadata of the object itself.
type Stater interface {
	Stat() (FileStat, error)
}

// Syncer flushes to stable storage.
type Syncer interface {
	Sync() error
	Datasync() error
}

// Truncater changes an object's size.
type Truncater interface {
	Truncate(size int64) error
}

// Timeser changes access and modification times; a nil pointer leaves that
// time alone.
type Timeser interface {
	SetTimes(atime, mtime *time.Time) error
}

// Allocator reserves space (file_allocate).
type Allocator interface {
	Allocate(off, n int64) error
}

// Shutdowner closes one or both directions of a stream.
type Shutdowner interface {
	Shutdown(read, write bool) error
}

// Messenger is a socket whose messages may carry capabilities: a channel
// end, or a host stream socket (which carries bytes only). Send and Recv
// follow the non-blocking contract above; see Channel.Send and
// Channel.Recv for the semantics every implementation keeps.
type Messenger interface {
	Send(iov [][]byte, caps []*Cap) (int, error)
	Recv(iov [][]byte, maxCaps int, peek bool) (int, []*Cap, RecvFlags, error)
	// CarriesCaps reports whether a message may carry capabilities; Send
	// of capabilities on a messenger that cannot is ENOTSUP.
	CarriesCaps() bool
}

// Acceptor is a listener. Accept returns the next incoming connection as a
// new resource (the caller owns it), or EAGAIN when none is waiting.
type Acceptor interface {
	Accept() (Resource, error)
}

// FileStat is the part of a stat result the ABIs report.
type FileStat struct {
	Dev, Ino     uint64
	Type         FileType
	Nlink        uint64
	Size         uint64
	Atim, Mtim   int64 // ns since the Unix epoch
	Ctim         int64
	HostMode     fs.FileMode
	HasHostIdent bool
}

// FileType is the ABI-neutral type of an object, mapped to CloudABI's or
// WASI's numbering by each ABI.
type FileType uint8

const (
	TypeUnknown FileType = iota
	TypeBlockDevice
	TypeCharDevice
	TypeDirectory
	TypeRegular
	TypeSocketDgram
	TypeSocketStream
	TypeSymlink
	TypeProcess
	TypeSharedMemory
)

// Events is a set of readiness conditions.
type Events uint8

const (
	EventRead Events = 1 << iota
	EventWrite
	EventHangup
)

// Pollable is a resource whose operations can return EAGAIN. Poll reports
// which of want are ready now (EventHangup may always be reported). When
// none is, and w is not nil, it registers w to be woken when readiness may
// have changed, and the returned cancel function removes that
// registration. Spurious wake-ups are allowed; callers poll again.
type Pollable interface {
	Poll(want Events, w *Waiter) (ready Events, cancel func())
}

// HostPollable is a Pollable backed by one host descriptor, so that a
// poller can wait on many of them with one kernel object instead of a
// watcher each (abi's poll keeps one epoll instance per guest). PollFD
// returns the descriptor, or false once it is closed. The number stays
// valid while a capability to the resource is held acquired: the resource
// is closed only when the last capability to it lets go, and Revoke waits
// for acquired operations before it lets go.
type HostPollable interface {
	Pollable
	PollFD() (fd int, ok bool)
}

// Waiter is a wake-up target shared by everything one blocking call waits
// on. Wake never blocks and wake-ups coalesce.
type Waiter struct{ ch chan struct{} }

// NewWaiter returns a Waiter with nothing pending.
func NewWaiter() *Waiter { return &Waiter{ch: make(chan struct{}, 1)} }

// Wake signals the waiter.
func (w *Waiter) Wake() {
	select {
	case w.ch <- struct{}{}:
	default:
	}
}

// C is the channel that receives a value after Wake.
func (w *Waiter) C() <-chan struct{} { return w.ch }

// waitList is a set of Waiters, for resources that implement Pollable.
type waitList struct {
	mu sync.Mutex
	ws map[*Waiter]struct{}
}

func (l *waitList) add(w *Waiter) func() {
	l.mu.Lock()
	if l.ws == nil {
		l.ws = make(map[*Waiter]struct{})
	}
	l.ws[w] = struct{}{}
	l.mu.Unlock()
	return func() {
		l.mu.Lock()
		delete(l.ws, w)
		l.mu.Unlock()
	}
}

func (l *waitList) wakeAll() {
	l.mu.Lock()
	for w := range l.ws {
		w.Wake()
	}
	l.mu.Unlock()
}

// refRes counts the capabilities sharing one resource and closes it when
// the last goes. Once closed it cannot be revived: refs is -1 and
// tryRetain fails.
type refRes struct {
	Resource
	refs atomic.Int64
	// gcOutside and gcLive are what Kernel.collect knows of a channel end
	// without a holder (gcOrphan, set while it is in Kernel.orphans): how
	// many references to it come from outside the queues of such ends,
	// and whether it is reachable. Guarded by the kernel's mu.
	gcOutside int64
	// held counts the capabilities on the resource that a holder has
	// (not in flight, not closed, not revoked). Guarded by the kernel's
	// mu. A channel end whose held count drops to zero while references
	// remain is reachable, if at all, only through channel queues: see
	// Kernel.collect.
	held     int32
	gcOrphan bool
	gcLive   bool
	// collected is set, under the kernel's mu, on a channel end that
	// Kernel.collect found unreachable: nothing may be derived from it.
	collected bool
}

// newRefRes wraps res with one reference, owned by the capability about to
// be made on it.
func newRefRes(res Resource) *refRes {
	r := &refRes{Resource: res}
	r.refs.Store(1)
	return r
}

// tryRetain adds a reference unless the resource is already closed.
func (r *refRes) tryRetain() bool {
	for {
		n := r.refs.Load()
		if n < 0 {
			return false
		}
		if r.refs.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// release drops a reference, closing the resource with the last, and
// reports whether it did.
func (r *refRes) release() bool {
	if r.refs.Add(-1) == 0 && r.refs.CompareAndSwap(0, -1) {
		_ = r.Resource.Close()
		return true
	}
	return false
}

func noop() {}
