/* Compiles only if the header's structures have CloudABI's wasm32 layouts
 * (CLOUDABI.md §3.3, §3.5); the guest then just exits 0. */
#include "sandboxd.h"

#define OFF(t, f) __builtin_offsetof(t, f)

_Static_assert(sizeof(sbx_iovec_t) == 8, "iovec");
_Static_assert(sizeof(sbx_ciovec_t) == 8, "ciovec");
_Static_assert(sizeof(sbx_fdstat_t) == 24, "fdstat");
_Static_assert(OFF(sbx_fdstat_t, fs_flags) == 2, "fdstat.fs_flags");
_Static_assert(OFF(sbx_fdstat_t, fs_rights_base) == 8, "fdstat.fs_rights_base");
_Static_assert(OFF(sbx_fdstat_t, fs_rights_inheriting) == 16, "fdstat.fs_rights_inheriting");
_Static_assert(sizeof(sbx_filestat_t) == 56, "filestat");
_Static_assert(OFF(sbx_filestat_t, st_filetype) == 16, "filestat.st_filetype");
_Static_assert(OFF(sbx_filestat_t, st_nlink) == 20, "filestat.st_nlink");
_Static_assert(OFF(sbx_filestat_t, st_size) == 24, "filestat.st_size");
_Static_assert(OFF(sbx_filestat_t, st_ctim) == 48, "filestat.st_ctim");
_Static_assert(sizeof(sbx_dirent_t) == 24, "dirent");
_Static_assert(OFF(sbx_dirent_t, d_namlen) == 16, "dirent.d_namlen");
_Static_assert(OFF(sbx_dirent_t, d_type) == 20, "dirent.d_type");
_Static_assert(sizeof(sbx_subscription_t) == 56, "subscription");
_Static_assert(OFF(sbx_subscription_t, type) == 10, "subscription.type");
_Static_assert(OFF(sbx_subscription_t, u.clock.identifier) == 16, "clock.identifier");
_Static_assert(OFF(sbx_subscription_t, u.clock.clock_id) == 24, "clock.clock_id");
_Static_assert(OFF(sbx_subscription_t, u.clock.timeout) == 32, "clock.timeout");
_Static_assert(OFF(sbx_subscription_t, u.clock.precision) == 40, "clock.precision");
_Static_assert(OFF(sbx_subscription_t, u.clock.flags) == 48, "clock.flags");
_Static_assert(OFF(sbx_subscription_t, u.fd_readwrite.flags) == 20, "fd_readwrite.flags");
_Static_assert(sizeof(sbx_event_t) == 32, "event");
_Static_assert(OFF(sbx_event_t, error) == 8, "event.error");
_Static_assert(OFF(sbx_event_t, type) == 10, "event.type");
_Static_assert(OFF(sbx_event_t, u.fd_readwrite.nbytes) == 16, "event.nbytes");
_Static_assert(OFF(sbx_event_t, u.fd_readwrite.flags) == 28, "event.flags");
_Static_assert(OFF(sbx_event_t, u.proc_terminate.signal) == 20, "event.signal");
_Static_assert(OFF(sbx_event_t, u.proc_terminate.exitcode) == 24, "event.exitcode");
_Static_assert(sizeof(sbx_recv_in_t) == 20, "recv_in");
_Static_assert(OFF(sbx_recv_in_t, ri_flags) == 16, "recv_in.ri_flags");
_Static_assert(sizeof(sbx_recv_out_t) == 52, "recv_out");
_Static_assert(OFF(sbx_recv_out_t, ro_flags) == 48, "recv_out.ro_flags");
_Static_assert(sizeof(sbx_send_in_t) == 20, "send_in");
_Static_assert(OFF(sbx_send_in_t, si_flags) == 16, "send_in.si_flags");
_Static_assert(sizeof(sbx_send_out_t) == 4, "send_out");

void _start(void) { sbx_proc_exit(0); }
