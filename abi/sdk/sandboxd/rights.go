package sandboxd

import (
	"math/bits"
	"strconv"
	"strings"
)

// Rights is a set of operations a handle permits, in CloudABI's bit
// positions (the native ABI's; WASI numbers its rights differently). Every
// handle has base rights (on the handle) and inheriting rights (the most
// that handles opened through it may hold). Rights only narrow.
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
)

// Rights sets for narrowing a directory handle to read-only use: with
// Narrow(dir, RightsReadOnlyDir, RightsReadOnlyFile) the handle can list,
// stat and open beneath itself, and what it opens can be read, but
// nothing can be created, changed or removed through it.
const (
	RightsReadOnlyDir = RightFileOpen | RightFileReaddir | RightFileReadlink |
		RightFileStatFGet | RightFileStatGet | RightPollFDReadwrite
	RightsReadOnlyFile = RightsReadOnlyDir | RightFDRead | RightFDSeek | RightFDTell |
		RightFileAdvise | RightProcExec
)

var rightNames = [...]string{
	0: "fd_datasync", 1: "fd_read", 2: "fd_seek", 3: "fd_stat_put_flags", 4: "fd_sync",
	5: "fd_tell", 6: "fd_write", 7: "file_advise", 8: "file_allocate",
	9: "file_create_directory", 10: "file_create_file", 12: "file_link_source",
	13: "file_link_target", 14: "file_open", 15: "file_readdir", 16: "file_readlink",
	17: "file_rename_source", 18: "file_rename_target", 19: "file_stat_fget",
	20: "file_stat_fput_size", 21: "file_stat_fput_times", 22: "file_stat_get",
	23: "file_stat_put_times", 24: "file_symlink", 25: "file_unlink", 26: "mem_map",
	27: "mem_map_exec", 28: "poll_fd_readwrite", 30: "poll_proc_terminate",
	32: "proc_exec", 39: "sock_shutdown", 40: "sock_accept",
}

// Has reports whether r holds every right in need.
func (r Rights) Has(need Rights) bool { return r&need == need }

// String lists the rights by their CloudABI names, joined by '|'.
func (r Rights) String() string {
	if r == 0 {
		return "none"
	}
	var parts []string
	for r != 0 {
		i := bits.TrailingZeros64(uint64(r))
		r &^= 1 << i
		if i < len(rightNames) && rightNames[i] != "" {
			parts = append(parts, rightNames[i])
		} else {
			parts = append(parts, "bit"+strconv.Itoa(i))
		}
	}
	return strings.Join(parts, "|")
}
