// rights asks WASI preview1 for explicit rights sets, as Rust's standard
// library and wasi-libc do, and uses them. Its first argument names a
// case; it expects one read-write preopen at fd 3 holding a file "file"
// and prints one line per step: "<step>: ok [detail]" or
// "<step>: <errno name>".
//
//   rights created        O_CREAT with size/advise/allocate rights
//   rights times          a file opened for set_size and set_times
//   rights trunc-beneath  O_TRUNC beneath a directory opened with rights
//   rights unlink-beneath path_unlink_file beneath an opened directory
//   rights shutdown       sock_shutdown on a stream and a regular file
//   rights one RIGHT      the one WASI right numbered RIGHT, asked for
//                         alone (with path_open where its use opens
//                         beneath), then used
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wasi/api.h>

#define ROOT 3

static const char *ename(__wasi_errno_t e) {
  switch (e) {
  case __WASI_ERRNO_SUCCESS: return "ok";
  case __WASI_ERRNO_BADF: return "EBADF";
  case __WASI_ERRNO_EXIST: return "EEXIST";
  case __WASI_ERRNO_INVAL: return "EINVAL";
  case __WASI_ERRNO_ISDIR: return "EISDIR";
  case __WASI_ERRNO_NOENT: return "ENOENT";
  case __WASI_ERRNO_NOTCAPABLE: return "ENOTCAPABLE";
  case __WASI_ERRNO_NOTDIR: return "ENOTDIR";
  case __WASI_ERRNO_NOTSOCK: return "ENOTSOCK";
  case __WASI_ERRNO_NOTSUP: return "ENOTSUP";
  case __WASI_ERRNO_SPIPE: return "ESPIPE";
  }
  static char buf[32];
  snprintf(buf, sizeof buf, "errno%d", e);
  return buf;
}

static int failed;

static __wasi_errno_t report(const char *step, __wasi_errno_t e) {
  printf("%s: %s\n", step, ename(e));
  if (e != 0)
    failed = 1;
  return e;
}

static __wasi_filesize_t size_of(__wasi_fd_t fd) {
  __wasi_filestat_t st;
  if (__wasi_fd_filestat_get(fd, &st) != 0)
    return (__wasi_filesize_t)-1;
  return st.size;
}

static __wasi_fd_t open_at(__wasi_fd_t dir, const char *path, __wasi_oflags_t oflags,
                           __wasi_rights_t base, __wasi_rights_t inheriting, const char *step) {
  __wasi_fd_t fd = (__wasi_fd_t)-1;
  report(step, __wasi_path_open(dir, 0, path, oflags, base, inheriting, 0, &fd));
  return fd;
}

static __wasi_errno_t write_str(__wasi_fd_t fd, const char *s) {
  __wasi_ciovec_t iov = {(const uint8_t *)s, strlen(s)};
  __wasi_size_t n;
  return __wasi_fd_write(fd, &iov, 1, &n);
}

// The rights a file or directory can hold, as wasmtime reports for a
// read-write preopen.
#define FD_ALL                                                                      \
  (__WASI_RIGHTS_FD_DATASYNC | __WASI_RIGHTS_FD_READ | __WASI_RIGHTS_FD_SEEK |      \
   __WASI_RIGHTS_FD_FDSTAT_SET_FLAGS | __WASI_RIGHTS_FD_SYNC | __WASI_RIGHTS_FD_TELL | \
   __WASI_RIGHTS_FD_WRITE | __WASI_RIGHTS_FD_ADVISE | __WASI_RIGHTS_FD_ALLOCATE |   \
   __WASI_RIGHTS_FD_FILESTAT_GET | __WASI_RIGHTS_FD_FILESTAT_SET_SIZE |             \
   __WASI_RIGHTS_FD_FILESTAT_SET_TIMES | __WASI_RIGHTS_POLL_FD_READWRITE)
#define PATH_ALL                                                                         \
  (__WASI_RIGHTS_PATH_CREATE_DIRECTORY | __WASI_RIGHTS_PATH_CREATE_FILE |               \
   __WASI_RIGHTS_PATH_LINK_SOURCE | __WASI_RIGHTS_PATH_LINK_TARGET | __WASI_RIGHTS_PATH_OPEN | \
   __WASI_RIGHTS_FD_READDIR | __WASI_RIGHTS_PATH_READLINK | __WASI_RIGHTS_PATH_RENAME_SOURCE | \
   __WASI_RIGHTS_PATH_RENAME_TARGET | __WASI_RIGHTS_PATH_FILESTAT_GET |                  \
   __WASI_RIGHTS_PATH_FILESTAT_SET_SIZE | __WASI_RIGHTS_PATH_FILESTAT_SET_TIMES |        \
   __WASI_RIGHTS_PATH_SYMLINK | __WASI_RIGHTS_PATH_REMOVE_DIRECTORY |                    \
   __WASI_RIGHTS_PATH_UNLINK_FILE)

// created: a file created with rights to resize, advise and allocate
// grows by fd_filestat_set_size; advice leaves its size; fd_allocate
// grows it or is not supported.
static void created(void) {
  __wasi_fd_t fd = open_at(ROOT, "f", __WASI_OFLAGS_CREAT,
                           __WASI_RIGHTS_FD_READ | __WASI_RIGHTS_FD_WRITE | __WASI_RIGHTS_FD_ADVISE |
                               __WASI_RIGHTS_FD_FILESTAT_GET | __WASI_RIGHTS_FD_FILESTAT_SET_SIZE |
                               __WASI_RIGHTS_FD_ALLOCATE,
                           0, "open-creat");
  report("set-size", __wasi_fd_filestat_set_size(fd, 100));
  printf("size: %llu\n", (unsigned long long)size_of(fd));
  report("advise", __wasi_fd_advise(fd, 0, 100, __WASI_ADVICE_SEQUENTIAL));
  printf("size-after-advise: %llu\n", (unsigned long long)size_of(fd));
  __wasi_errno_t e = __wasi_fd_allocate(fd, 0, 200);
  if (e == __WASI_ERRNO_NOTSUP)
    printf("allocate: ok (not supported)\n");
  else if (e == 0)
    printf("allocate: ok (size %s)\n", size_of(fd) == 200 ? "200" : "wrong");
  else
    report("allocate", e);
}

// times: a file opened asking for set_size and set_times uses both.
static void times(void) {
  __wasi_fd_t fd = open_at(ROOT, "file", 0,
                           __WASI_RIGHTS_FD_FILESTAT_GET | __WASI_RIGHTS_FD_FILESTAT_SET_SIZE |
                               __WASI_RIGHTS_FD_FILESTAT_SET_TIMES,
                           0, "open");
  report("set-size", __wasi_fd_filestat_set_size(fd, 3));
  printf("size: %llu\n", (unsigned long long)size_of(fd));
  report("set-times", __wasi_fd_filestat_set_times(fd, 1000000000ull, 2000000000ull,
                                                   __WASI_FSTFLAGS_ATIM | __WASI_FSTFLAGS_MTIM));
  __wasi_filestat_t st;
  report("stat", __wasi_fd_filestat_get(fd, &st));
  printf("mtim: %llu\n", (unsigned long long)st.mtim);
}

// trunc-beneath: a scratch directory opened with every path right and
// the file rights to pass on; a file created in it, written, then opened
// again with O_TRUNC reads empty.
static void trunc_beneath(void) {
  report("mkdir", __wasi_path_create_directory(ROOT, "tmp"));
  __wasi_fd_t tmp = open_at(ROOT, "tmp", __WASI_OFLAGS_DIRECTORY, PATH_ALL, FD_ALL, "open-dir");
  __wasi_fd_t fd = open_at(tmp, "t", __WASI_OFLAGS_CREAT, __WASI_RIGHTS_FD_WRITE, 0, "create");
  report("write", write_str(fd, "hello"));
  report("close", __wasi_fd_close(fd));
  fd = open_at(tmp, "t", __WASI_OFLAGS_CREAT | __WASI_OFLAGS_TRUNC,
               __WASI_RIGHTS_FD_WRITE | __WASI_RIGHTS_FD_READ, 0, "open-trunc");
  char buf[16];
  __wasi_iovec_t iov = {(uint8_t *)buf, sizeof buf};
  __wasi_size_t n = 99;
  report("read", __wasi_fd_read(fd, &iov, 1, &n));
  printf("read-bytes: %u\n", (unsigned)n);
}

// unlink-beneath: a directory opened with exactly the rights to link into
// it and unlink from it; a link made in it is removed through it.
static void unlink_beneath(void) {
  const __wasi_rights_t r = __WASI_RIGHTS_FD_READ | __WASI_RIGHTS_PATH_LINK_SOURCE |
                            __WASI_RIGHTS_PATH_LINK_TARGET | __WASI_RIGHTS_FD_FILESTAT_GET |
                            __WASI_RIGHTS_PATH_OPEN | __WASI_RIGHTS_PATH_UNLINK_FILE;
  report("mkdir", __wasi_path_create_directory(ROOT, "subdir"));
  __wasi_fd_t sub = open_at(ROOT, "subdir", __WASI_OFLAGS_DIRECTORY, r, r, "open-dir");
  report("link", __wasi_path_link(ROOT, 0, "file", sub, "link"));
  __wasi_fd_t fd = open_at(sub, "link", 0, __WASI_RIGHTS_FD_READ, 0, "open-link");
  report("close-link", __wasi_fd_close(fd));
  report("unlink", __wasi_path_unlink_file(sub, "link"));
  report("close-dir", __wasi_fd_close(sub));
  report("rmdir", __wasi_path_remove_directory(ROOT, "subdir"));
}

// shutdown: sock_shutdown on what is not a socket is ENOTSOCK, whatever
// rights the handle holds.
static void not_a_socket(void) {
  printf("stdout: %s\n", ename(__wasi_sock_shutdown(1, __WASI_SDFLAGS_RD)));
  __wasi_fd_t fd = open_at(ROOT, "file", 0, __WASI_RIGHTS_FD_READ, 0, "open");
  printf("file: %s\n", ename(__wasi_sock_shutdown(fd, __WASI_SDFLAGS_WR)));
  printf("dir: %s\n", ename(__wasi_sock_shutdown(ROOT, __WASI_SDFLAGS_RD | __WASI_SDFLAGS_WR)));
}

// one asks for WASI right number r alone and uses it: on the file "file"
// for the fd_* rights, on the directory "dir" (holding a file "x", a
// symbolic link "sl" and an empty directory "empty") for the path_*
// rights. A use that opens beneath the directory (path_create_file,
// path_filestat_set_size) asks for path_open as well. It prints
// "open: …" and "use: …".
static int one(int r) {
  __wasi_rights_t right = (__wasi_rights_t)1 << r;
  int dir = (r >= 9 && r <= 20) || (r >= 24 && r <= 26);
  __wasi_rights_t ask = right;
  if (r == 10 || r == 19)
    ask |= __WASI_RIGHTS_PATH_OPEN;
  __wasi_fd_t fd = open_at(ROOT, dir ? "dir" : "file", dir ? __WASI_OFLAGS_DIRECTORY : 0, ask, 0, "open");
  __wasi_errno_t e;
  char buf[256];
  __wasi_iovec_t iov = {(uint8_t *)buf, sizeof buf};
  __wasi_size_t n;
  __wasi_filesize_t off;
  __wasi_fd_t nfd;
  __wasi_filestat_t st;
  switch (r) {
  case 0: e = __wasi_fd_datasync(fd); break;
  case 1: e = __wasi_fd_read(fd, &iov, 1, &n); break;
  case 2: e = __wasi_fd_seek(fd, 1, __WASI_WHENCE_SET, &off); break;
  case 3: e = __wasi_fd_fdstat_set_flags(fd, 0); break;
  case 4: e = __wasi_fd_sync(fd); break;
  case 5: e = __wasi_fd_tell(fd, &off); break;
  case 6: e = write_str(fd, "x"); break;
  case 7: e = __wasi_fd_advise(fd, 0, 1, __WASI_ADVICE_WILLNEED); break;
  case 8:
    e = __wasi_fd_allocate(fd, 0, 10);
    if (e == __WASI_ERRNO_NOTSUP)
      e = 0;
    break;
  case 9: e = __wasi_path_create_directory(fd, "new"); break;
  case 10: e = __wasi_path_open(fd, 0, "new", __WASI_OFLAGS_CREAT, 0, 0, 0, &nfd); break;
  case 11: e = __wasi_path_link(fd, 0, "x", ROOT, "linked"); break;
  case 12: e = __wasi_path_link(ROOT, 0, "file", fd, "linked"); break;
  case 13: e = __wasi_path_open(fd, 0, "x", 0, 0, 0, 0, &nfd); break;
  case 14: e = __wasi_fd_readdir(fd, (uint8_t *)buf, sizeof buf, 0, &n); break;
  case 15: e = __wasi_path_readlink(fd, "sl", (uint8_t *)buf, sizeof buf, &n); break;
  case 16: e = __wasi_path_rename(fd, "x", ROOT, "moved"); break;
  case 17: e = __wasi_path_rename(ROOT, "file", fd, "moved"); break;
  case 18: e = __wasi_path_filestat_get(fd, 0, "x", &st); break;
  case 19: e = __wasi_path_open(fd, 0, "x", __WASI_OFLAGS_TRUNC, 0, 0, 0, &nfd); break;
  case 20: e = __wasi_path_filestat_set_times(fd, 0, "x", 0, 0, __WASI_FSTFLAGS_MTIM_NOW); break;
  case 21: e = __wasi_fd_filestat_get(fd, &st); break;
  case 22: e = __wasi_fd_filestat_set_size(fd, 1); break;
  case 23: e = __wasi_fd_filestat_set_times(fd, 0, 0, __WASI_FSTFLAGS_ATIM_NOW); break;
  case 24: e = __wasi_path_symlink("x", fd, "sl2"); break;
  case 25: e = __wasi_path_remove_directory(fd, "empty"); break;
  case 26: e = __wasi_path_unlink_file(fd, "x"); break;
  case 27: {
    __wasi_subscription_t sub = {.userdata = 7, .u = {.tag = __WASI_EVENTTYPE_FD_READ}};
    sub.u.u.fd_read.file_descriptor = fd;
    __wasi_event_t ev;
    e = __wasi_poll_oneoff(&sub, &ev, 1, &n);
    if (e == 0 && (n != 1 || ev.userdata != 7))
      e = __WASI_ERRNO_INVAL;
    else if (e == 0)
      e = ev.error;
    break;
  }
  case 28: e = __wasi_sock_shutdown(fd, __WASI_SDFLAGS_RD); break;
  case 29: e = __wasi_sock_accept(fd, 0, &nfd); break;
  default:
    fprintf(stderr, "rights: no right %d\n", r);
    return 2;
  }
  printf("use: %s\n", ename(e));
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: rights CASE\n");
    return 2;
  }
  const char *c = argv[1];
  if (strcmp(c, "created") == 0)
    created();
  else if (strcmp(c, "times") == 0)
    times();
  else if (strcmp(c, "trunc-beneath") == 0)
    trunc_beneath();
  else if (strcmp(c, "unlink-beneath") == 0)
    unlink_beneath();
  else if (strcmp(c, "shutdown") == 0)
    not_a_socket();
  else if (strcmp(c, "one") == 0 && argc == 3)
    return one(atoi(argv[2]));
  else {
    fprintf(stderr, "rights: unknown case %s\n", c);
    return 2;
  }
  return failed;
}
