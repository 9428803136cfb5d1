// edges calls WASI preview1 path functions directly (not through
// wasi-libc's POSIX layer, which would rewrite their flags) on edge cases
// where an implementation can differ from what POSIX programs expect, and
// prints one line per case: "<case>: <WASI errno>", 0 on success.
//
// It expects one preopen, /d, holding the regular file "f", the directory
// "sub" and the symbolic link "lsub" -> "sub". argv[1] picks the cases.
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define WASI(name) \
  __attribute__((import_module("wasi_snapshot_preview1"), import_name(#name)))

WASI(path_open) int path_open(int fd, int dirflags, const char *path,
                              int path_len, int oflags, uint64_t base,
                              uint64_t inheriting, int fdflags, int *fd_out);
WASI(path_filestat_set_times) int path_filestat_set_times(
    int fd, int flags, const char *path, int path_len, uint64_t atim,
    uint64_t mtim, int fst_flags);
WASI(path_filestat_get) int path_filestat_get(int fd, int flags,
                                              const char *path, int path_len,
                                              void *buf);
WASI(path_readlink) int path_readlink(int fd, const char *path, int path_len,
                                      char *buf, int buf_len,
                                      uint32_t *bufused_out);
WASI(path_symlink) int path_symlink(const char *old_path, int old_path_len,
                                    int fd, const char *new_path,
                                    int new_path_len);
WASI(fd_close) int fd_close(int fd);
WASI(fd_prestat_get) int fd_prestat_get(int fd, void *buf);
WASI(fd_prestat_dir_name) int fd_prestat_dir_name(int fd, char *buf, int len);

enum {
  FOLLOW = 1,
  O_CREAT_ = 1, O_DIRECTORY_ = 2, O_EXCL_ = 4, O_TRUNC_ = 8,
  FST_ATIM = 1, FST_MTIM = 4,
};
#define RIGHT_FD_READ (1ull << 1)
#define RIGHT_FD_WRITE (1ull << 6)

static int dir = -1;

// find returns the fd of the preopen named /d.
static int find(void) {
  for (int fd = 3; fd < 64; fd++) {
    unsigned char st[8];
    char name[8] = {0};
    if (fd_prestat_get(fd, st) != 0)
      return -1;
    if (st[0] == 0 && fd_prestat_dir_name(fd, name, 2) == 0 &&
        memcmp(name, "/d", 2) == 0)
      return fd;
  }
  return -1;
}

// open_ reports path_open's errno, closing what it opened.
static void open_(const char *c, const char *path, int dirflags, int oflags,
                  uint64_t base) {
  int fd = -1;
  int e = path_open(dir, dirflags, path, strlen(path), oflags, base, 0, 0, &fd);
  if (e == 0)
    fd_close(fd);
  printf("%s: %d\n", c, e);
}

// A trailing slash makes the last component resolve as a directory: a
// symbolic link there is followed, with or without SYMLINK_FOLLOW, as
// POSIX path resolution says and as open(2) and utimensat(2) do.
static void slash(void) {
  unsigned char st[64];
  open_("open lsub/", "lsub/", 0, 0, RIGHT_FD_READ);
  open_("open lsub/ O_DIRECTORY", "lsub/", 0, O_DIRECTORY_, RIGHT_FD_READ);
  open_("open lsub/ follow", "lsub/", FOLLOW, 0, RIGHT_FD_READ);
  open_("open lsub", "lsub", 0, 0, RIGHT_FD_READ);
  open_("open f/", "f/", 0, 0, RIGHT_FD_READ);
  printf("set times lsub/: %d\n",
         path_filestat_set_times(dir, 0, "lsub/", 5, 7, 7, FST_ATIM | FST_MTIM));
  printf("stat sub: %d\n", path_filestat_get(dir, 0, "sub", 3, st));
  uint64_t mtim;
  memcpy(&mtim, st + 48, 8);
  printf("sub mtim: %llu\n", (unsigned long long)mtim);
  printf("set times f/: %d\n",
         path_filestat_set_times(dir, 0, "f/", 2, 7, 7, FST_ATIM | FST_MTIM));
}

// O_DIRECTORY only asks that the object be a directory: with a regular
// file it is ENOTDIR whatever else was asked for, and a directory opened
// to write or truncate is EISDIR, as open(2) says. O_CREAT with
// O_DIRECTORY makes nothing and is EINVAL (open(2) since Linux 6.4, Node's
// and wazero's WASI).
static void odir(void) {
  uint64_t rw = RIGHT_FD_READ | RIGHT_FD_WRITE;
  unsigned char st[64];
  open_("f O_DIRECTORY", "f", 0, O_DIRECTORY_, RIGHT_FD_READ);
  open_("f O_DIRECTORY write", "f", 0, O_DIRECTORY_, rw);
  open_("f O_DIRECTORY|O_TRUNC", "f", 0, O_DIRECTORY_ | O_TRUNC_, rw);
  open_("sub O_DIRECTORY", "sub", 0, O_DIRECTORY_, RIGHT_FD_READ);
  open_("sub O_DIRECTORY write", "sub", 0, O_DIRECTORY_, rw);
  open_("sub O_DIRECTORY|O_TRUNC", "sub", 0, O_DIRECTORY_ | O_TRUNC_, rw);
  open_("new O_DIRECTORY|O_CREAT", "new", 0, O_DIRECTORY_ | O_CREAT_, rw);
  open_("new O_DIRECTORY|O_CREAT|O_EXCL", "new", 0,
        O_DIRECTORY_ | O_CREAT_ | O_EXCL_, RIGHT_FD_READ);
  open_("sub O_DIRECTORY|O_CREAT", "sub", 0, O_DIRECTORY_ | O_CREAT_,
        RIGHT_FD_READ);
  open_("f O_DIRECTORY|O_CREAT", "f", 0, O_DIRECTORY_ | O_CREAT_, rw);
  printf("new made: %d\n", path_filestat_get(dir, 0, "new", 3, st));
  printf("stat f: %d\n", path_filestat_get(dir, 0, "f", 1, st));
  uint64_t size;
  memcpy(&size, st + 32, 8);
  printf("f size: %llu\n", (unsigned long long)size);
}

// readlink(2) refuses a buffer of size 0 with EINVAL (Linux; Node's and
// wazero's WASI refuse it too), which wasi-libc passes on: answering 0
// bytes would tell a program the link is empty. A short buffer still
// truncates, as readlink(2) does.
static void readlink_(void) {
  char buf[16];
  uint32_t used = 99;
  int e = path_readlink(dir, "lsub", 4, buf, 0, &used);
  printf("readlink 0: %d\n", e);
  used = 99;
  e = path_readlink(dir, "lsub", 4, buf, 2, &used);
  printf("readlink 2: %d %u %.2s\n", e, used, buf);
  used = 99;
  e = path_readlink(dir, "lsub", 4, buf, sizeof buf, &used);
  printf("readlink 16: %d %u %.*s\n", e, used, (int)(used < 16 ? used : 0), buf);
  printf("readlink f: %d\n", path_readlink(dir, "f", 1, buf, sizeof buf, &used));
}

// A chain of links l1 -> f, l2 -> l1, ... resolves through 8 links and
// is ELOOP from the 9th (docs/WASI.md, Limits), in path_open and
// path_filestat_get alike.
static void chain(void) {
  unsigned char st[64];
  char prev[8] = "f", name[8];
  for (int i = 1; i <= 9; i++) {
    snprintf(name, sizeof name, "l%d", i);
    int e = path_symlink(prev, strlen(prev), dir, name, strlen(name));
    if (e != 0) {
      printf("symlink %s: %d\n", name, e);
      return;
    }
    strcpy(prev, name);
  }
  open_("open l8", "l8", FOLLOW, 0, RIGHT_FD_READ);
  open_("open l9", "l9", FOLLOW, 0, RIGHT_FD_READ);
  printf("stat l8: %d\n", path_filestat_get(dir, FOLLOW, "l8", 2, st));
  printf("stat l9: %d\n", path_filestat_get(dir, FOLLOW, "l9", 2, st));
}

// An fd_out outside memory fails the call with EFAULT before anything is
// opened: neither the file "new" is created nor "f" truncated.
static void badout(void) {
  int *out = (int *)(__builtin_wasm_memory_size(0) * 65536 - 2);
  printf("open new creat: %d\n",
         path_open(dir, 0, "new", 3, O_CREAT_, RIGHT_FD_READ | RIGHT_FD_WRITE, 0, 0, out));
  printf("open f trunc: %d\n",
         path_open(dir, 0, "f", 1, O_TRUNC_, RIGHT_FD_READ | RIGHT_FD_WRITE, 0, 0, out));
  open_("open new", "new", 0, 0, RIGHT_FD_READ);
}

int main(int argc, char **argv) {
  dir = find();
  if (dir < 0 || argc < 2) {
    printf("no preopen /d or no case\n");
    return 1;
  }
  if (strcmp(argv[1], "slash") == 0)
    slash();
  else if (strcmp(argv[1], "odir") == 0)
    odir();
  else if (strcmp(argv[1], "readlink") == 0)
    readlink_();
  else if (strcmp(argv[1], "chain") == 0)
    chain();
  else if (strcmp(argv[1], "badout") == 0)
    badout();
  return 0;
}
