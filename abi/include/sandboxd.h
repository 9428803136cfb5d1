/* sandboxd native ABI for C guests (clang --target=wasm32 -nostdlib).
 * Generated from abi/table.go by "go generate ./abi/..."; do not edit.
 * Every call returns an errno (0 on success) and writes results through
 * trailing pointer parameters; handles are uint32_t fds. See docs/ABI.md. */
#ifndef SANDBOXD_H
#define SANDBOXD_H

#include <stdint.h>
#include <stddef.h>

#define SBX_IMPORT(name) __attribute__((import_module("sandboxd"), import_name(#name)))
#define SBX_NORETURN __attribute__((noreturn))

#ifdef __cplusplus
extern "C" {
#endif

typedef uint16_t sbx_errno_t;
typedef uint32_t sbx_fd_t;

/* Rights (CloudABI bit positions). */
#define SBX_RIGHT_FD_DATASYNC UINT64_C(0x1)
#define SBX_RIGHT_FD_READ UINT64_C(0x2)
#define SBX_RIGHT_FD_SEEK UINT64_C(0x4)
#define SBX_RIGHT_FD_STAT_PUT_FLAGS UINT64_C(0x8)
#define SBX_RIGHT_FD_SYNC UINT64_C(0x10)
#define SBX_RIGHT_FD_TELL UINT64_C(0x20)
#define SBX_RIGHT_FD_WRITE UINT64_C(0x40)
#define SBX_RIGHT_FILE_ADVISE UINT64_C(0x80)
#define SBX_RIGHT_FILE_ALLOCATE UINT64_C(0x100)
#define SBX_RIGHT_FILE_CREATE_DIRECTORY UINT64_C(0x200)
#define SBX_RIGHT_FILE_CREATE_FILE UINT64_C(0x400)
#define SBX_RIGHT_FILE_LINK_SOURCE UINT64_C(0x1000)
#define SBX_RIGHT_FILE_LINK_TARGET UINT64_C(0x2000)
#define SBX_RIGHT_FILE_OPEN UINT64_C(0x4000)
#define SBX_RIGHT_FILE_READDIR UINT64_C(0x8000)
#define SBX_RIGHT_FILE_READLINK UINT64_C(0x10000)
#define SBX_RIGHT_FILE_RENAME_SOURCE UINT64_C(0x20000)
#define SBX_RIGHT_FILE_RENAME_TARGET UINT64_C(0x40000)
#define SBX_RIGHT_FILE_STAT_FGET UINT64_C(0x80000)
#define SBX_RIGHT_FILE_STAT_FPUT_SIZE UINT64_C(0x100000)
#define SBX_RIGHT_FILE_STAT_FPUT_TIMES UINT64_C(0x200000)
#define SBX_RIGHT_FILE_STAT_GET UINT64_C(0x400000)
#define SBX_RIGHT_FILE_STAT_PUT_TIMES UINT64_C(0x800000)
#define SBX_RIGHT_FILE_SYMLINK UINT64_C(0x1000000)
#define SBX_RIGHT_FILE_UNLINK UINT64_C(0x2000000)
#define SBX_RIGHT_MEM_MAP UINT64_C(0x4000000)
#define SBX_RIGHT_MEM_MAP_EXEC UINT64_C(0x8000000)
#define SBX_RIGHT_POLL_FD_READWRITE UINT64_C(0x10000000)
#define SBX_RIGHT_POLL_PROC_TERMINATE UINT64_C(0x40000000)
#define SBX_RIGHT_PROC_EXEC UINT64_C(0x100000000)
#define SBX_RIGHT_SOCK_SHUTDOWN UINT64_C(0x8000000000)
#define SBX_RIGHT_SOCK_ACCEPT UINT64_C(0x10000000000)

/* Errors (CloudABI and WASI share this numbering). */
#define SBX_ESUCCESS 0
#define SBX_E2BIG 1
#define SBX_EACCES 2
#define SBX_EADDRINUSE 3
#define SBX_EADDRNOTAVAIL 4
#define SBX_EAFNOSUPPORT 5
#define SBX_EAGAIN 6
#define SBX_EALREADY 7
#define SBX_EBADF 8
#define SBX_EBADMSG 9
#define SBX_EBUSY 10
#define SBX_ECANCELED 11
#define SBX_ECHILD 12
#define SBX_ECONNABORTED 13
#define SBX_ECONNREFUSED 14
#define SBX_ECONNRESET 15
#define SBX_EDEADLK 16
#define SBX_EDESTADDRREQ 17
#define SBX_EDOM 18
#define SBX_EDQUOT 19
#define SBX_EEXIST 20
#define SBX_EFAULT 21
#define SBX_EFBIG 22
#define SBX_EHOSTUNREACH 23
#define SBX_EIDRM 24
#define SBX_EILSEQ 25
#define SBX_EINPROGRESS 26
#define SBX_EINTR 27
#define SBX_EINVAL 28
#define SBX_EIO 29
#define SBX_EISCONN 30
#define SBX_EISDIR 31
#define SBX_ELOOP 32
#define SBX_EMFILE 33
#define SBX_EMLINK 34
#define SBX_EMSGSIZE 35
#define SBX_EMULTIHOP 36
#define SBX_ENAMETOOLONG 37
#define SBX_ENETDOWN 38
#define SBX_ENETRESET 39
#define SBX_ENETUNREACH 40
#define SBX_ENFILE 41
#define SBX_ENOBUFS 42
#define SBX_ENODEV 43
#define SBX_ENOENT 44
#define SBX_ENOEXEC 45
#define SBX_ENOLCK 46
#define SBX_ENOLINK 47
#define SBX_ENOMEM 48
#define SBX_ENOMSG 49
#define SBX_ENOPROTOOPT 50
#define SBX_ENOSPC 51
#define SBX_ENOSYS 52
#define SBX_ENOTCONN 53
#define SBX_ENOTDIR 54
#define SBX_ENOTEMPTY 55
#define SBX_ENOTRECOVERABLE 56
#define SBX_ENOTSOCK 57
#define SBX_ENOTSUP 58
#define SBX_ENOTTY 59
#define SBX_ENXIO 60
#define SBX_EOVERFLOW 61
#define SBX_EOWNERDEAD 62
#define SBX_EPERM 63
#define SBX_EPIPE 64
#define SBX_EPROTO 65
#define SBX_EPROTONOSUPPORT 66
#define SBX_EPROTOTYPE 67
#define SBX_ERANGE 68
#define SBX_EROFS 69
#define SBX_ESPIPE 70
#define SBX_ESRCH 71
#define SBX_ESTALE 72
#define SBX_ETIMEDOUT 73
#define SBX_ETXTBSY 74
#define SBX_EXDEV 75
#define SBX_ENOTCAPABLE 76

/* Signals (proc_raise, proc_terminate; CloudABI numbering). */
#define SBX_SIGABRT 1
#define SBX_SIGALRM 2
#define SBX_SIGBUS 3
#define SBX_SIGCHLD 4
#define SBX_SIGCONT 5
#define SBX_SIGFPE 6
#define SBX_SIGHUP 7
#define SBX_SIGILL 8
#define SBX_SIGINT 9
#define SBX_SIGKILL 10
#define SBX_SIGPIPE 11
#define SBX_SIGQUIT 12
#define SBX_SIGSEGV 13
#define SBX_SIGSTOP 14
#define SBX_SIGSYS 15
#define SBX_SIGTERM 16
#define SBX_SIGTRAP 17
#define SBX_SIGTSTP 18
#define SBX_SIGTTIN 19
#define SBX_SIGTTOU 20
#define SBX_SIGURG 21
#define SBX_SIGUSR1 22
#define SBX_SIGUSR2 23
#define SBX_SIGVTALRM 24
#define SBX_SIGXCPU 25
#define SBX_SIGXFSZ 26

/* File types (CloudABI numbering). */
#define SBX_FILETYPE_UNKNOWN 0x00
#define SBX_FILETYPE_BLOCK_DEVICE 0x10
#define SBX_FILETYPE_CHARACTER_DEVICE 0x11
#define SBX_FILETYPE_DIRECTORY 0x20
#define SBX_FILETYPE_PROCESS 0x50
#define SBX_FILETYPE_REGULAR_FILE 0x60
#define SBX_FILETYPE_SHARED_MEMORY 0x70
#define SBX_FILETYPE_SOCKET_DGRAM 0x80
#define SBX_FILETYPE_SOCKET_STREAM 0x82
#define SBX_FILETYPE_SYMBOLIC_LINK 0x90

/* Clocks. */
#define SBX_CLOCK_MONOTONIC 1
#define SBX_CLOCK_PROCESS_CPUTIME_ID 2
#define SBX_CLOCK_REALTIME 3
#define SBX_CLOCK_THREAD_CPUTIME_ID 4

/* file_open oflags, lookup flags, fd flags, fd_stat_put flags. */
#define SBX_O_CREAT 0x1
#define SBX_O_DIRECTORY 0x2
#define SBX_O_EXCL 0x4
#define SBX_O_TRUNC 0x8
#define SBX_LOOKUP_SYMLINK_FOLLOW 0x1
#define SBX_FDFLAG_APPEND 0x01
#define SBX_FDFLAG_DSYNC 0x02
#define SBX_FDFLAG_NONBLOCK 0x04
#define SBX_FDFLAG_RSYNC 0x08
#define SBX_FDFLAG_SYNC 0x10
#define SBX_FDSTAT_FLAGS 0x1
#define SBX_FDSTAT_RIGHTS 0x2

/* fd_seek whence. */
#define SBX_WHENCE_CUR 1
#define SBX_WHENCE_END 2
#define SBX_WHENCE_SET 3

/* file_stat_fput / file_stat_put flags; file_unlink flags. */
#define SBX_FILESTAT_ATIM 0x01
#define SBX_FILESTAT_ATIM_NOW 0x02
#define SBX_FILESTAT_MTIM 0x04
#define SBX_FILESTAT_MTIM_NOW 0x08
#define SBX_FILESTAT_SIZE 0x10
#define SBX_UNLINK_REMOVEDIR 0x01

/* poll. */
#define SBX_EVENTTYPE_CLOCK 1
#define SBX_EVENTTYPE_CONDVAR 2
#define SBX_EVENTTYPE_FD_READ 3
#define SBX_EVENTTYPE_FD_WRITE 4
#define SBX_EVENTTYPE_LOCK_RDLOCK 5
#define SBX_EVENTTYPE_LOCK_WRLOCK 6
#define SBX_EVENTTYPE_PROC_TERMINATE 7
#define SBX_SUBSCRIPTION_CLOCK_ABSTIME 0x1
#define SBX_EVENT_FD_READWRITE_HANGUP 0x1

/* sock_recv / sock_send flags, sock_shutdown how. */
#define SBX_SOCK_RECV_PEEK 0x04
#define SBX_SOCK_RECV_WAITALL 0x10
#define SBX_SOCK_RECV_FDS_TRUNCATED 0x01
#define SBX_SOCK_RECV_DATA_TRUNCATED 0x08
#define SBX_SHUT_RD 0x1
#define SBX_SHUT_WR 0x2

typedef struct { void *buf; size_t buf_len; } sbx_iovec_t;
typedef struct { const void *buf; size_t buf_len; } sbx_ciovec_t;

typedef struct {           /* 24 bytes */
  uint8_t fs_filetype;     /* @0 */
  uint16_t fs_flags;       /* @2 */
  uint64_t fs_rights_base; /* @8 */
  uint64_t fs_rights_inheriting; /* @16 */
} sbx_fdstat_t;

typedef struct {           /* 56 bytes */
  uint64_t st_dev;         /* @0 */
  uint64_t st_ino;         /* @8 */
  uint8_t st_filetype;     /* @16 */
  uint32_t st_nlink;       /* @20 */
  uint64_t st_size;        /* @24 */
  uint64_t st_atim;        /* @32 */
  uint64_t st_mtim;        /* @40 */
  uint64_t st_ctim;        /* @48 */
} sbx_filestat_t;

typedef struct {           /* 24 bytes, followed by d_namlen bytes of name */
  uint64_t d_next;
  uint64_t d_ino;
  uint32_t d_namlen;
  uint8_t d_type;
} sbx_dirent_t;

typedef struct {           /* 56 bytes */
  uint64_t userdata;       /* @0 */
  uint16_t unused;         /* @8 */
  uint8_t type;            /* @10 */
  union {                  /* @16 */
    struct { uint64_t identifier; uint32_t clock_id; uint64_t timeout; uint64_t precision; uint16_t flags; } clock;
    struct { uint32_t fd; uint16_t flags; } fd_readwrite;
    struct { uint32_t fd; } proc_terminate;
  } u;
} sbx_subscription_t;

typedef struct {           /* 32 bytes */
  uint64_t userdata;       /* @0 */
  uint16_t error;          /* @8 */
  uint8_t type;            /* @10 */
  union {                  /* @16 */
    struct { uint64_t nbytes; uint32_t unused; uint16_t flags; } fd_readwrite;
    struct { uint8_t unused[4]; uint8_t signal; uint32_t exitcode; } proc_terminate;
  } u;
} sbx_event_t;

typedef struct {           /* 20 bytes */
  const sbx_iovec_t *ri_data; size_t ri_data_len;
  sbx_fd_t *ri_fds; size_t ri_fds_len;
  uint16_t ri_flags;
} sbx_recv_in_t;

typedef struct {           /* 52 bytes */
  size_t ro_datalen; size_t ro_fdslen;
  uint8_t ro_unused[40];
  uint16_t ro_flags;
} sbx_recv_out_t;

typedef struct {           /* 20 bytes */
  const sbx_ciovec_t *si_data; size_t si_data_len;
  const sbx_fd_t *si_fds; size_t si_fds_len;
  uint16_t si_flags;
} sbx_send_in_t;

typedef struct { size_t so_datalen; } sbx_send_out_t;

/* The 49 calls, in CloudABI slot order. */
SBX_IMPORT(clock_res_get) sbx_errno_t sbx_clock_res_get(uint32_t clock_id, void *resolution_out);
SBX_IMPORT(clock_time_get) sbx_errno_t sbx_clock_time_get(uint32_t clock_id, uint64_t precision, void *time_out);
SBX_IMPORT(condvar_signal) sbx_errno_t sbx_condvar_signal(void *condvar, uint32_t scope, uint32_t nwaiters);
SBX_IMPORT(fd_close) sbx_errno_t sbx_fd_close(uint32_t fd);
SBX_IMPORT(fd_create1) sbx_errno_t sbx_fd_create1(uint32_t type, void *fd_out);
SBX_IMPORT(fd_create2) sbx_errno_t sbx_fd_create2(uint32_t type, void *fd1_out, void *fd2_out);
SBX_IMPORT(fd_datasync) sbx_errno_t sbx_fd_datasync(uint32_t fd);
SBX_IMPORT(fd_dup) sbx_errno_t sbx_fd_dup(uint32_t from, void *fd_out);
SBX_IMPORT(fd_pread) sbx_errno_t sbx_fd_pread(uint32_t fd, void *iovs, uint32_t iovs_len, uint64_t offset, void *nread_out);
SBX_IMPORT(fd_pwrite) sbx_errno_t sbx_fd_pwrite(uint32_t fd, void *iovs, uint32_t iovs_len, uint64_t offset, void *nwritten_out);
SBX_IMPORT(fd_read) sbx_errno_t sbx_fd_read(uint32_t fd, void *iovs, uint32_t iovs_len, void *nread_out);
SBX_IMPORT(fd_replace) sbx_errno_t sbx_fd_replace(uint32_t from, uint32_t to);
SBX_IMPORT(fd_seek) sbx_errno_t sbx_fd_seek(uint32_t fd, uint64_t offset, uint32_t whence, void *newoffset_out);
SBX_IMPORT(fd_stat_get) sbx_errno_t sbx_fd_stat_get(uint32_t fd, void *fdstat_out);
SBX_IMPORT(fd_stat_put) sbx_errno_t sbx_fd_stat_put(uint32_t fd, void *fdstat, uint32_t flags);
SBX_IMPORT(fd_sync) sbx_errno_t sbx_fd_sync(uint32_t fd);
SBX_IMPORT(fd_write) sbx_errno_t sbx_fd_write(uint32_t fd, void *iovs, uint32_t iovs_len, void *nwritten_out);
SBX_IMPORT(file_advise) sbx_errno_t sbx_file_advise(uint32_t fd, uint64_t offset, uint64_t len, uint32_t advice);
SBX_IMPORT(file_allocate) sbx_errno_t sbx_file_allocate(uint32_t fd, uint64_t offset, uint64_t len);
SBX_IMPORT(file_create) sbx_errno_t sbx_file_create(uint32_t fd, void *path, uint32_t path_len, uint32_t type);
SBX_IMPORT(file_link) sbx_errno_t sbx_file_link(uint32_t fd1, uint32_t lookup_flags, void *path1, uint32_t path1_len, uint32_t fd2, void *path2, uint32_t path2_len);
SBX_IMPORT(file_open) sbx_errno_t sbx_file_open(uint32_t dirfd, uint32_t lookup_flags, void *path, uint32_t path_len, uint32_t oflags, void *fdstat, void *fd_out);
SBX_IMPORT(file_readdir) sbx_errno_t sbx_file_readdir(uint32_t fd, void *buf, uint32_t buf_len, uint64_t cookie, void *bufused_out);
SBX_IMPORT(file_readlink) sbx_errno_t sbx_file_readlink(uint32_t fd, void *path, uint32_t path_len, void *buf, uint32_t buf_len, void *bufused_out);
SBX_IMPORT(file_rename) sbx_errno_t sbx_file_rename(uint32_t fd1, void *path1, uint32_t path1_len, uint32_t fd2, void *path2, uint32_t path2_len);
SBX_IMPORT(file_stat_fget) sbx_errno_t sbx_file_stat_fget(uint32_t fd, void *filestat_out);
SBX_IMPORT(file_stat_fput) sbx_errno_t sbx_file_stat_fput(uint32_t fd, void *filestat, uint32_t flags);
SBX_IMPORT(file_stat_get) sbx_errno_t sbx_file_stat_get(uint32_t fd, uint32_t lookup_flags, void *path, uint32_t path_len, void *filestat_out);
SBX_IMPORT(file_stat_put) sbx_errno_t sbx_file_stat_put(uint32_t fd, uint32_t lookup_flags, void *path, uint32_t path_len, void *filestat, uint32_t flags);
SBX_IMPORT(file_symlink) sbx_errno_t sbx_file_symlink(void *path1, uint32_t path1_len, uint32_t fd, void *path2, uint32_t path2_len);
SBX_IMPORT(file_unlink) sbx_errno_t sbx_file_unlink(uint32_t fd, void *path, uint32_t path_len, uint32_t flags);
SBX_IMPORT(lock_unlock) sbx_errno_t sbx_lock_unlock(void *lock, uint32_t scope);
SBX_IMPORT(sock_accept) sbx_errno_t sbx_sock_accept(uint32_t fd, void *fd_out);
SBX_IMPORT(argdata_get) sbx_errno_t sbx_argdata_get(void *buf, uint32_t buf_len, void *size_out);
SBX_IMPORT(cap_revoke) sbx_errno_t sbx_cap_revoke(uint32_t revoker);
SBX_IMPORT(fd_describe) sbx_errno_t sbx_fd_describe(uint32_t fd, void *buf, uint32_t buf_len, void *size_out);
SBX_IMPORT(cap_revocable) sbx_errno_t sbx_cap_revocable(uint32_t fd, void *forwarder_out, void *revoker_out);
SBX_IMPORT(poll) sbx_errno_t sbx_poll(void *in, void *out, uint32_t nsubscriptions, void *nevents_out);
SBX_IMPORT(proc_exec) sbx_errno_t sbx_proc_exec(uint32_t fd, void *data, uint32_t data_len, void *fds, uint32_t fds_len);
SBX_IMPORT(proc_exit) SBX_NORETURN void sbx_proc_exit(uint32_t rval);
SBX_IMPORT(proc_spawn) sbx_errno_t sbx_proc_spawn(uint32_t fd, void *data, uint32_t data_len, void *fds, uint32_t fds_len, void *proc_out);
SBX_IMPORT(proc_raise) sbx_errno_t sbx_proc_raise(uint32_t sig);
SBX_IMPORT(random_get) sbx_errno_t sbx_random_get(void *buf, uint32_t buf_len);
SBX_IMPORT(sock_recv) sbx_errno_t sbx_sock_recv(uint32_t sock, void *recv_in, void *recv_out);
SBX_IMPORT(sock_send) sbx_errno_t sbx_sock_send(uint32_t sock, void *send_in, void *send_out);
SBX_IMPORT(sock_shutdown) sbx_errno_t sbx_sock_shutdown(uint32_t sock, uint32_t how);
SBX_IMPORT(thread_create) sbx_errno_t sbx_thread_create(void *attr, void *tid_out);
SBX_IMPORT(thread_exit) sbx_errno_t sbx_thread_exit(void *lock, uint32_t scope);
SBX_IMPORT(thread_yield) sbx_errno_t sbx_thread_yield(void);

#ifdef __cplusplus
}
#endif

#endif /* SANDBOXD_H */
