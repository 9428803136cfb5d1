//go:build wasip1

package sandboxd

import (
	"structs"
	"unsafe"
)

// The native calls this package uses (docs/ABI.md has the full table).
// Every call returns an errno; pointers are addresses in this guest's
// linear memory. The functions are not marked noescape, so the structures
// passed by pointer live on the heap for the call.

//go:wasmimport sandboxd argdata_get
func argdata_get(buf unsafe.Pointer, bufLen uint32, sizeOut unsafe.Pointer) uint32

//go:wasmimport sandboxd fd_describe
func fd_describe(fd uint32, buf unsafe.Pointer, bufLen uint32, sizeOut unsafe.Pointer) uint32

//go:wasmimport sandboxd fd_dup
func fd_dup(from uint32, fdOut unsafe.Pointer) uint32

//go:wasmimport sandboxd fd_close
func fd_close(fd uint32) uint32

//go:wasmimport sandboxd fd_stat_get
func fd_stat_get(fd uint32, statOut unsafe.Pointer) uint32

//go:wasmimport sandboxd fd_stat_put
func fd_stat_put(fd uint32, stat unsafe.Pointer, flags uint32) uint32

//go:wasmimport sandboxd fd_create2
func fd_create2(typ uint32, fd1Out, fd2Out unsafe.Pointer) uint32

//go:wasmimport sandboxd file_open
func file_open(dirfd, lookupFlags uint32, path unsafe.Pointer, pathLen, oflags uint32, stat unsafe.Pointer, fdOut unsafe.Pointer) uint32

//go:wasmimport sandboxd cap_revocable
func cap_revocable(fd uint32, fwdOut, revOut unsafe.Pointer) uint32

//go:wasmimport sandboxd cap_revoke
func cap_revoke(revoker uint32) uint32

//go:wasmimport sandboxd proc_spawn
func proc_spawn(fd uint32, data unsafe.Pointer, dataLen uint32, fds unsafe.Pointer, fdsLen uint32, procOut unsafe.Pointer) uint32

//go:wasmimport sandboxd poll
func poll(in, out unsafe.Pointer, nsubs uint32, neventsOut unsafe.Pointer) uint32

//go:wasmimport sandboxd sock_send
func sock_send(sock uint32, in, out unsafe.Pointer) uint32

//go:wasmimport sandboxd sock_recv
func sock_recv(sock uint32, in, out unsafe.Pointer) uint32

// fdstat is CloudABI's 24-byte fdstat.
type fdstat struct {
	_          structs.HostLayout
	filetype   uint8
	_          uint8
	flags      uint16
	_          uint32
	base       uint64
	inheriting uint64
}

// subscription is CloudABI's 56-byte poll subscription; only the fields
// this package uses are named.
type subscription struct {
	_        structs.HostLayout
	userdata uint64
	_        uint16
	typ      uint8
	_        [5]uint8
	u        [5]uint64 // clock: identifier, clock_id, timeout, precision, flags; fd events: fd at u[0]
}

// event is CloudABI's 32-byte poll event.
type event struct {
	_        structs.HostLayout
	userdata uint64
	errno    uint16
	typ      uint8
	_        [5]uint8
	u        [2]uint64 // proc_terminate: signal at byte 4, exit code at byte 8
}

// iovec is a wasm32 (buf, len) pair. Addresses inside structures are
// taken, as Go's syscall package does on wasip1, right before the call
// that uses them and with no other call in between, so nothing they point
// at can move (stacks move only when a call grows them).
type iovec struct {
	_   structs.HostLayout
	buf uint32
	len uint32
}

// sendIn and recvIn are CloudABI's 20-byte sock_send/sock_recv inputs;
// recvOut is the 52-byte output.
type sendIn struct {
	_       structs.HostLayout
	data    uint32
	dataLen uint32
	fds     uint32
	fdsLen  uint32
	flags   uint16
	_       uint16
}

type recvIn = sendIn

type recvOut struct {
	_       structs.HostLayout
	dataLen uint32
	fdsLen  uint32
	_       [40]uint8
	flags   uint16
	_       uint16
}

const (
	filetypeSocketDgram  = 0x80
	filetypeSocketStream = 0x82

	fdstatRights = 0x2

	eventtypeClock         = 1
	eventtypeProcTerminate = 7

	recvFDsTruncated  = 0x01
	recvDataTruncated = 0x08
	recvPeek          = 0x04
	recvWaitall       = 0x10

	lookupSymlinkFollow = 0x1
)
