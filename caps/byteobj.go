package caps

import (
	"io"
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// MaxByteObjectSize bounds one in-memory byte object (fd_create1) so that
// a guest cannot make the host allocate without limit.
const MaxByteObjectSize = 1 << 30

// MaxByteObjectMemory bounds the memory that all byte objects in the
// process hold together, so that guests creating many objects cannot
// exhaust the host either. Growing past it fails with ENOSPC.
const MaxByteObjectMemory = 4 << 30

// MemoryCharge is whom the memory of a byte object is charged to besides
// the process (NewChargedByteObject): the daemon charges its creator's
// user. Take reserves n bytes, or reports that they would go past a
// budget; Give returns n bytes taken before.
type MemoryCharge interface {
	Take(n int64) bool
	Give(n int64)
}

// byteBudget accounts the bytes reserved by a set of byte objects, and
// InFlightLimit the capabilities a group of guests has in flight: a count
// with a limit, taken and given back without a lock.
type byteBudget struct {
	limit int64
	used  atomic.Int64
}

// reserve takes n, or nothing and reports false when n would take the
// count past its limit. (Adding first and taking back on failure would
// let two reserves that each fit refuse each other.)
func (b *byteBudget) reserve(n int64) bool {
	for {
		used := b.used.Load()
		if used+n > b.limit {
			return false
		}
		if b.used.CompareAndSwap(used, used+n) {
			return true
		}
	}
}

func (b *byteBudget) release(n int64) { b.used.Add(-n) }

var byteObjectBudget = &byteBudget{limit: MaxByteObjectMemory}

// ByteObject is an anonymous in-memory file (fd_create1): CloudABI's shared
// memory object, without mapping, since a wasm guest cannot map host memory.
// It can be passed to other guests, who then share its contents. Holding it
// allows reading, writing and resizing these bytes and nothing else.
//
// Handles to one ByteObject share its offset and append mode, as POSIX
// descriptors to one open file description do.
type ByteObject struct {
	mu     sync.Mutex
	data   []byte
	off    int64
	mtime  time.Time
	append bool
	budget *byteBudget
	charge MemoryCharge // nil: none besides budget
}

// NewByteObject returns an empty byte object.
func NewByteObject() *ByteObject { return newByteObject(byteObjectBudget) }

// NewChargedByteObject returns an empty byte object whose memory is also
// charged to charge, until it is closed, wherever it is passed. nil is
// NewByteObject.
func NewChargedByteObject(charge MemoryCharge) *ByteObject {
	b := newByteObject(byteObjectBudget)
	b.charge = charge
	return b
}

func newByteObject(b *byteBudget) *ByteObject {
	return &ByteObject{mtime: time.Now(), budget: b}
}

func (b *ByteObject) Kind() Kind         { return KindByteObject }
func (b *ByteObject) Describe() string   { return "bytes" }
func (b *ByteObject) FileType() FileType { return TypeSharedMemory }

// Close frees the bytes; it runs when the last handle is gone.
func (b *ByteObject) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.budget.release(int64(cap(b.data)))
	if b.charge != nil && cap(b.data) > 0 {
		b.charge.Give(int64(cap(b.data)))
	}
	b.data = nil
	return nil
}

// pastEnd is whether a transfer of n bytes at off would end past the
// largest offset, which Linux refuses (EINVAL) before it moves a byte.
func pastEnd(off int64, n int) bool { return off > math.MaxInt64-int64(n) }

func (b *ByteObject) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if pastEnd(b.off, len(p)) {
		return 0, EINVAL
	}
	n := b.readAt(p, b.off)
	b.off += int64(n)
	return n, nil
}

// Write writes at the shared offset, or at the end in append mode, and
// advances the offset past what it wrote.
func (b *ByteObject) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.append {
		b.off = int64(len(b.data))
	}
	if pastEnd(b.off, len(p)) {
		return 0, EINVAL
	}
	n, err := b.writeAt(p, b.off)
	b.off += int64(n)
	return n, err
}

func (b *ByteObject) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || pastEnd(off, len(p)) {
		return 0, EINVAL
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.readAt(p, off), nil
}

func (b *ByteObject) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 || pastEnd(off, len(p)) {
		return 0, EINVAL
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.writeAt(p, off)
}

func (b *ByteObject) readAt(p []byte, off int64) int {
	if off >= int64(len(b.data)) {
		return 0
	}
	return copy(p, b.data[off:])
}

func (b *ByteObject) writeAt(p []byte, off int64) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	end := off + int64(len(p))
	if end > MaxByteObjectSize || end < off {
		return 0, EFBIG
	}
	if end > int64(len(b.data)) {
		if err := b.grow(end); err != nil {
			return 0, err
		}
	}
	b.mtime = time.Now()
	return copy(b.data[off:], p), nil
}

// grow extends the data to n bytes (n ≤ MaxByteObjectSize), zero-filled.
func (b *ByteObject) grow(n int64) error {
	if n <= int64(cap(b.data)) {
		old := len(b.data)
		b.data = b.data[:n]
		clear(b.data[old:])
		return nil
	}
	// Room to grow into, as append makes, unless only the size asked
	// fits the budgets.
	c := min(max(n, 2*int64(cap(b.data))), MaxByteObjectSize)
	if !b.reserve(c - int64(cap(b.data))) {
		c = n
		if !b.reserve(c - int64(cap(b.data))) {
			return ENOSPC
		}
	}
	nd := make([]byte, n, c)
	copy(nd, b.data)
	b.data = nd
	return nil
}

// reserve charges n more bytes to the process's budget and to b's
// charge, or to neither.
func (b *ByteObject) reserve(n int64) bool {
	if !b.budget.reserve(n) {
		return false
	}
	if b.charge != nil && !b.charge.Take(n) {
		b.budget.release(n)
		return false
	}
	return true
}

func (b *ByteObject) Seek(off int64, whence int) (int64, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var base int64
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		base = b.off
	case io.SeekEnd:
		base = int64(len(b.data))
	default:
		return 0, EINVAL
	}
	n := base + off
	if n < 0 || (off > 0 && n < base) {
		return 0, EINVAL
	}
	b.off = n
	return n, nil
}

// Truncate sets the size; bytes past the old end read as zero.
func (b *ByteObject) Truncate(n int64) error {
	if n < 0 {
		return EINVAL
	}
	if n > MaxByteObjectSize {
		return EFBIG
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if n > int64(len(b.data)) {
		if err := b.grow(n); err != nil {
			return err
		}
	} else {
		b.data = b.data[:n]
	}
	b.mtime = time.Now()
	return nil
}

// Append reports whether writes go to the end.
func (b *ByteObject) Append() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.append
}

// SetAppend turns append mode on or off for every handle to the object.
func (b *ByteObject) SetAppend(on bool) error {
	b.mu.Lock()
	b.append = on
	b.mu.Unlock()
	return nil
}

func (b *ByteObject) Stat() (FileStat, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	t := b.mtime.UnixNano()
	return FileStat{Type: TypeSharedMemory, Nlink: 1, Size: uint64(len(b.data)), Atim: t, Mtim: t, Ctim: t}, nil
}

func (b *ByteObject) Sync() error     { return nil }
func (b *ByteObject) Datasync() error { return nil }

// Poll: a byte object is always ready.
func (b *ByteObject) Poll(want Events, _ *Waiter) (Events, func()) {
	return want & (EventRead | EventWrite), noop
}
