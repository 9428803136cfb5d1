package abi

import (
	"context"
	"fmt"

	"github.com/sandboxd/sandboxd/caps"
	"github.com/tetratelabs/wazero"
)

// WASI preview1 ("wasi_snapshot_preview1") on sandboxd's capability
// tables.
//
// Every preview1 function works on the guest's caps.Table, the same table
// the native ABI uses: an fd is the same capability in both ABIs, rights
// are checked on that capability (WASI rights are translated to and from
// CloudABI's, see wasiRightsMap), a handle revoked through the kernel
// fails in both ABIs at once, and files opened with path_open are child
// capabilities in the derivation graph. wazero's own WASI is never used:
// its fd table is invisible to the kernel and cannot be revoked.

// WASICalls returns the 46 functions of WASI preview1, in witx order.
func WASICalls() []Call { return wasiCalls[:] }

// instantiateWASI builds the wasi_snapshot_preview1 host module from
// wasiCalls. One instance serves every guest; handlers find their guest
// through the call's context, as native calls do.
func instantiateWASI(ctx context.Context, r wazero.Runtime) error {
	b := r.NewHostModuleBuilder(WASIModuleName)
	for i := range wasiCalls {
		defineHostCall(b, &wasiCalls[i])
	}
	if _, err := b.Instantiate(ctx); err != nil {
		return fmt.Errorf("%s host module: %w", WASIModuleName, err)
	}
	return nil
}

// wasiCalls is the preview1 table. Slot is the function's position in
// wasi_snapshot_preview1.witx; Origin is the CloudABI call it descends
// from (CLOUDABI.md §6.1), "" for the functions WASI added. Rights are the
// CloudABI rights checked, which docs/WASI.md shows by their WASI names.
var wasiCalls = [46]Call{
	{Slot: 0, Name: "args_get", Params: ps("*argv", i32, "*argv_buf", i32), fn: wasiArgsGet,
		Note: "the guest's arguments, NUL-terminated"},
	{Slot: 1, Name: "args_sizes_get", Params: ps("*argc_out", i32, "*argv_buf_size_out", i32), fn: wasiArgsSizesGet},
	{Slot: 2, Name: "environ_get", Params: ps("*environ", i32, "*environ_buf", i32), fn: wasiEnvironGet,
		Note: "KEY=VALUE strings given at launch; the host environment is never visible"},
	{Slot: 3, Name: "environ_sizes_get", Params: ps("*count_out", i32, "*buf_size_out", i32), fn: wasiEnvironSizesGet},
	{Slot: 4, Name: "clock_res_get", Params: ps("id", i32, "*resolution_out", i32), Origin: "clock_res_get", fn: wasiClockResGet,
		Changed: "clock ids renumbered: realtime 0, monotonic 1, process cputime 2, thread cputime 3"},
	{Slot: 5, Name: "clock_time_get", Params: ps("id", i32, "precision", i64, "*time_out", i32), Origin: "clock_time_get", fn: wasiClockTimeGet, keepsHold: true,
		Note: "cputime clocks report the guest's wall time since start"},
	{Slot: 6, Name: "fd_advise", Params: ps("fd", i32, "offset", i64, "len", i64, "advice", i32), Rights: []Need{{Rights: caps.RightFileAdvise}}, Origin: "file_advise", fn: wasiFDAdvise,
		Note: "advice (0–5) is validated and passed to the host file as posix_fadvise(2), which a FIFO refuses (ESPIPE)"},
	{Slot: 7, Name: "fd_allocate", Params: ps("fd", i32, "offset", i64, "len", i64), Rights: []Need{{Rights: caps.RightFileAllocate}}, Origin: "file_allocate", fn: fileAllocate},
	{Slot: 8, Name: "fd_close", Params: ps("fd", i32), Origin: "fd_close", fn: fdClose,
		Note: "closing a handle does not revoke what was derived from it"},
	{Slot: 9, Name: "fd_datasync", Params: ps("fd", i32), Rights: []Need{{Rights: caps.RightFDDatasync}}, Origin: "fd_datasync", fn: fdDatasync},
	{Slot: 10, Name: "fd_fdstat_get", Params: ps("fd", i32, "*stat_out", i32), Origin: "fd_stat_get", fn: wasiFDFdstatGet,
		Note: "rights are reported in WASI bit positions"},
	{Slot: 11, Name: "fd_fdstat_set_flags", Params: ps("fd", i32, "flags", i32), Rights: []Need{{Rights: caps.RightFDStatPutFlags}}, Origin: "fd_stat_put", fn: wasiFDFdstatSetFlags,
		Note: "APPEND is applied to the host file (changing it needs fd_write, and turning it off fd_seek as well, ENOTCAPABLE otherwise: a read-only copy cannot redirect its writer's writes, and an append-only handle, and every copy of it, leaves the file in append mode); NONBLOCK makes reads, writes and accepts answer EAGAIN instead of waiting"},
	{Slot: 12, Name: "fd_fdstat_set_rights", Params: ps("fd", i32, "fs_rights_base", i64, "fs_rights_inheriting", i64), Origin: "fd_stat_put", fn: wasiFDFdstatSetRights,
		Note: "only narrows (ENOTCAPABLE for any right not held); rights WASI cannot name (proc_exec, poll_proc_terminate) are dropped"},
	{Slot: 13, Name: "fd_filestat_get", Params: ps("fd", i32, "*buf", i32), Rights: []Need{{Rights: caps.RightFileStatFGet}}, Origin: "file_stat_fget", fn: wasiFDFilestatGet},
	{Slot: 14, Name: "fd_filestat_set_size", Params: ps("fd", i32, "size", i64), Rights: []Need{{Rights: caps.RightFileStatFPutSize}}, Origin: "file_stat_fput", fn: wasiFDFilestatSetSize},
	{Slot: 15, Name: "fd_filestat_set_times", Params: ps("fd", i32, "atim", i64, "mtim", i64, "fst_flags", i32), Rights: []Need{{Rights: caps.RightFileStatFPutTimes}}, Origin: "file_stat_fput", fn: wasiFDFilestatSetTimes},
	{Slot: 16, Name: "fd_pread", Params: ps("fd", i32, "*iovs", i32, "iovs_len", i32, "offset", i64, "*nread_out", i32), Rights: []Need{{Rights: caps.RightFDRead | caps.RightFDSeek}}, Origin: "fd_pread", fn: wasiFDPread,
		Note: "the native fd_pread; EISDIR on a directory, ESPIPE on a stream"},
	{Slot: 17, Name: "fd_prestat_get", Params: ps("fd", i32, "*buf", i32), fn: wasiFDPrestatGet,
		Note: "a directory handle named N is the preopen /N (a name beginning with / is kept); any other open handle reports tag 0xff, which wasi-libc and Go skip, so preopens after it are still found"},
	{Slot: 18, Name: "fd_prestat_dir_name", Params: ps("fd", i32, "*path", i32, "path_len", i32), fn: wasiFDPrestatDirName},
	{Slot: 19, Name: "fd_pwrite", Params: ps("fd", i32, "*iovs", i32, "iovs_len", i32, "offset", i64, "*nwritten_out", i32), Rights: []Need{{Rights: caps.RightFDWrite | caps.RightFDSeek}}, Origin: "fd_pwrite", fn: wasiFDPwrite,
		Note: "the native fd_pwrite; EISDIR on a directory, ESPIPE on a stream"},
	{Slot: 20, Name: "fd_read", Params: ps("fd", i32, "*iovs", i32, "iovs_len", i32, "*nread_out", i32), Rights: []Need{{Rights: caps.RightFDRead}}, Origin: "fd_read", fn: wasiFDRead,
		Note: "the native fd_read; EISDIR on a directory"},
	{Slot: 21, Name: "fd_readdir", Params: ps("fd", i32, "*buf", i32, "buf_len", i32, "cookie", i64, "*bufused_out", i32), Rights: []Need{{Rights: caps.RightFileReaddir}}, Origin: "file_readdir", fn: wasiFDReaddir,
		Note: "entries are '.', '..', then names in byte order; the cookie is the index of the next entry; the listing read from cookie 0 is kept for the next calls, charged to the user's memory budget and counted against the 1 GiB all listings may hold together (ENOMEM past either)"},
	{Slot: 22, Name: "fd_renumber", Params: ps("fd", i32, "to", i32), Origin: "fd_replace", fn: wasiFDRenumber,
		Changed: "moves rather than copies: what to held (it must be open) is closed, fd's capability itself takes its place, and fd becomes free"},
	{Slot: 23, Name: "fd_seek", Params: ps("fd", i32, "offset", i64, "whence", i32, "*newoffset_out", i32), Rights: seekNeeds, Origin: "fd_seek", fn: wasiFDSeek,
		Changed: "whence renumbered: set 0, cur 1, end 2"},
	{Slot: 24, Name: "fd_sync", Params: ps("fd", i32), Rights: []Need{{Rights: caps.RightFDSync}}, Origin: "fd_sync", fn: fdSync},
	{Slot: 25, Name: "fd_tell", Params: ps("fd", i32, "*offset_out", i32), Rights: []Need{{Rights: caps.RightFDSeek | caps.RightFDTell, AnyOf: true}}, Origin: "fd_seek", fn: wasiFDTell},
	{Slot: 26, Name: "fd_write", Params: ps("fd", i32, "*iovs", i32, "iovs_len", i32, "*nwritten_out", i32), Rights: []Need{{Rights: caps.RightFDWrite}}, Origin: "fd_write", fn: fdWrite, keepsHold: true,
		Note: "the native fd_write"},
	{Slot: 27, Name: "path_create_directory", Params: ps("fd", i32, "*path", i32, "path_len", i32), Rights: []Need{{Rights: caps.RightFileCreateDir}}, Origin: "file_create", fn: wasiPathCreateDirectory},
	{Slot: 28, Name: "path_filestat_get", Params: ps("fd", i32, "flags", i32, "*path", i32, "path_len", i32, "*buf", i32), Rights: []Need{{Rights: caps.RightFileStatGet}}, Origin: "file_stat_get", fn: wasiPathFilestatGet},
	{Slot: 29, Name: "path_filestat_set_times", Params: ps("fd", i32, "flags", i32, "*path", i32, "path_len", i32, "atim", i64, "mtim", i64, "fst_flags", i32), Rights: []Need{{Rights: caps.RightFileStatPutTimes}}, Origin: "file_stat_put", fn: wasiPathFilestatSetTimes,
		Note: "without SYMLINK_FOLLOW a final symlink's own times change; a path ending in / follows it, as utimensat(2) does"},
	{Slot: 30, Name: "path_link", Params: ps("old_fd", i32, "old_flags", i32, "*old_path", i32, "old_path_len", i32, "new_fd", i32, "*new_path", i32, "new_path_len", i32), Rights: []Need{{Rights: caps.RightFileLinkSource}, {Rights: caps.RightFileLinkTarget, Param: "new_fd"}}, Origin: "file_link", fn: wasiPathLink,
		Note: "both directories must come from the same grant (else EXDEV); with SYMLINK_FOLLOW a final symlink in old_path is followed, beneath old_fd only"},
	{Slot: 31, Name: "path_open", Params: ps("fd", i32, "dirflags", i32, "*path", i32, "path_len", i32, "oflags", i32, "fs_rights_base", i64, "fs_rights_inheriting", i64, "fdflags", i32, "*fd_out", i32),
		Rights: openNeeds, Origin: "file_open", fn: wasiPathOpen,
		Changed: "requested rights beyond the access mode are clipped to the directory's inheriting rights instead of refused, as cloudlibc's openat asks; half of a split right asks for it; see docs/WASI.md",
		Note:    "fd_read and fd_write asked for must be inheritable; the new handle is a child capability of fd; a path ending in / follows a final symlink to a directory even without SYMLINK_FOLLOW, as open(2) does; DIRECTORY is ENOTDIR on anything else, whatever the rights, and with CREAT is EINVAL (open(2) since Linux 6.4)"},
	{Slot: 32, Name: "path_readlink", Params: ps("fd", i32, "*path", i32, "path_len", i32, "*buf", i32, "buf_len", i32, "*bufused_out", i32), Rights: []Need{{Rights: caps.RightFileReadlink}}, Origin: "file_readlink", fn: wasiPathReadlink,
		Note: "a target longer than buf_len is truncated, as readlink(2) does; buf_len 0 is EINVAL, as in readlink(2)"},
	{Slot: 33, Name: "path_remove_directory", Params: ps("fd", i32, "*path", i32, "path_len", i32), Rights: []Need{{Rights: caps.RightFileUnlink}}, Origin: "file_unlink", fn: wasiPathRemoveDirectory},
	{Slot: 34, Name: "path_rename", Params: ps("fd", i32, "*old_path", i32, "old_path_len", i32, "new_fd", i32, "*new_path", i32, "new_path_len", i32), Rights: []Need{{Rights: caps.RightFileRenameSource}, {Rights: caps.RightFileRenameTarget, Param: "new_fd"}}, Origin: "file_rename", fn: wasiPathRename,
		Note: "both directories must come from the same grant (else EXDEV)"},
	{Slot: 35, Name: "path_symlink", Params: ps("*old_path", i32, "old_path_len", i32, "fd", i32, "*new_path", i32, "new_path_len", i32), Rights: []Need{{Rights: caps.RightFileSymlink, Param: "fd"}}, Origin: "file_symlink", fn: wasiPathSymlink,
		Changed: "an absolute target is refused (EPERM), as wasmtime and wazero refuse it",
		Note:    "a relative target is not checked; following a link that leaves the directory fails with ENOTCAPABLE"},
	{Slot: 36, Name: "path_unlink_file", Params: ps("fd", i32, "*path", i32, "path_len", i32), Rights: []Need{{Rights: caps.RightFileUnlink}}, Origin: "file_unlink", fn: wasiPathUnlinkFile},
	{Slot: 37, Name: "poll_oneoff", Params: ps("*in", i32, "*out", i32, "nsubscriptions", i32, "*nevents_out", i32), Rights: []Need{
		{Rights: caps.RightPollFDReadwrite, When: "for fd_read events"},
		{Rights: caps.RightPollFDReadwrite, When: "for fd_write events"}}, Origin: "poll", fn: wasiPollOneoff,
		Note: "waits park a goroutine and end when the guest is killed or a polled handle is revoked; regular files are ready at once; at most 4096 subscriptions"},
	{Slot: 38, Name: "proc_exit", Params: ps("rval", i32), NoReturn: true, Origin: "proc_exit", fn: procExit},
	{Slot: 39, Name: "proc_raise", Params: ps("sig", i32), Origin: "proc_raise", fn: wasiProcRaise,
		Changed: "signals renumbered; recorded with CloudABI's number; prof, winch, poll and pwr have none and are ignored"},
	{Slot: 40, Name: "sched_yield", Origin: "thread_yield", fn: threadYield},
	{Slot: 41, Name: "random_get", Params: ps("*buf", i32, "buf_len", i32), Origin: "random_get", fn: randomGet},
	{Slot: 42, Name: "sock_accept", Params: ps("fd", i32, "flags", i32, "*fd_out", i32), Rights: []Need{{Rights: caps.RightSockAccept}}, fn: wasiSockAccept,
		Note: "the connection is a child capability of the listener's; flags may set NONBLOCK"},
	{Slot: 43, Name: "sock_recv", Params: ps("fd", i32, "*ri_data", i32, "ri_data_len", i32, "ri_flags", i32, "*ro_datalen_out", i32, "*ro_flags_out", i32), Rights: []Need{{Rights: caps.RightFDRead}}, Origin: "sock_recv", fn: wasiSockRecv,
		Changed: "no handle passing: handles sent with a message are closed on arrival"},
	{Slot: 44, Name: "sock_send", Params: ps("fd", i32, "*si_data", i32, "si_data_len", i32, "si_flags", i32, "*so_datalen_out", i32), Rights: []Need{{Rights: caps.RightFDWrite}}, Origin: "sock_send", fn: wasiSockSend,
		Changed: "no handle passing"},
	{Slot: 45, Name: "sock_shutdown", Params: ps("fd", i32, "how", i32), Rights: []Need{{Rights: caps.RightSockShutdown}}, Origin: "sock_shutdown", fn: sockShutdown,
		Note: "ENOTSOCK on a handle that is not a socket, whatever its rights"},
}
