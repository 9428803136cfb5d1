package caps

import (
	"fmt"
	"math/bits"
	"strings"
)

// Rights is a set of operations a handle permits. Bit positions are
// CloudABI's (cloudabi.txt, CLOUDABI_RIGHT_*), so a rights word written by a
// CloudABI-aware guest means the same thing here. sandboxd adds SockAccept in
// a bit CloudABI never used.
//
// Every capability carries two sets: Base, the operations allowed on the
// handle itself, and Inheriting, the most that handles derived through it
// (files opened beneath a directory, connections accepted from a listener)
// may receive. Rights only ever narrow: no operation in this package returns
// a capability with a right its parent did not hold.
type Rights uint64

const (
	RightFDDatasync        Rights = 1 << 0
	RightFDRead            Rights = 1 << 1
	RightFDSeek            Rights = 1 << 2
	RightFDStatPutFlags    Rights = 1 << 3
	RightFDSync            Rights = 1 << 4
	RightFDTell            Rights = 1 << 5
	RightFDWrite           Rights = 1 << 6
	RightFileAdvise        Rights = 1 << 7
	RightFileAllocate      Rights = 1 << 8
	RightFileCreateDir     Rights = 1 << 9
	RightFileCreateFile    Rights = 1 << 10
	RightFileLinkSource    Rights = 1 << 12
	RightFileLinkTarget    Rights = 1 << 13
	RightFileOpen          Rights = 1 << 14
	RightFileReaddir       Rights = 1 << 15
	RightFileReadlink      Rights = 1 << 16
	RightFileRenameSource  Rights = 1 << 17
	RightFileRenameTarget  Rights = 1 << 18
	RightFileStatFGet      Rights = 1 << 19
	RightFileStatFPutSize  Rights = 1 << 20
	RightFileStatFPutTimes Rights = 1 << 21
	RightFileStatGet       Rights = 1 << 22
	RightFileStatPutTimes  Rights = 1 << 23
	RightFileSymlink       Rights = 1 << 24
	RightFileUnlink        Rights = 1 << 25
	RightMemMap            Rights = 1 << 26
	RightMemMapExec        Rights = 1 << 27
	RightPollFDReadwrite   Rights = 1 << 28
	RightPollProcTerminate Rights = 1 << 30
	RightProcExec          Rights = 1 << 32
	RightSockShutdown      Rights = 1 << 39
	RightSockAccept        Rights = 1 << 40
	rightsAllMask                 = RightFDDatasync | RightFDRead | RightFDSeek | RightFDStatPutFlags | RightFDSync | RightFDTell | RightFDWrite | RightFileAdvise | RightFileAllocate | RightFileCreateDir | RightFileCreateFile | RightFileLinkSource | RightFileLinkTarget | RightFileOpen | RightFileReaddir | RightFileReadlink | RightFileRenameSource | RightFileRenameTarget | RightFileStatFGet | RightFileStatFPutSize | RightFileStatFPutTimes | RightFileStatGet | RightFileStatPutTimes | RightFileSymlink | RightFileUnlink | RightMemMap | RightMemMapExec | RightPollFDReadwrite | RightPollProcTerminate | RightProcExec | RightSockShutdown | RightSockAccept
)

// RightsAll is every right sandboxd knows.
const RightsAll Rights = rightsAllMask

// Has reports whether r holds every right in need.
func (r Rights) Has(need Rights) bool { return r&need == need }

// Missing returns the rights in need that r does not hold.
func (r Rights) Missing(need Rights) Rights { return need &^ r }

// Subset reports whether r ⊆ of.
func (r Rights) Subset(of Rights) bool { return r&^of == 0 }

var rightNames = [...]struct {
	r    Rights
	name string
}{
	{RightFDDatasync, "fd_datasync"},
	{RightFDRead, "fd_read"},
	{RightFDSeek, "fd_seek"},
	{RightFDStatPutFlags, "fd_stat_put_flags"},
	{RightFDSync, "fd_sync"},
	{RightFDTell, "fd_tell"},
	{RightFDWrite, "fd_write"},
	{RightFileAdvise, "file_advise"},
	{RightFileAllocate, "file_allocate"},
	{RightFileCreateDir, "file_create_directory"},
	{RightFileCreateFile, "file_create_file"},
	{RightFileLinkSource, "file_link_source"},
	{RightFileLinkTarget, "file_link_target"},
	{RightFileOpen, "file_open"},
	{RightFileReaddir, "file_readdir"},
	{RightFileReadlink, "file_readlink"},
	{RightFileRenameSource, "file_rename_source"},
	{RightFileRenameTarget, "file_rename_target"},
	{RightFileStatFGet, "file_stat_fget"},
	{RightFileStatFPutSize, "file_stat_fput_size"},
	{RightFileStatFPutTimes, "file_stat_fput_times"},
	{RightFileStatGet, "file_stat_get"},
	{RightFileStatPutTimes, "file_stat_put_times"},
	{RightFileSymlink, "file_symlink"},
	{RightFileUnlink, "file_unlink"},
	{RightMemMap, "mem_map"},
	{RightMemMapExec, "mem_map_exec"},
	{RightPollFDReadwrite, "poll_fd_readwrite"},
	{RightPollProcTerminate, "poll_proc_terminate"},
	{RightProcExec, "proc_exec"},
	{RightSockShutdown, "sock_shutdown"},
	{RightSockAccept, "sock_accept"},
}

// String lists the rights by their CloudABI names, joined by '|'.
func (r Rights) String() string {
	if r == 0 {
		return "none"
	}
	var b strings.Builder
	for _, n := range rightNames {
		if r&n.r != 0 {
			if b.Len() > 0 {
				b.WriteByte('|')
			}
			b.WriteString(n.name)
			r &^= n.r
		}
	}
	for r != 0 {
		bit := Rights(1) << bits.TrailingZeros64(uint64(r))
		if b.Len() > 0 {
			b.WriteByte('|')
		}
		fmt.Fprintf(&b, "bit%d", bits.TrailingZeros64(uint64(bit)))
		r &^= bit
	}
	return b.String()
}

// RightNames returns the names of all known rights, in bit order.
func RightNames() []string {
	out := make([]string, len(rightNames))
	for i, n := range rightNames {
		out[i] = n.name
	}
	return out
}

// ParseRight returns the right with the given CloudABI name.
func ParseRight(name string) (Rights, bool) {
	for _, n := range rightNames {
		if n.name == name {
			return n.r, true
		}
	}
	return 0, false
}

// Per-kind maximum rights, after cloudabi-utils' rights.h. A capability of a
// kind never holds base rights outside its kind's maximum.
const (
	RightsRegularFileBase = RightFDDatasync | RightFDRead | RightFDSeek | RightFDStatPutFlags |
		RightFDSync | RightFDTell | RightFDWrite | RightFileAdvise | RightFileAllocate |
		RightFileStatFGet | RightFileStatFPutSize | RightFileStatFPutTimes |
		RightPollFDReadwrite | RightProcExec
	RightsDirectoryBase = RightFDStatPutFlags | RightFDSync | RightFileAdvise |
		RightFileCreateDir | RightFileCreateFile | RightFileLinkSource | RightFileLinkTarget |
		RightFileOpen | RightFileReaddir | RightFileReadlink | RightFileRenameSource |
		RightFileRenameTarget | RightFileStatFGet | RightFileStatFPutTimes | RightFileStatGet |
		RightFileStatPutTimes | RightFileSymlink | RightFileUnlink | RightPollFDReadwrite
	RightsDirectoryInheriting = RightsDirectoryBase | RightsRegularFileBase
	// RightsByteObjectBase is fd_create1's in-memory object: no mapping in wasm.
	RightsByteObjectBase = RightFDRead | RightFDWrite | RightFDSeek | RightFDTell |
		RightFileStatFGet | RightFileStatFPutSize | RightPollFDReadwrite
	RightsSocketBase = RightFDRead | RightFDStatPutFlags | RightFDWrite | RightFileStatFGet |
		RightPollFDReadwrite | RightSockShutdown
	RightsSocketInheriting = RightsAll
	RightsListenerBase     = RightSockAccept | RightFileStatFGet | RightPollFDReadwrite | RightFDStatPutFlags
	RightsTTYBase          = RightFDRead | RightFDStatPutFlags | RightFDWrite | RightFileStatFGet | RightPollFDReadwrite
	RightsProcessBase      = RightPollProcTerminate | RightFileStatFGet
	RightsModuleBase       = RightProcExec | RightFileStatFGet
	// RightsReadOnly is what ":ro" keeps of a directory or file grant.
	RightsWriteMask = RightFDDatasync | RightFDWrite | RightFileAllocate | RightFileCreateDir |
		RightFileCreateFile | RightFileLinkSource | RightFileLinkTarget | RightFileRenameSource |
		RightFileRenameTarget | RightFileStatFPutSize | RightFileStatFPutTimes |
		RightFileStatPutTimes | RightFileSymlink | RightFileUnlink
)
