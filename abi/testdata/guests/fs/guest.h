/* Shared by the fs test guests (freestanding C against sandboxd.h, no
 * libc). A guest reports a failed expectation on stdout with its line,
 * what it called, and the value it got and wanted, then exits 1; a guest
 * that meets every expectation exits 0. The Go test prints the report. */
#ifndef FS_GUEST_H
#define FS_GUEST_H

#include <sandboxd.h>

/* clang lowers struct copies and zeroing loops to these calls. */
__attribute__((no_builtin("memcpy"))) void *memcpy(void *d, const void *s, size_t n) {
  char *dd = d;
  const char *ss = s;
  while (n--) *dd++ = *ss++;
  return d;
}
__attribute__((no_builtin("memset"))) void *memset(void *d, int c, size_t n) {
  char *dd = d;
  while (n--) *dd++ = (char)c;
  return d;
}

static int mem_eq(const void *a, const void *b, size_t n) {
  const unsigned char *x = a, *y = b;
  for (size_t i = 0; i < n; i++)
    if (x[i] != y[i]) return 0;
  return 1;
}

static size_t str_len(const char *s) {
  size_t n = 0;
  while (s[n]) n++;
  return n;
}

/* A pointer no guest memory reaches (memory would have to be 4 GiB). */
#define BAD ((void *)0xfffffff0u)

/* (pointer, length) of a string literal, for path arguments. */
#define P(lit) (void *)(lit), (uint32_t)(sizeof(lit) - 1)

static void out(const char *s, size_t n) {
  sbx_ciovec_t iov = {s, n};
  size_t done;
  sbx_fd_write(1, &iov, 1, &done);
}

static void out_str(const char *s) { out(s, str_len(s)); }

static void out_num(uint64_t v) {
  char b[24];
  int i = sizeof b;
  do {
    b[--i] = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  out(b + i, sizeof b - i);
}

static _Noreturn void fail(int line, const char *what, uint64_t got, uint64_t want) {
  out_str("FAIL line ");
  out_num((uint64_t)line);
  out_str(": ");
  out_str(what);
  out_str(": got ");
  out_num(got);
  out_str(", want ");
  out_num(want);
  out_str("\n");
  sbx_proc_exit(1);
}

/* EXPECT(call, errno): the call returns exactly that errno. */
#define EXPECT(call, want)                                   \
  do {                                                       \
    sbx_errno_t e_ = (call);                                 \
    if (e_ != (want)) fail(__LINE__, #call, e_, (want));     \
  } while (0)
#define OK(call) EXPECT(call, SBX_ESUCCESS)
/* EQ(a, b): two integers are equal. */
#define EQ(a, b)                                                              \
  do {                                                                        \
    uint64_t a_ = (uint64_t)(a), b_ = (uint64_t)(b);                          \
    if (a_ != b_) fail(__LINE__, #a " == " #b, a_, b_);                       \
  } while (0)
#define CHECK(cond)                                \
  do {                                             \
    if (!(cond)) fail(__LINE__, #cond, 0, 1);      \
  } while (0)

/* Rights a regular file opened for reading or for reading and writing
 * asks for. */
#define R_READ (SBX_RIGHT_FD_READ | SBX_RIGHT_FD_SEEK | SBX_RIGHT_FD_TELL | SBX_RIGHT_FILE_STAT_FGET)
#define R_WRITE (SBX_RIGHT_FD_WRITE | SBX_RIGHT_FD_DATASYNC | SBX_RIGHT_FD_SYNC | SBX_RIGHT_FILE_ALLOCATE | \
                 SBX_RIGHT_FILE_STAT_FPUT_SIZE | SBX_RIGHT_FILE_STAT_FPUT_TIMES | SBX_RIGHT_FILE_ADVISE | \
                 SBX_RIGHT_FD_STAT_PUT_FLAGS)
/* What a directory opened beneath another asks for: directory rights on
 * itself, file rights for what it opens. */
#define R_DIR (SBX_RIGHT_FILE_OPEN | SBX_RIGHT_FILE_READDIR | SBX_RIGHT_FILE_STAT_GET | SBX_RIGHT_FILE_STAT_FGET | \
               SBX_RIGHT_FILE_READLINK)

/* open_at opens path beneath dir with the given rights, following
 * symbolic links, and returns the errno; the fd goes to *fd. */
static sbx_errno_t open_at(sbx_fd_t dir, const char *path, uint32_t len, uint32_t oflags, uint64_t base,
                           uint64_t inheriting, uint16_t fdflags, sbx_fd_t *fd) {
  sbx_fdstat_t fs = {0};
  fs.fs_rights_base = base;
  fs.fs_rights_inheriting = inheriting;
  fs.fs_flags = fdflags;
  return sbx_file_open(dir, SBX_LOOKUP_SYMLINK_FOLLOW, (void *)path, len, oflags, &fs, fd);
}

static size_t write_str(sbx_fd_t fd, const char *s) {
  sbx_ciovec_t iov = {s, str_len(s)};
  size_t n = 0;
  OK(sbx_fd_write(fd, &iov, 1, &n));
  return n;
}

static size_t read_buf(sbx_fd_t fd, char *buf, size_t len) {
  sbx_iovec_t iov = {buf, len};
  size_t n = 0;
  OK(sbx_fd_read(fd, &iov, 1, &n));
  return n;
}

static sbx_fdstat_t fdstat_of(sbx_fd_t fd) {
  sbx_fdstat_t fs;
  OK(sbx_fd_stat_get(fd, &fs));
  return fs;
}

static sbx_errno_t set_rights(sbx_fd_t fd, uint64_t base, uint64_t inheriting) {
  sbx_fdstat_t fs = {0};
  fs.fs_rights_base = base;
  fs.fs_rights_inheriting = inheriting;
  return sbx_fd_stat_put(fd, &fs, SBX_FDSTAT_RIGHTS);
}

static sbx_errno_t set_flags(sbx_fd_t fd, uint16_t flags) {
  sbx_fdstat_t fs = {0};
  fs.fs_flags = flags;
  return sbx_fd_stat_put(fd, &fs, SBX_FDSTAT_FLAGS);
}

#endif
