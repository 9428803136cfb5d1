package abi

import (
	"encoding/binary"

	"github.com/sandboxd/sandboxd/caps"
	"github.com/tetratelabs/wazero/api"
)

// Guest memory access. Every helper checks bounds and reports failure as
// EFAULT; none panics on any pointer or length a guest can pass.

// MaxIOVecs bounds an iovec array, as IOV_MAX does on POSIX systems.
const MaxIOVecs = 1024

// MaxPathLen bounds a path argument.
const MaxPathLen = 4096

func read(m api.Memory, ptr, n uint32) ([]byte, Errno) {
	b, ok := m.Read(ptr, n)
	if !ok {
		return nil, caps.EFAULT
	}
	return b, 0
}

func writeU32(m api.Memory, ptr, v uint32) Errno {
	if !m.WriteUint32Le(ptr, v) {
		return caps.EFAULT
	}
	return 0
}

func writeU64(m api.Memory, ptr uint32, v uint64) Errno {
	if !m.WriteUint64Le(ptr, v) {
		return caps.EFAULT
	}
	return 0
}

// readString copies a (ptr, len) string argument out of guest memory.
func readString(m api.Memory, ptr, n uint32) (string, Errno) {
	if n > MaxPathLen {
		return "", caps.ENAMETOOLONG
	}
	b, e := read(m, ptr, n)
	if e != 0 {
		return "", e
	}
	return string(b), 0
}

// iovecs resolves an array of cnt (buf u32, len u32) pairs at ptr into
// views of guest memory. The views alias guest memory: use them before
// anything can grow it.
func iovecs(m api.Memory, ptr, cnt uint32) ([][]byte, Errno) {
	return iovecsInto(nil, m, ptr, cnt)
}

// iovec resolves the one (buf u32, len u32) pair at ptr: the common case
// of a buffered stream, one load and no list.
func iovec(m api.Memory, ptr uint32) ([]byte, Errno) {
	v, ok := m.ReadUint64Le(ptr)
	if !ok {
		return nil, caps.EFAULT
	}
	return read(m, uint32(v), uint32(v>>32))
}

// iovecsInto is iovecs appending to dst[:0]: a caller on a hot path passes
// a small array on its stack, and a short list then costs no allocation.
func iovecsInto(dst [][]byte, m api.Memory, ptr, cnt uint32) ([][]byte, Errno) {
	if cnt == 1 {
		b, e := iovec(m, ptr)
		if e != 0 {
			return nil, e
		}
		return append(dst[:0], b), 0
	}
	if cnt > MaxIOVecs {
		return nil, caps.EINVAL
	}
	raw, e := read(m, ptr, cnt*8)
	if e != 0 {
		return nil, e
	}
	out := dst[:0]
	if cap(out) < int(cnt) {
		out = make([][]byte, 0, cnt)
	}
	for i := range int(cnt) {
		p := binary.LittleEndian.Uint32(raw[i*8:])
		l := binary.LittleEndian.Uint32(raw[i*8+4:])
		b, e := read(m, p, l)
		if e != 0 {
			return nil, e
		}
		out = append(out, b)
	}
	return out, 0
}

// readU32Array reads cnt little-endian u32 values (an fd list).
func readU32Array(m api.Memory, ptr, cnt, limit uint32) ([]uint32, Errno) {
	if cnt > limit {
		return nil, caps.E2BIG
	}
	raw, e := read(m, ptr, cnt*4)
	if e != 0 {
		return nil, e
	}
	out := make([]uint32, cnt)
	for i := range out {
		out[i] = binary.LittleEndian.Uint32(raw[i*4:])
	}
	return out, 0
}
