package abi

import (
	"github.com/sandboxd/sandboxd/caps"
	"github.com/tetratelabs/wazero/api"
)

// Support says how completely a call is implemented.
type Support uint8

const (
	// Full: the call does what docs/ABI.md says, for every argument.
	Full Support = iota
	// Partial: implemented, with the limits given in the call's note.
	Partial
	// NoSys: the call exists so that the table is complete and answers
	// ENOSYS under the condition given in the note.
	NoSys
)

func (s Support) String() string {
	return [...]string{"full", "partial", "ENOSYS"}[s]
}

// Param is one wasm parameter of a call, named so that docs, the C header
// and the call tracer can show it.
type Param struct {
	Name string
	Type api.ValueType
	// Pointer marks an i32 that is an address in guest memory (written
	// "*name" in the table).
	Pointer bool
}

// Call is one entry of the native ABI: everything the host module, the C
// header, docs/ABI.md and `sandboxd abi` say about it comes from here.
type Call struct {
	Slot   int    // CloudABI's number for the call it replaces (0–48)
	Name   string // import name in module "sandboxd"
	Params []Param
	// NoReturn calls (proc_exit, thread_exit) have no result; every other
	// call returns an errno as i32.
	NoReturn bool
	// Rights are the rights checks the call makes, in the order the docs
	// list them; none when the call needs no right. The tables write them
	// as literals, which the compiler lays out statically: built by a
	// function at init, they moved fd_write's BenchmarkHostCallRatio from
	// 1.10 to 1.15 (docs/BENCHMARKS.md).
	Rights  []Need
	Origin  string // the CloudABI call it comes from
	Changed string // what differs from CloudABI ("" when nothing)
	Support Support
	Note    string

	fn handler
	// keepsHold: the call neither blocks nor changes the guest's handles,
	// so the guest's caps.Hold may stay as it is (abi/hold.go); every other
	// call gives it up first.
	keepsHold bool
}

// A Need is one rights check of a call: the rights a handle passed to the
// call must hold for it to go on (ENOTCAPABLE otherwise), and when.
// TestHandlersCheckTheirTableRights holds every handler to its entries.
type Need struct {
	// Rights must all be held, or one of them with AnyOf. None says that
	// under When the call needs no right.
	Rights caps.Rights
	AnyOf  bool
	// Inheriting checks Rights among the handle's inheriting rights (what
	// it may pass on to handles derived through it) instead of its own.
	Inheriting bool
	// Param is the parameter that passes the handle (poll: the
	// subscriptions that name it); "" is the call's first parameter.
	Param string
	// When is the condition under which the check is made, as the docs
	// word it ("with CREAT", "for fd_read events"); "" is every call.
	When string
}

// HandleParam returns the name of the parameter whose handle n checks:
// n.Param, or c's first parameter.
func (c *Call) HandleParam(n Need) string {
	if n.Param == "" && len(c.Params) > 0 {
		return c.Params[0].Name
	}
	return n.Param
}

// handler runs one call for g. p holds the wasm parameters in order; the
// returned errno becomes the call's result.
type handler func(g *Guest, m api.Memory, p []uint64) Errno

var (
	i32 = api.ValueTypeI32
	i64 = api.ValueTypeI64
)

func ps(namesTypes ...any) []Param {
	out := make([]Param, 0, len(namesTypes)/2)
	for i := 0; i < len(namesTypes); i += 2 {
		name := namesTypes[i].(string)
		ptr := name[0] == '*'
		if ptr {
			name = name[1:]
		}
		out = append(out, Param{Name: name, Type: namesTypes[i+1].(api.ValueType), Pointer: ptr})
	}
	return out
}

// Calls returns the 49 calls of the native ABI, in CloudABI slot order.
func Calls() []Call { return calls[:] }

// seekNeeds are fd_seek's rights, in both ABIs: a pure tell (offset 0 from
// the current position) needs FD_TELL or FD_SEEK, which implies it.
var seekNeeds = []Need{
	{Rights: caps.RightFDSeek | caps.RightFDTell, AnyOf: true, When: "for whence=cur, offset=0"},
	{Rights: caps.RightFDSeek, When: "otherwise"},
}

// openNeeds are file_open's rights on the directory, in both ABIs.
var openNeeds = []Need{
	{Rights: caps.RightFileOpen},
	{Rights: caps.RightFileCreateFile, When: "with CREAT"},
	{Rights: caps.RightFileStatFPutSize, Inheriting: true, When: "with TRUNC"},
}

var calls = [49]Call{
	{Slot: 0, Name: "clock_res_get", Params: ps("clock_id", i32, "*resolution_out", i32),
		Origin: "clock_res_get", fn: clockResGet,
		Note: "clock ids are CloudABI's: 1 monotonic, 2 process cputime, 3 realtime, 4 thread cputime"},
	{Slot: 1, Name: "clock_time_get", Params: ps("clock_id", i32, "precision", i64, "*time_out", i32),
		Origin: "clock_time_get", fn: clockTimeGet, keepsHold: true,
		Note: "cputime clocks report the guest's wall time since start"},
	{Slot: 2, Name: "condvar_signal", Params: ps("*condvar", i32, "scope", i32, "nwaiters", i32),
		Origin: "condvar_signal", Support: NoSys, fn: noSys,
		Note: "ENOSYS: guests without shared memory have one thread; use memory.atomic.notify"},
	{Slot: 3, Name: "fd_close", Params: ps("fd", i32), Origin: "fd_close", fn: fdClose,
		Note: "closing a handle does not revoke what was derived from it"},
	{Slot: 4, Name: "fd_create1", Params: ps("type", i32, "*fd_out", i32), Origin: "fd_create1", fn: fdCreate1,
		Changed: "creates an in-memory byte object (type SHARED_MEMORY 0x70); no mapping",
		Note:    "the object can be sent to other guests, who share its bytes"},
	{Slot: 5, Name: "fd_create2", Params: ps("type", i32, "*fd1_out", i32, "*fd2_out", i32), Origin: "fd_create2", fn: fdCreate2,
		Changed: "an in-memory channel pair inside the supervisor, not an AF_UNIX socketpair",
		Note:    "type SOCKET_DGRAM 0x80 keeps message boundaries, SOCKET_STREAM 0x82 does not"},
	{Slot: 6, Name: "fd_datasync", Params: ps("fd", i32), Rights: []Need{{Rights: caps.RightFDDatasync}}, Origin: "fd_datasync", fn: fdDatasync},
	{Slot: 7, Name: "fd_dup", Params: ps("from", i32, "*fd_out", i32), Origin: "fd_dup", fn: fdDup,
		Note: "the copy is a child capability with the same rights"},
	{Slot: 8, Name: "fd_pread", Params: ps("fd", i32, "*iovs", i32, "iovs_len", i32, "offset", i64, "*nread_out", i32),
		Rights: []Need{{Rights: caps.RightFDRead | caps.RightFDSeek}}, Origin: "fd_pread", fn: fdPread},
	{Slot: 9, Name: "fd_pwrite", Params: ps("fd", i32, "*iovs", i32, "iovs_len", i32, "offset", i64, "*nwritten_out", i32),
		Rights: []Need{{Rights: caps.RightFDWrite | caps.RightFDSeek}}, Origin: "fd_pwrite", fn: fdPwrite},
	{Slot: 10, Name: "fd_read", Params: ps("fd", i32, "*iovs", i32, "iovs_len", i32, "*nread_out", i32),
		Rights: []Need{{Rights: caps.RightFDRead}}, Origin: "fd_read", fn: fdRead},
	{Slot: 11, Name: "fd_replace", Params: ps("from", i32, "to", i32), Origin: "fd_replace", fn: fdReplace,
		Note: "to must be open; it becomes a child of from's capability; from stays open"},
	{Slot: 12, Name: "fd_seek", Params: ps("fd", i32, "offset", i64, "whence", i32, "*newoffset_out", i32),
		Rights: seekNeeds, Origin: "fd_seek", fn: fdSeek,
		Note: "whence is CloudABI's: 1 cur, 2 end, 3 set"},
	{Slot: 13, Name: "fd_stat_get", Params: ps("fd", i32, "*fdstat_out", i32), Origin: "fd_stat_get", fn: fdStatGet},
	{Slot: 14, Name: "fd_stat_put", Params: ps("fd", i32, "*fdstat", i32, "flags", i32),
		Rights: []Need{{Rights: caps.RightFDStatPutFlags, When: "for FLAGS"}, {When: "for RIGHTS"}}, Origin: "fd_stat_put", fn: fdStatPut,
		Note: "exactly one of FLAGS (0x1) or RIGHTS (0x2); RIGHTS only narrows; changing APPEND, the object's, also needs fd_write, and turning it off fd_seek as well (ENOTCAPABLE): a read-only copy cannot redirect its writer's writes, and an append-only handle, and every copy of it, leaves the file in append mode"},
	{Slot: 15, Name: "fd_sync", Params: ps("fd", i32), Rights: []Need{{Rights: caps.RightFDSync}}, Origin: "fd_sync", fn: fdSync},
	{Slot: 16, Name: "fd_write", Params: ps("fd", i32, "*iovs", i32, "iovs_len", i32, "*nwritten_out", i32),
		Rights: []Need{{Rights: caps.RightFDWrite}}, Origin: "fd_write", fn: fdWrite, keepsHold: true},
	{Slot: 17, Name: "file_advise", Params: ps("fd", i32, "offset", i64, "len", i64, "advice", i32),
		Rights: []Need{{Rights: caps.RightFileAdvise}}, Origin: "file_advise", fn: fileAdvise, Note: "advice is validated and passed to the host file as posix_fadvise(2), which a FIFO refuses (ESPIPE)"},
	{Slot: 18, Name: "file_allocate", Params: ps("fd", i32, "offset", i64, "len", i64),
		Rights: []Need{{Rights: caps.RightFileAllocate}}, Origin: "file_allocate", fn: fileAllocate},
	{Slot: 19, Name: "file_create", Params: ps("fd", i32, "*path", i32, "path_len", i32, "type", i32),
		Rights: []Need{{Rights: caps.RightFileCreateDir}}, Origin: "file_create", fn: fileCreate, Note: "type must be DIRECTORY (0x20)"},
	{Slot: 20, Name: "file_link", Params: ps("fd1", i32, "lookup_flags", i32, "*path1", i32, "path1_len", i32, "fd2", i32, "*path2", i32, "path2_len", i32),
		Rights: []Need{{Rights: caps.RightFileLinkSource}, {Rights: caps.RightFileLinkTarget, Param: "fd2"}}, Origin: "file_link", fn: fileLink,
		Changed: "lookup struct flattened into (fd1, lookup_flags)", Note: "both directories must come from the same grant (else EXDEV)"},
	{Slot: 21, Name: "file_open", Params: ps("dirfd", i32, "lookup_flags", i32, "*path", i32, "path_len", i32, "oflags", i32, "*fdstat", i32, "*fd_out", i32),
		Rights: openNeeds, Origin: "file_open", fn: fileOpen,
		Changed: "lookup struct flattened", Note: "requested rights ⊆ dirfd's inheriting; the new handle is a child capability of dirfd"},
	{Slot: 22, Name: "file_readdir", Params: ps("fd", i32, "*buf", i32, "buf_len", i32, "cookie", i64, "*bufused_out", i32),
		Rights: []Need{{Rights: caps.RightFileReaddir}}, Origin: "file_readdir", fn: fileReaddir,
		Note: "entries are '.', '..', then names in byte order; cookie is the index of the next entry; the listing read from cookie 0 is kept for the next calls, charged to the user's memory budget and counted against the 1 GiB all listings may hold together (ENOMEM past either)"},
	{Slot: 23, Name: "file_readlink", Params: ps("fd", i32, "*path", i32, "path_len", i32, "*buf", i32, "buf_len", i32, "*bufused_out", i32),
		Rights: []Need{{Rights: caps.RightFileReadlink}}, Origin: "file_readlink", fn: fileReadlink},
	{Slot: 24, Name: "file_rename", Params: ps("fd1", i32, "*path1", i32, "path1_len", i32, "fd2", i32, "*path2", i32, "path2_len", i32),
		Rights: []Need{{Rights: caps.RightFileRenameSource}, {Rights: caps.RightFileRenameTarget, Param: "fd2"}}, Origin: "file_rename", fn: fileRename,
		Note: "both directories must come from the same grant (else EXDEV)"},
	{Slot: 25, Name: "file_stat_fget", Params: ps("fd", i32, "*filestat_out", i32), Rights: []Need{{Rights: caps.RightFileStatFGet}}, Origin: "file_stat_fget", fn: fileStatFget},
	{Slot: 26, Name: "file_stat_fput", Params: ps("fd", i32, "*filestat", i32, "flags", i32),
		Rights: []Need{{Rights: caps.RightFileStatFPutSize, When: "for SIZE"}, {Rights: caps.RightFileStatFPutTimes, When: "for times"}}, Origin: "file_stat_fput", fn: fileStatFput},
	{Slot: 27, Name: "file_stat_get", Params: ps("fd", i32, "lookup_flags", i32, "*path", i32, "path_len", i32, "*filestat_out", i32),
		Rights: []Need{{Rights: caps.RightFileStatGet}}, Origin: "file_stat_get", fn: fileStatGet, Changed: "lookup struct flattened"},
	{Slot: 28, Name: "file_stat_put", Params: ps("fd", i32, "lookup_flags", i32, "*path", i32, "path_len", i32, "*filestat", i32, "flags", i32),
		Rights: []Need{{Rights: caps.RightFileStatPutTimes}}, Origin: "file_stat_put", fn: fileStatPut, Changed: "lookup struct flattened"},
	{Slot: 29, Name: "file_symlink", Params: ps("*path1", i32, "path1_len", i32, "fd", i32, "*path2", i32, "path2_len", i32),
		Rights: []Need{{Rights: caps.RightFileSymlink, Param: "fd"}}, Origin: "file_symlink", fn: fileSymlink,
		Note: "the link's contents are not checked; following a link that leaves the directory fails with ENOTCAPABLE"},
	{Slot: 30, Name: "file_unlink", Params: ps("fd", i32, "*path", i32, "path_len", i32, "flags", i32),
		Rights: []Need{{Rights: caps.RightFileUnlink}}, Origin: "file_unlink", fn: fileUnlink, Note: "flags REMOVEDIR (0x1) removes an empty directory"},
	{Slot: 31, Name: "lock_unlock", Params: ps("*lock", i32, "scope", i32), Origin: "lock_unlock", Support: NoSys, fn: noSys,
		Note: "ENOSYS: guests without shared memory have one thread; use memory.atomic.wait32/notify"},
	{Slot: 32, Name: "sock_accept", Params: ps("fd", i32, "*fd_out", i32), Rights: []Need{{Rights: caps.RightSockAccept}}, Origin: "mem_advise", fn: sockAccept,
		Changed: "new: takes the next connection from a listener handle, or opens a new one to a dialer's target, as a stream handle (a child capability)",
		Note:    "ENOTSOCK on a handle that is not a socket, EINVAL on a connected socket or channel end, whatever its rights"},
	{Slot: 33, Name: "argdata_get", Params: ps("*buf", i32, "buf_len", i32, "*size_out", i32), Origin: "mem_map", fn: argdataGet,
		Changed: "new: copies the startup argdata (replaces auxv AT_ARGDATA); with buf_len smaller than the size, copies nothing, writes the size and returns ENOBUFS"},
	{Slot: 34, Name: "cap_revoke", Params: ps("revoker", i32), Origin: "mem_protect", fn: capRevoke,
		Changed: "new: revokes the forwarder made by cap_revocable and everything derived from it, in every guest"},
	{Slot: 35, Name: "fd_describe", Params: ps("fd", i32, "*buf", i32, "buf_len", i32, "*size_out", i32), Origin: "mem_sync", fn: fdDescribe,
		Changed: "new: writes the handle's capability as an argdata map: id, kind, name, rights_base, rights_inheriting, edge, parent, origin, holder; ENOBUFS as argdata_get"},
	{Slot: 36, Name: "cap_revocable", Params: ps("fd", i32, "*forwarder_out", i32, "*revoker_out", i32), Origin: "mem_unmap", fn: capRevocable,
		Changed: "new: makes a revocable forwarder of fd (same rights) to give away, and a revoker handle to keep"},
	{Slot: 37, Name: "poll", Params: ps("*in", i32, "*out", i32, "nsubscriptions", i32, "*nevents_out", i32),
		Rights: []Need{
			{Rights: caps.RightPollFDReadwrite | caps.RightFDRead, When: "for fd_read events"},
			{Rights: caps.RightPollFDReadwrite | caps.RightSockAccept, When: "for fd_read events on a listener or dialer"},
			{Rights: caps.RightPollFDReadwrite | caps.RightFDWrite, When: "for fd_write events"},
			{Rights: caps.RightPollProcTerminate, When: "for proc_terminate events"}}, Origin: "poll", fn: poll,
		Changed: "event types clock, fd_read, fd_write, proc_terminate; condvar and lock types answer ENOSYS in event.error",
		Note:    "waits park a goroutine, not a thread, and end when the guest is killed"},
	{Slot: 38, Name: "proc_exec", Params: ps("fd", i32, "*data", i32, "data_len", i32, "*fds", i32, "fds_len", i32),
		Rights: []Need{{Rights: caps.RightProcExec}}, Origin: "proc_exec", fn: procExec,
		Note: "fd is a module or a wasm file; the new handle table is exactly fds, renumbered from 0; data is the new argdata; ENOMEM when a file's bytes, charged while they are read and compiled, or data, charged while the new program runs, would take the user past serve's --max-mem-per-user"},
	{Slot: 39, Name: "proc_exit", Params: ps("rval", i32), NoReturn: true, Origin: "proc_exit", fn: procExit},
	{Slot: 40, Name: "proc_spawn", Params: ps("fd", i32, "*data", i32, "data_len", i32, "*fds", i32, "fds_len", i32, "*proc_out", i32),
		Rights: []Need{{Rights: caps.RightProcExec}}, Origin: "proc_fork", fn: procSpawn,
		Changed: "spawn instead of fork: starts a child guest from a module or wasm file handle with exactly fds (renumbered from 0, as child capabilities) and argdata data; returns a process handle that poll waits on and whose close kills the child; EAGAIN when the guest's process tree already runs its limit of descendants (--max-procs); ENOMEM when the child, charged its parent's --mem and --max-stack, a file's bytes, charged while they are read and compiled, or data, charged while the child runs, would take the user past serve's --max-mem-per-user"},
	{Slot: 41, Name: "proc_raise", Params: ps("sig", i32), Origin: "proc_raise", fn: procRaise,
		Note: "terminating signals end the guest with exit status 128+sig; ignored signals are no-ops"},
	{Slot: 42, Name: "random_get", Params: ps("*buf", i32, "buf_len", i32), Origin: "random_get", fn: randomGet},
	{Slot: 43, Name: "sock_recv", Params: ps("sock", i32, "*recv_in", i32, "*recv_out", i32),
		Rights: []Need{{Rights: caps.RightFDRead}}, Origin: "sock_recv", fn: sockRecv,
		Note: "received handles are child capabilities of the sender's (rights kept, never widened)"},
	{Slot: 44, Name: "sock_send", Params: ps("sock", i32, "*send_in", i32, "*send_out", i32),
		Rights: []Need{{Rights: caps.RightFDWrite}}, Origin: "sock_send", fn: sockSend,
		Changed: "attached handles are re-derived for the receiver, keeping the sender's narrowed rights (Capsicum semantics); ENOBUFS past the user's bound on handles in flight (serve --max-inflight-per-user)"},
	{Slot: 45, Name: "sock_shutdown", Params: ps("sock", i32, "how", i32), Rights: []Need{{Rights: caps.RightSockShutdown}}, Origin: "sock_shutdown", fn: sockShutdown,
		Note: "ENOTSOCK on a handle that is not a socket, whatever its rights"},
	{Slot: 46, Name: "thread_create", Params: ps("*attr", i32, "*tid_out", i32), Origin: "thread_create", Support: NoSys, fn: noSys,
		Note: "ENOSYS: needs a module with shared memory"},
	{Slot: 47, Name: "thread_exit", Params: ps("*lock", i32, "scope", i32), Origin: "thread_exit", Support: NoSys, fn: noSys,
		Note: "ENOSYS: needs a module with shared memory"},
	{Slot: 48, Name: "thread_yield", Params: nil, Origin: "thread_yield", fn: threadYield},
}
