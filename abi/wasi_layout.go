package abi

import (
	"encoding/binary"

	"github.com/sandboxd/sandboxd/caps"
	"github.com/tetratelabs/wazero/api"
)

// WASI preview1 numbering and structure layouts (witx typenames of
// wasi_snapshot_preview1). Where WASI renumbered something CloudABI had,
// the translation lives here and nowhere else.

// WASI rights: bit positions are the order of the $rights flags in
// typenames.witx. They are not CloudABI's (caps.Rights); see wasiRightsMap.
const (
	wasiRightFDDatasync           uint64 = 1 << 0
	wasiRightFDRead               uint64 = 1 << 1
	wasiRightFDSeek               uint64 = 1 << 2
	wasiRightFDFdstatSetFlags     uint64 = 1 << 3
	wasiRightFDSync               uint64 = 1 << 4
	wasiRightFDTell               uint64 = 1 << 5
	wasiRightFDWrite              uint64 = 1 << 6
	wasiRightFDAdvise             uint64 = 1 << 7
	wasiRightFDAllocate           uint64 = 1 << 8
	wasiRightPathCreateDirectory  uint64 = 1 << 9
	wasiRightPathCreateFile       uint64 = 1 << 10
	wasiRightPathLinkSource       uint64 = 1 << 11
	wasiRightPathLinkTarget       uint64 = 1 << 12
	wasiRightPathOpen             uint64 = 1 << 13
	wasiRightFDReaddir            uint64 = 1 << 14
	wasiRightPathReadlink         uint64 = 1 << 15
	wasiRightPathRenameSource     uint64 = 1 << 16
	wasiRightPathRenameTarget     uint64 = 1 << 17
	wasiRightPathFilestatGet      uint64 = 1 << 18
	wasiRightPathFilestatSetSize  uint64 = 1 << 19
	wasiRightPathFilestatSetTimes uint64 = 1 << 20
	wasiRightFDFilestatGet        uint64 = 1 << 21
	wasiRightFDFilestatSetSize    uint64 = 1 << 22
	wasiRightFDFilestatSetTimes   uint64 = 1 << 23
	wasiRightPathSymlink          uint64 = 1 << 24
	wasiRightPathRemoveDirectory  uint64 = 1 << 25
	wasiRightPathUnlinkFile       uint64 = 1 << 26
	wasiRightPollFDReadwrite      uint64 = 1 << 27
	wasiRightSockShutdown         uint64 = 1 << 28
	wasiRightSockAccept           uint64 = 1 << 29
)

// wasiRightsMap pairs each CloudABI right with the WASI rights that carry
// its meaning. Two CloudABI rights split into two WASI rights each:
// FILE_STAT_FPUT_SIZE (path_filestat_set_size gates O_TRUNC,
// fd_filestat_set_size gates ftruncate) and FILE_UNLINK
// (path_remove_directory, path_unlink_file). CloudABI rights with no WASI
// counterpart (mem_map, mem_map_exec, poll_proc_terminate, proc_exec) are
// absent: a WASI call can neither see nor request them.
var wasiRightsMap = [...]struct {
	c caps.Rights
	w uint64
}{
	{caps.RightFDDatasync, wasiRightFDDatasync},
	{caps.RightFDRead, wasiRightFDRead},
	{caps.RightFDSeek, wasiRightFDSeek},
	{caps.RightFDStatPutFlags, wasiRightFDFdstatSetFlags},
	{caps.RightFDSync, wasiRightFDSync},
	{caps.RightFDTell, wasiRightFDTell},
	{caps.RightFDWrite, wasiRightFDWrite},
	{caps.RightFileAdvise, wasiRightFDAdvise},
	{caps.RightFileAllocate, wasiRightFDAllocate},
	{caps.RightFileCreateDir, wasiRightPathCreateDirectory},
	{caps.RightFileCreateFile, wasiRightPathCreateFile},
	{caps.RightFileLinkSource, wasiRightPathLinkSource},
	{caps.RightFileLinkTarget, wasiRightPathLinkTarget},
	{caps.RightFileOpen, wasiRightPathOpen},
	{caps.RightFileReaddir, wasiRightFDReaddir},
	{caps.RightFileReadlink, wasiRightPathReadlink},
	{caps.RightFileRenameSource, wasiRightPathRenameSource},
	{caps.RightFileRenameTarget, wasiRightPathRenameTarget},
	{caps.RightFileStatGet, wasiRightPathFilestatGet},
	{caps.RightFileStatFPutSize, wasiRightPathFilestatSetSize | wasiRightFDFilestatSetSize},
	{caps.RightFileStatPutTimes, wasiRightPathFilestatSetTimes},
	{caps.RightFileStatFGet, wasiRightFDFilestatGet},
	{caps.RightFileStatFPutTimes, wasiRightFDFilestatSetTimes},
	{caps.RightFileSymlink, wasiRightPathSymlink},
	{caps.RightFileUnlink, wasiRightPathRemoveDirectory | wasiRightPathUnlinkFile},
	{caps.RightPollFDReadwrite, wasiRightPollFDReadwrite},
	{caps.RightSockShutdown, wasiRightSockShutdown},
	{caps.RightSockAccept, wasiRightSockAccept},
}

// wasiRightsAll is every right WASI preview1 defines (bits 0–29).
const wasiRightsAll uint64 = 1<<30 - 1

// WASIRightsOf translates sandboxd rights into the WASI rights a guest
// sees in fd_fdstat_get. A split CloudABI right shows as both of its WASI
// halves.
func WASIRightsOf(r caps.Rights) uint64 {
	var w uint64
	for _, m := range wasiRightsMap {
		if r&m.c != 0 {
			w |= m.w
		}
	}
	return w
}

// RightsOfWASI translates the WASI rights a guest keeps, when it narrows
// a handle it holds (fd_fdstat_set_rights), into sandboxd rights. A
// CloudABI right whose meaning WASI split in two is kept only when both
// halves are, so dropping either half drops the right; bits WASI does not
// define are ignored. So RightsOfWASI(WASIRightsOf(r)) ⊆ r for every r.
func RightsOfWASI(w uint64) caps.Rights {
	var r caps.Rights
	for _, m := range wasiRightsMap {
		if w&m.w == m.w {
			r |= m.c
		}
	}
	return r
}

// wasiOpenRights translates the rights a guest asks path_open for
// (fs_rights_base wb, fs_rights_inheriting wi) into the sandboxd rights to
// ask for. Rust's standard library and wasi-libc ask for one half of a
// right WASI split in two, so a half asked for counts, placed by what it
// means:
//
//   - path_unlink_file or path_remove_directory asks for file_unlink (both
//     are unlinks beneath the directory);
//   - fd_filestat_set_size (ftruncate) asks for file_stat_fput_size on the
//     new handle itself;
//   - path_filestat_set_size (O_TRUNC of files opened beneath the new
//     handle) asks for file_stat_fput_size among the rights it passes on,
//     where sandboxd checks O_TRUNC, as CloudABI does. It is not a right
//     on the handle: wasi-libc asks for it when it opens a file read-only,
//     and that file must not be opened for writing.
//
// A handle given file_unlink may remove directories as well as files, and
// a directory given file_stat_fput_size to pass on may truncate beneath
// it whichever half asked: the caller clips both sets to what the
// directory may pass on, so no handle ever holds more than its directory
// could give. No right is asked for that no WASI bit named.
func wasiOpenRights(wb, wi uint64) (base, inheriting caps.Rights) {
	base = rightsAskedOfWASI(wb &^ wasiRightPathFilestatSetSize)
	inheriting = rightsAskedOfWASI(wi)
	if wb&wasiRightPathFilestatSetSize != 0 {
		inheriting |= caps.RightFileStatFPutSize
	}
	return base, inheriting
}

// rightsAskedOfWASI is the CloudABI rights any of whose WASI bits are in w.
func rightsAskedOfWASI(w uint64) caps.Rights {
	var r caps.Rights
	for _, m := range wasiRightsMap {
		if w&m.w != 0 {
			r |= m.c
		}
	}
	return r
}

// WASI filetype.
const (
	wasiFiletypeUnknown         = 0
	wasiFiletypeBlockDevice     = 1
	wasiFiletypeCharacterDevice = 2
	wasiFiletypeDirectory       = 3
	wasiFiletypeRegularFile     = 4
	wasiFiletypeSocketDgram     = 5
	wasiFiletypeSocketStream    = 6
	wasiFiletypeSymbolicLink    = 7
)

// wasiFiletypeOf maps the ABI-neutral type. WASI has no process or shared
// memory type: a process handle is "unknown", and a byte object, which
// reads, writes, seeks and resizes like a file, is a regular file.
func wasiFiletypeOf(t caps.FileType) uint8 {
	switch t {
	case caps.TypeBlockDevice:
		return wasiFiletypeBlockDevice
	case caps.TypeCharDevice:
		return wasiFiletypeCharacterDevice
	case caps.TypeDirectory:
		return wasiFiletypeDirectory
	case caps.TypeRegular, caps.TypeSharedMemory:
		return wasiFiletypeRegularFile
	case caps.TypeSocketDgram:
		return wasiFiletypeSocketDgram
	case caps.TypeSocketStream:
		return wasiFiletypeSocketStream
	case caps.TypeSymlink:
		return wasiFiletypeSymbolicLink
	}
	return wasiFiletypeUnknown
}

// WASI clock ids, and the CloudABI ids they correspond to.
const (
	wasiClockRealtime         = 0
	wasiClockMonotonic        = 1
	wasiClockProcessCPUTimeID = 2
	wasiClockThreadCPUTimeID  = 3
)

// cloudClockOfWASI returns the CloudABI clock id for a WASI one, or 0 (no
// clock) for an unknown id.
func cloudClockOfWASI(id uint32) uint32 {
	switch id {
	case wasiClockRealtime:
		return clockRealtime
	case wasiClockMonotonic:
		return clockMonotonic
	case wasiClockProcessCPUTimeID:
		return clockProcessCPUTime
	case wasiClockThreadCPUTimeID:
		return clockThreadCPUTime
	}
	return 0
}

// WASI whence values are io.Seek*'s: set 0, cur 1, end 2.
const wasiWhenceEnd = 2

// WASI's oflags, lookupflags, fdflags and fstflags have CloudABI's values,
// so the native constants (oflag*, lookupSymlinkFollow, caps.Flag*, fs*)
// serve both ABIs.

// WASI advice (fd_advise): normal 0 … noreuse 5.
const wasiAdviceMax = 5

// WASI preopentype. Only DIR is defined; wasiPreopenNone is what
// fd_prestat_get reports for a handle that is not a named directory (see
// wasiFDPrestatGet).
const (
	wasiPreopenDir  = 0
	wasiPreopenNone = 0xff
)

// WASI riflags, roflags and sdflags.
const (
	wasiRecvPeek          = 1 << 0
	wasiRecvWaitall       = 1 << 1
	wasiRecvDataTruncated = 1 << 0
	wasiEventtypeClock    = 0
	wasiEventtypeFDRead   = 1
	wasiEventtypeFDWrite  = 2
	wasiSubclockAbstime   = 1 << 0
	wasiEventFDReadHangup = 1 << 0
	wasiSubscriptionSize  = 48
	wasiEventSize         = 32
	wasiFilestatSize      = 64
	wasiFdstatSize        = 24
	wasiPrestatSize       = 8
	wasiMaxArgsOrEnvBytes = 1 << 20
)

// WASI signals, and the CloudABI signal each one is raised as. WASI added
// none, poll, prof, pwr and winch and renumbered the rest; proc_raise
// records CloudABI's number so that one guest status vocabulary serves
// both ABIs.
var wasiSignalToCloud = [...]uint8{
	0:  0,  // none
	1:  7,  // hup
	2:  9,  // int
	3:  12, // quit
	4:  8,  // ill
	5:  17, // trap
	6:  1,  // abrt
	7:  3,  // bus
	8:  6,  // fpe
	9:  10, // kill
	10: 22, // usr1
	11: 13, // segv
	12: 23, // usr2
	13: 11, // pipe
	14: 2,  // alrm
	15: 16, // term
	16: 4,  // chld
	17: 5,  // cont
	18: 14, // stop
	19: 18, // tstp
	20: 19, // ttin
	21: 20, // ttou
	22: 21, // urg
	23: 25, // xcpu
	24: 26, // xfsz
	25: 24, // vtalrm
	26: 0,  // prof: no CloudABI counterpart
	27: 0,  // winch: no CloudABI counterpart
	28: 0,  // poll: no CloudABI counterpart
	29: 0,  // pwr: no CloudABI counterpart
	30: 15, // sys
}

// wasiFilestat encodes a 64-byte WASI filestat.
func wasiFilestat(st caps.FileStat) [wasiFilestatSize]byte {
	var b [wasiFilestatSize]byte
	le := binary.LittleEndian
	le.PutUint64(b[0:], st.Dev)
	le.PutUint64(b[8:], st.Ino)
	b[16] = wasiFiletypeOf(st.Type)
	le.PutUint64(b[24:], st.Nlink)
	le.PutUint64(b[32:], st.Size)
	le.PutUint64(b[40:], uint64(st.Atim))
	le.PutUint64(b[48:], uint64(st.Mtim))
	le.PutUint64(b[56:], uint64(st.Ctim))
	return b
}

// writeBytes copies b to guest memory at ptr, or reports EFAULT.
func writeBytes(m api.Memory, ptr uint32, b []byte) Errno {
	if !m.Write(ptr, b) {
		return caps.EFAULT
	}
	return 0
}
