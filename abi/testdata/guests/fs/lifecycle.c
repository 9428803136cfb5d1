/* fd 3: a read-write grant of an empty directory. The whole life of a
 * file: create, write, pread/pwrite, seek/tell, stat, allocate, truncate,
 * times, rename, link, symlink/readlink, readdir with cookies, unlink and
 * rmdir. The Go test checks the host directory afterwards. */
#include "guest.h"

static uint64_t seek(sbx_fd_t fd, int64_t off, uint32_t whence) {
  uint64_t pos = 0;
  OK(sbx_fd_seek(fd, (uint64_t)off, whence, &pos));
  return pos;
}

static sbx_filestat_t fstat_(sbx_fd_t fd) {
  sbx_filestat_t st;
  OK(sbx_file_stat_fget(fd, &st));
  return st;
}

/* One dirent as the guest sees it. */
struct ent {
  uint64_t next, ino;
  uint8_t type;
  char name[32];
  uint32_t namlen;
};

/* list reads the whole directory with a buffer of buf_len bytes,
 * resuming from the cookie of the last complete entry whenever an entry
 * is cut off, and returns how many entries it saw. */
static int list(sbx_fd_t dir, size_t buf_len, struct ent *ents, int max) {
  char buf[512];
  uint64_t cookie = 0;
  int count = 0;
  CHECK(buf_len <= sizeof buf);
  for (int rounds = 0; rounds < 1000; rounds++) {
    size_t used;
    OK(sbx_file_readdir(dir, buf, buf_len, cookie, &used));
    size_t off = 0;
    while (off + sizeof(sbx_dirent_t) <= used) {
      sbx_dirent_t d;
      memcpy(&d, buf + off, sizeof d);
      if (off + sizeof d + d.d_namlen > used) break; /* name cut off */
      CHECK(count < max && d.d_namlen < sizeof ents[0].name);
      ents[count].next = d.d_next;
      ents[count].ino = d.d_ino;
      ents[count].type = d.d_type;
      ents[count].namlen = d.d_namlen;
      memcpy(ents[count].name, buf + off + sizeof d, d.d_namlen);
      ents[count].name[d.d_namlen] = 0;
      count++;
      cookie = d.d_next;
      off += sizeof d + d.d_namlen;
    }
    if (used < buf_len) return count;
  }
  fail(__LINE__, "readdir did not end", 0, 0);
}

static int name_is(struct ent *e, const char *s) { return e->namlen == str_len(s) && mem_eq(e->name, s, e->namlen); }

void _start(void) {
  sbx_fd_t f, x;
  size_t n;
  char buf[64];

  /* Create and write. */
  OK(open_at(3, P("a.txt"), SBX_O_CREAT | SBX_O_EXCL, R_READ | R_WRITE, 0, 0, &f));
  EXPECT(open_at(3, P("a.txt"), SBX_O_CREAT | SBX_O_EXCL, R_READ, 0, 0, &x), SBX_EEXIST);
  sbx_fdstat_t fs = fdstat_of(f);
  EQ(fs.fs_filetype, SBX_FILETYPE_REGULAR_FILE);
  EQ(fs.fs_rights_base, R_READ | R_WRITE);
  EQ(fs.fs_rights_inheriting, 0);
  sbx_ciovec_t two[2] = {{"hello ", 6}, {"world", 5}};
  OK(sbx_fd_write(f, two, 2, &n));
  EQ(n, 11);
  EQ(seek(f, 0, SBX_WHENCE_CUR), 11);

  /* Seek, read, positional I/O that leaves the offset alone. */
  EQ(seek(f, 0, SBX_WHENCE_SET), 0);
  n = read_buf(f, buf, sizeof buf);
  CHECK(n == 11 && mem_eq(buf, "hello world", 11));
  sbx_ciovec_t up = {"HELLO", 5};
  OK(sbx_fd_pwrite(f, &up, 1, 0, &n));
  EQ(n, 5);
  sbx_iovec_t rd[2] = {{buf, 3}, {buf + 3, 2}};
  OK(sbx_fd_pread(f, rd, 2, 6, &n));
  CHECK(n == 5 && mem_eq(buf, "world", 5));
  OK(sbx_fd_pread(f, rd, 2, 100, &n));
  EQ(n, 0);
  EQ(seek(f, 0, SBX_WHENCE_CUR), 11);
  EQ(seek(f, -5, SBX_WHENCE_END), 6);
  EQ(seek(f, 2, SBX_WHENCE_CUR), 8);
  uint64_t pos;
  EXPECT(sbx_fd_seek(f, 0, 0, &pos), SBX_EINVAL);
  EXPECT(sbx_fd_seek(f, 0, 4, &pos), SBX_EINVAL);
  EXPECT(sbx_fd_seek(f, (uint64_t)-100, SBX_WHENCE_SET, &pos), SBX_EINVAL);
  EQ(seek(f, 0, SBX_WHENCE_SET), 0);
  n = read_buf(f, buf, sizeof buf);
  CHECK(n == 11 && mem_eq(buf, "HELLO world", 11));

  /* Stat, allocate, truncate, times. */
  sbx_filestat_t st = fstat_(f);
  EQ(st.st_size, 11);
  EQ(st.st_filetype, SBX_FILETYPE_REGULAR_FILE);
  EQ(st.st_nlink, 1);
  OK(sbx_file_allocate(f, 0, 100));
  EQ(fstat_(f).st_size, 100);
  OK(sbx_file_allocate(f, 10, 10));
  EQ(fstat_(f).st_size, 100);
  EXPECT(sbx_file_allocate(f, 0, 0), SBX_EINVAL);
  st.st_size = 5;
  OK(sbx_file_stat_fput(f, &st, SBX_FILESTAT_SIZE));
  EQ(fstat_(f).st_size, 5);
  EXPECT(sbx_file_stat_fput(f, &st, SBX_FILESTAT_SIZE | SBX_FILESTAT_MTIM), SBX_EINVAL);
  EXPECT(sbx_file_stat_fput(f, &st, 0), SBX_EINVAL);
  EXPECT(sbx_file_stat_fput(f, &st, SBX_FILESTAT_ATIM | SBX_FILESTAT_ATIM_NOW), SBX_EINVAL);
  st.st_atim = 1000000000ull * 1000000000ull; /* 2001-09-09 */
  st.st_mtim = 1000000000ull * 1200000000ull;
  OK(sbx_file_stat_fput(f, &st, SBX_FILESTAT_ATIM | SBX_FILESTAT_MTIM));
  sbx_filestat_t st2 = fstat_(f);
  EQ(st2.st_atim, st.st_atim);
  EQ(st2.st_mtim, st.st_mtim);
  OK(sbx_file_stat_fput(f, &st, SBX_FILESTAT_ATIM_NOW));
  st2 = fstat_(f);
  CHECK(st2.st_atim > st.st_mtim);
  EQ(st2.st_mtim, st.st_mtim);
  OK(sbx_file_advise(f, 0, 5, 4));
  EXPECT(sbx_file_advise(f, 0, 5, 0), SBX_EINVAL);
  EXPECT(sbx_file_advise(f, 0, 5, 7), SBX_EINVAL);
  OK(sbx_fd_datasync(f));
  OK(sbx_fd_sync(f));
  OK(sbx_fd_close(f));
  EXPECT(sbx_fd_close(f), SBX_EBADF);

  /* Directories, rename, hard and symbolic links. */
  OK(sbx_file_create(3, P("d"), SBX_FILETYPE_DIRECTORY));
  EXPECT(sbx_file_create(3, P("d"), SBX_FILETYPE_DIRECTORY), SBX_EEXIST);
  EXPECT(sbx_file_create(3, P("r"), SBX_FILETYPE_REGULAR_FILE), SBX_EINVAL);
  OK(sbx_file_rename(3, P("a.txt"), 3, P("d/b.txt")));
  EXPECT(open_at(3, P("a.txt"), 0, R_READ, 0, 0, &x), SBX_ENOENT);
  OK(sbx_file_stat_get(3, 0, P("d/b.txt"), &st));
  EQ(st.st_size, 5);
  OK(sbx_file_link(3, 0, P("d/b.txt"), 3, P("c.txt")));
  OK(sbx_file_stat_get(3, 0, P("c.txt"), &st2));
  EQ(st2.st_ino, st.st_ino);
  EQ(st2.st_nlink, 2);
  OK(sbx_file_symlink(P("d/b.txt"), 3, P("s")));
  EXPECT(sbx_file_symlink(P("d/b.txt"), 3, P("s")), SBX_EEXIST);
  OK(sbx_file_readlink(3, P("s"), buf, sizeof buf, &n));
  CHECK(n == 7 && mem_eq(buf, "d/b.txt", 7));
  OK(sbx_file_readlink(3, P("s"), buf, 3, &n));
  CHECK(n == 3 && mem_eq(buf, "d/b", 3));
  EXPECT(sbx_file_readlink(3, P("c.txt"), buf, sizeof buf, &n), SBX_EINVAL);
  OK(sbx_file_stat_get(3, SBX_LOOKUP_SYMLINK_FOLLOW, P("s"), &st2));
  EQ(st2.st_ino, st.st_ino);
  OK(sbx_file_stat_get(3, 0, P("s"), &st2));
  EQ(st2.st_filetype, SBX_FILETYPE_SYMBOLIC_LINK);
  /* Times by path: following the link sets the target's, not following
   * sets the link's own. */
  st.st_mtim = 1000000000ull * 1300000000ull;
  OK(sbx_file_stat_put(3, SBX_LOOKUP_SYMLINK_FOLLOW, P("s"), &st, SBX_FILESTAT_MTIM));
  OK(sbx_file_stat_get(3, 0, P("d/b.txt"), &st2));
  EQ(st2.st_mtim, st.st_mtim);
  st.st_mtim = 1000000000ull * 1100000000ull;
  OK(sbx_file_stat_put(3, 0, P("s"), &st, SBX_FILESTAT_MTIM));
  OK(sbx_file_stat_get(3, 0, P("s"), &st2));
  EQ(st2.st_mtim, st.st_mtim);
  OK(sbx_file_stat_get(3, 0, P("d/b.txt"), &st2));
  EQ(st2.st_mtim, 1000000000ull * 1300000000ull);
  EXPECT(sbx_file_stat_put(3, 0, P("s"), &st, SBX_FILESTAT_SIZE), SBX_EINVAL);
  /* A link made by following a symbolic link is to its target. */
  OK(sbx_file_link(3, SBX_LOOKUP_SYMLINK_FOLLOW, P("s"), 3, P("t.txt")));
  OK(sbx_file_stat_get(3, 0, P("t.txt"), &st2));
  EQ(st2.st_ino, st.st_ino);

  /* Readdir: the same listing with any buffer size, resumed by cookie. */
  for (int i = 0; i < 10; i++) {
    char name[2] = {'f', (char)('0' + i)};
    OK(open_at(3, name, 2, SBX_O_CREAT, R_READ, 0, 0, &x));
    OK(sbx_fd_close(x));
  }
  static const char *want[] = {".", "..", "c.txt", "d", "f0", "f1", "f2", "f3", "f4", "f5", "f6", "f7", "f8", "f9", "s", "t.txt"};
  const int nwant = sizeof want / sizeof want[0];
  struct ent big[20], small[20];
  EQ(list(3, 512, big, 20), nwant);
  for (int i = 0; i < nwant; i++) {
    CHECK(name_is(&big[i], want[i]));
    EQ(big[i].next, i + 1);
  }
  EQ(big[0].type, SBX_FILETYPE_DIRECTORY);
  EQ(big[3].type, SBX_FILETYPE_DIRECTORY);
  EQ(big[2].type, SBX_FILETYPE_REGULAR_FILE);
  EQ(big[14].type, SBX_FILETYPE_SYMBOLIC_LINK);
  EQ(big[2].ino, st.st_ino);
  size_t sizes[] = {sizeof(sbx_dirent_t) + 5, 30, 40, 57, 100};
  for (unsigned s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
    EQ(list(3, sizes[s], small, 20), nwant);
    for (int i = 0; i < nwant; i++) {
      CHECK(name_is(&small[i], want[i]));
      EQ(small[i].ino, big[i].ino);
    }
  }
  OK(sbx_file_readdir(3, buf, sizeof buf, 1000, &n));
  EQ(n, 0);
  OK(sbx_file_readdir(3, buf, 0, 0, &n));
  EQ(n, 0);

  /* Append mode: writes go to the end whatever the offset. */
  sbx_fd_t lg;
  OK(open_at(3, P("log"), SBX_O_CREAT, R_READ | R_WRITE, 0, SBX_FDFLAG_APPEND, &lg));
  EQ(fdstat_of(lg).fs_flags, SBX_FDFLAG_APPEND);
  write_str(lg, "one ");
  EQ(seek(lg, 0, SBX_WHENCE_SET), 0);
  write_str(lg, "two");
  sbx_iovec_t all = {buf, sizeof buf};
  OK(sbx_fd_pread(lg, &all, 1, 0, &n));
  CHECK(n == 7 && mem_eq(buf, "one two", 7));
  OK(set_flags(lg, 0));
  EQ(fdstat_of(lg).fs_flags, 0);
  EQ(seek(lg, 0, SBX_WHENCE_SET), 0);
  write_str(lg, "ONE");
  OK(sbx_fd_pread(lg, &all, 1, 0, &n));
  CHECK(n == 7 && mem_eq(buf, "ONE two", 7));
  EXPECT(set_flags(lg, SBX_FDFLAG_DSYNC), SBX_ENOTSUP);
  EXPECT(set_flags(lg, 0x20), SBX_EINVAL);
  OK(set_flags(lg, SBX_FDFLAG_NONBLOCK));
  EQ(fdstat_of(lg).fs_flags, SBX_FDFLAG_NONBLOCK);
  OK(open_at(3, P("log"), SBX_O_TRUNC, R_READ, 0, 0, &x));
  EQ(fstat_(x).st_size, 0);
  EXPECT(open_at(3, P("log"), SBX_O_DIRECTORY, R_READ, 0, 0, &x), SBX_ENOTDIR);
  EXPECT(open_at(3, P("d"), 0, SBX_RIGHT_FD_WRITE, 0, 0, &x), SBX_EISDIR);

  /* Work through a handle to a subdirectory, and rename between two
   * handles of the same grant. */
  sbx_fd_t d;
  OK(open_at(3, P("d"), SBX_O_DIRECTORY, R_DIR | SBX_RIGHT_FILE_CREATE_FILE | SBX_RIGHT_FILE_RENAME_SOURCE |
                                           SBX_RIGHT_FILE_UNLINK,
             R_READ | R_WRITE, 0, &d));
  OK(open_at(d, P("new"), SBX_O_CREAT, R_READ | R_WRITE, 0, 0, &x));
  write_str(x, "made in d");
  OK(sbx_file_rename(d, P("new"), 3, P("moved")));
  OK(sbx_file_stat_get(3, 0, P("moved"), &st));
  EQ(st.st_size, 9);

  /* Unlink and rmdir. */
  OK(sbx_file_unlink(3, P("c.txt"), 0));
  EXPECT(sbx_file_unlink(3, P("c.txt"), 0), SBX_ENOENT);
  EXPECT(sbx_file_unlink(3, P("d"), 0), SBX_EISDIR);
  EXPECT(sbx_file_unlink(3, P("d"), SBX_UNLINK_REMOVEDIR), SBX_ENOTEMPTY);
  EXPECT(sbx_file_unlink(3, P("s"), SBX_UNLINK_REMOVEDIR), SBX_ENOTDIR);
  EXPECT(sbx_file_unlink(3, P("d/b.txt"), 2), SBX_EINVAL);
  OK(sbx_file_unlink(d, P("b.txt"), 0));
  OK(sbx_file_unlink(3, P("d"), SBX_UNLINK_REMOVEDIR));
  OK(sbx_file_unlink(3, P("s"), 0));
  OK(sbx_file_stat_get(3, 0, P("t.txt"), &st));
  EQ(st.st_nlink, 1);
  sbx_proc_exit(0);
}
