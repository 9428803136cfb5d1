package abi

import (
	"encoding/binary"
	"math"

	"github.com/sandboxd/sandboxd/caps"
	"github.com/tetratelabs/wazero/api"
)

// CloudABI wire layouts shared by every family of the native ABI: the
// filetype numbering (CLOUDABI.md §3.1) and the fdstat, filestat and dirent
// structures as a wasm32 guest lays them out (§2.2, §3.5). All integers are
// little-endian; padding is written as zero.

// CloudABI filetype values.
const (
	filetypeUnknown         = 0x00
	filetypeBlockDevice     = 0x10
	filetypeCharacterDevice = 0x11
	filetypeDirectory       = 0x20
	filetypeProcess         = 0x50
	filetypeRegularFile     = 0x60
	filetypeSharedMemory    = 0x70
	filetypeSocketDgram     = 0x80
	filetypeSocketStream    = 0x82
	filetypeSymbolicLink    = 0x90
)

// cloudabiFiletype maps the ABI-neutral type to CloudABI's numbering.
func cloudabiFiletype(t caps.FileType) uint8 {
	switch t {
	case caps.TypeBlockDevice:
		return filetypeBlockDevice
	case caps.TypeCharDevice:
		return filetypeCharacterDevice
	case caps.TypeDirectory:
		return filetypeDirectory
	case caps.TypeRegular:
		return filetypeRegularFile
	case caps.TypeSocketDgram:
		return filetypeSocketDgram
	case caps.TypeSocketStream:
		return filetypeSocketStream
	case caps.TypeSymlink:
		return filetypeSymbolicLink
	case caps.TypeProcess:
		return filetypeProcess
	case caps.TypeSharedMemory:
		return filetypeSharedMemory
	}
	return filetypeUnknown
}

// typedResource is implemented by resources that know their type without a
// system call (caps.File remembers it from open).
type typedResource interface {
	FileType() caps.FileType
}

// fileTypeOf reports what a handle designates, in ABI-neutral terms, from
// its resource when the resource knows and from its kind otherwise. It
// makes no system call, so fd_stat_get stays cheap for every kind. It must
// agree with the type the resource's Stat reports (file_stat_fget).
func fileTypeOf(c *caps.Cap) caps.FileType {
	switch r := c.Resource().(type) {
	case typedResource:
		return r.FileType()
	case *caps.Channel:
		if r.Datagram() {
			return caps.TypeSocketDgram
		}
		return caps.TypeSocketStream
	}
	switch c.Kind() {
	case caps.KindDirectory:
		return caps.TypeDirectory
	case caps.KindFile:
		return caps.TypeRegular
	case caps.KindStdio:
		return caps.TypeCharDevice
	case caps.KindByteObject:
		return caps.TypeSharedMemory
	case caps.KindChannel, caps.KindSocket, caps.KindListener, caps.KindDialer:
		return caps.TypeSocketStream
	case caps.KindProcess:
		return caps.TypeProcess
	case caps.KindModule:
		// A module is what proc_spawn and proc_exec run, as a
		// CloudABI proc_exec runs an executable file: a regular file
		// to fd_stat_get as to file_stat_fget (which reports its
		// size), readable or not as its rights say. fd_describe's
		// kind tells it from a file.
		return caps.TypeRegular
	}
	return caps.TypeUnknown
}

// fdstat is CloudABI's fdstat (24 bytes, align 8): fs_filetype u8 @0,
// fs_flags u16 @2, fs_rights_base u64 @8, fs_rights_inheriting u64 @16.
type fdstat struct {
	filetype   uint8
	flags      uint16
	base       caps.Rights
	inheriting caps.Rights
}

const fdstatSize = 24

func (s fdstat) encode() [fdstatSize]byte {
	var b [fdstatSize]byte
	b[0] = s.filetype
	binary.LittleEndian.PutUint16(b[2:], s.flags)
	binary.LittleEndian.PutUint64(b[8:], uint64(s.base))
	binary.LittleEndian.PutUint64(b[16:], uint64(s.inheriting))
	return b
}

// readFdstat reads an fdstat from guest memory.
func readFdstat(m api.Memory, ptr uint32) (fdstat, Errno) {
	b, e := read(m, ptr, fdstatSize)
	if e != 0 {
		return fdstat{}, e
	}
	return fdstat{
		filetype:   b[0],
		flags:      binary.LittleEndian.Uint16(b[2:]),
		base:       caps.Rights(binary.LittleEndian.Uint64(b[8:])),
		inheriting: caps.Rights(binary.LittleEndian.Uint64(b[16:])),
	}, 0
}

// writeFdstat writes s to guest memory at ptr, all or nothing.
func writeFdstat(m api.Memory, ptr uint32, s fdstat) Errno {
	b := s.encode()
	return writeBytes(m, ptr, b[:])
}

// CloudABI's filestat (56 bytes): st_dev u64 @0, st_ino u64 @8,
// st_filetype u8 @16, st_nlink u32 @20, st_size u64 @24, st_atim u64 @32,
// st_mtim u64 @40, st_ctim u64 @48. Times are ns since the Unix epoch.
const (
	filestatSize    = 56
	filestatSizeOff = 24
	filestatAtimOff = 32
	filestatMtimOff = 40
)

// encodeFilestat lays st out in CloudABI's form; a link count past u32 is
// reported as the largest u32.
func encodeFilestat(st caps.FileStat) [filestatSize]byte {
	var b [filestatSize]byte
	le := binary.LittleEndian
	le.PutUint64(b[0:], st.Dev)
	le.PutUint64(b[8:], st.Ino)
	b[16] = cloudabiFiletype(st.Type)
	le.PutUint32(b[20:], uint32(min(st.Nlink, math.MaxUint32)))
	le.PutUint64(b[24:], st.Size)
	le.PutUint64(b[32:], uint64(st.Atim))
	le.PutUint64(b[40:], uint64(st.Mtim))
	le.PutUint64(b[48:], uint64(st.Ctim))
	return b
}

// writeFilestat writes st to guest memory at ptr, all or nothing.
func writeFilestat(m api.Memory, ptr uint32, st caps.FileStat) Errno {
	b := encodeFilestat(st)
	return writeBytes(m, ptr, b[:])
}

// filestatIn is what file_stat_fput and file_stat_put read from a guest's
// filestat: the size and the two settable times.
type filestatIn struct {
	size, atim, mtim uint64
}

func readFilestat(m api.Memory, ptr uint32) (filestatIn, Errno) {
	b, e := read(m, ptr, filestatSize)
	if e != 0 {
		return filestatIn{}, e
	}
	le := binary.LittleEndian
	return filestatIn{
		size: le.Uint64(b[filestatSizeOff:]),
		atim: le.Uint64(b[filestatAtimOff:]),
		mtim: le.Uint64(b[filestatMtimOff:]),
	}, 0
}

// A dirent is 24 bytes followed by the name (not NUL-terminated):
// d_next u64 @0 (the cookie of the next entry), d_ino u64 @8, d_namlen u32
// @16, d_type u8 @20. WASI preview1 uses the same layout with its own type
// numbering, so the encoder takes the type already numbered.
const direntSize = 24

func putDirent(b *[direntSize]byte, next, ino uint64, namlen uint32, typ uint8) {
	*b = [direntSize]byte{}
	binary.LittleEndian.PutUint64(b[0:], next)
	binary.LittleEndian.PutUint64(b[8:], ino)
	binary.LittleEndian.PutUint32(b[16:], namlen)
	b[20] = typ
}

// encodeDirents fills dst with a dirent and name for each of ents, the
// listing from index cookie on, numbering types with typ. The last entry
// may be cut off at the end of dst. It returns the bytes used: less than
// len(dst) only when the listing ended.
func encodeDirents(dst []byte, ents []caps.DirEntry, cookie uint64, typ func(caps.FileType) uint8) int {
	used := 0
	for i := 0; i < len(ents) && used < len(dst); i++ {
		e := &ents[i]
		var h [direntSize]byte
		putDirent(&h, cookie+uint64(i)+1, e.Ino, uint32(len(e.Name)), typ(e.Type))
		used += copy(dst[used:], h[:])
		used += copy(dst[used:], e.Name)
	}
	return used
}
