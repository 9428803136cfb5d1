package caps

import (
	"io"
	"sync"
	"time"
)

// MaxByteObjectSize bounds an in-memory byte object (fd_create1) so that a
// guest cannot make the host allocate without limit.
const MaxByteObjectSize = 1 << 30

// ByteObject is an anonymous in-memory file (fd_create1): CloudABI's shared
// memory object, without mapping, since a wasm guest cannot map host memory.
// It can be passed to other guests, who then share its contents. Holding it
// allows reading, writing and resizing these bytes and nothing else.
type ByteObject struct {
	mu    sync.Mutex
	data  []byte
	off   int64
	mtime time.Time
}

// NewByteObject returns an empty byte object.
func NewByteObject() *ByteObject { return &ByteObject{mtime: time.Now()} }

func (b *ByteObject) Kind() Kind       { return KindByteObject }
func (b *ByteObject) Close() error     { return nil }
func (b *ByteObject) Describe() string { return "bytes" }

func (b *ByteObject) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := b.readAt(p, b.off)
	b.off += int64(n)
	return n, nil
}

func (b *ByteObject) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n, err := b.writeAt(p, b.off)
	b.off += int64(n)
	return n, err
}

func (b *ByteObject) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, EINVAL
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.readAt(p, off), nil
}

func (b *ByteObject) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 {
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
	end := off + int64(len(p))
	if end > MaxByteObjectSize || end < off {
		return 0, EFBIG
	}
	if end > int64(len(b.data)) {
		b.grow(end)
	}
	b.mtime = time.Now()
	return copy(b.data[off:], p), nil
}

func (b *ByteObject) grow(n int64) {
	if n <= int64(cap(b.data)) {
		b.data = b.data[:n]
		return
	}
	nd := make([]byte, n, max(n, 2*int64(cap(b.data))))
	copy(nd, b.data)
	b.data = nd
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

func (b *ByteObject) Truncate(n int64) error {
	if n < 0 || n > MaxByteObjectSize {
		return EFBIG
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if n > int64(len(b.data)) {
		b.grow(n)
	} else {
		clear(b.data[n:])
		b.data = b.data[:n]
	}
	b.mtime = time.Now()
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
