/* fd 3: a read-only grant (caps.GrantRights(dir, true)) of a tree holding
 * "file" ("hello, read-only\n"), "sub/inner" and "link" -> "file".
 * Everything that reads works; everything that would change the tree is
 * ENOTCAPABLE. The Go test checks that the host tree is unchanged. */
#include "guest.h"

#define CONTENT "hello, read-only\n"

void _start(void) {
  sbx_fdstat_t dfs = fdstat_of(3);
  EQ(dfs.fs_filetype, SBX_FILETYPE_DIRECTORY);
  CHECK(dfs.fs_rights_base & SBX_RIGHT_FILE_OPEN);
  CHECK((dfs.fs_rights_base & (SBX_RIGHT_FILE_CREATE_FILE | SBX_RIGHT_FILE_CREATE_DIRECTORY | SBX_RIGHT_FILE_UNLINK |
                               SBX_RIGHT_FILE_RENAME_SOURCE | SBX_RIGHT_FILE_SYMLINK | SBX_RIGHT_FILE_LINK_TARGET)) == 0);
  CHECK((dfs.fs_rights_inheriting & (SBX_RIGHT_FD_WRITE | SBX_RIGHT_FILE_STAT_FPUT_SIZE)) == 0);

  /* Reading works. */
  sbx_fd_t f;
  OK(open_at(3, P("file"), 0, R_READ, 0, 0, &f));
  char buf[64];
  size_t n = read_buf(f, buf, sizeof buf);
  EQ(n, sizeof CONTENT - 1);
  CHECK(mem_eq(buf, CONTENT, n));
  sbx_iovec_t iov = {buf, 5};
  OK(sbx_fd_pread(f, &iov, 1, 7, &n));
  CHECK(n == 5 && mem_eq(buf, "read-", 5));
  sbx_filestat_t st;
  OK(sbx_file_stat_fget(f, &st));
  EQ(st.st_size, sizeof CONTENT - 1);
  EQ(st.st_filetype, SBX_FILETYPE_REGULAR_FILE);
  OK(sbx_file_stat_get(3, 0, P("link"), &st));
  EQ(st.st_filetype, SBX_FILETYPE_SYMBOLIC_LINK);
  OK(sbx_file_stat_get(3, SBX_LOOKUP_SYMLINK_FOLLOW, P("link"), &st));
  EQ(st.st_filetype, SBX_FILETYPE_REGULAR_FILE);
  OK(sbx_file_readlink(3, P("link"), buf, sizeof buf, &n));
  CHECK(n == 4 && mem_eq(buf, "file", 4));
  char dents[256];
  OK(sbx_file_readdir(3, dents, sizeof dents, 0, &n));
  CHECK(n > 0 && n < sizeof dents);

  /* Nothing opened through the grant can write. */
  uint64_t wr[] = {SBX_RIGHT_FD_WRITE, SBX_RIGHT_FILE_STAT_FPUT_SIZE, SBX_RIGHT_FILE_ALLOCATE, SBX_RIGHT_FD_DATASYNC,
                   SBX_RIGHT_FILE_STAT_FPUT_TIMES};
  for (unsigned i = 0; i < sizeof wr / sizeof wr[0]; i++) {
    sbx_fd_t x = 999;
    EXPECT(open_at(3, P("file"), 0, SBX_RIGHT_FD_READ | wr[i], 0, 0, &x), SBX_ENOTCAPABLE);
    EQ(x, 999);
  }
  sbx_fd_t x;
  EXPECT(open_at(3, P("new"), SBX_O_CREAT, SBX_RIGHT_FD_READ, 0, 0, &x), SBX_ENOTCAPABLE);
  EXPECT(open_at(3, P("file"), SBX_O_TRUNC, SBX_RIGHT_FD_READ, 0, 0, &x), SBX_ENOTCAPABLE);
  EXPECT(open_at(3, P("file"), 0, SBX_RIGHT_FD_READ, 0, SBX_FDFLAG_DSYNC, &x), SBX_ENOTCAPABLE);

  /* The open file cannot be written, resized, re-timed or widened. */
  sbx_ciovec_t civ = {"x", 1};
  EXPECT(sbx_fd_write(f, &civ, 1, &n), SBX_ENOTCAPABLE);
  EXPECT(sbx_fd_pwrite(f, &civ, 1, 0, &n), SBX_ENOTCAPABLE);
  st.st_size = 0;
  EXPECT(sbx_file_stat_fput(f, &st, SBX_FILESTAT_SIZE), SBX_ENOTCAPABLE);
  EXPECT(sbx_file_stat_fput(f, &st, SBX_FILESTAT_MTIM_NOW), SBX_ENOTCAPABLE);
  EXPECT(sbx_file_allocate(f, 0, 4096), SBX_ENOTCAPABLE);
  EXPECT(sbx_fd_datasync(f), SBX_ENOTCAPABLE);
  EXPECT(set_rights(f, R_READ | SBX_RIGHT_FD_WRITE, 0), SBX_ENOTCAPABLE);
  EQ(fdstat_of(f).fs_rights_base, R_READ);

  /* No path call changes the tree. */
  EXPECT(sbx_file_create(3, P("newdir"), SBX_FILETYPE_DIRECTORY), SBX_ENOTCAPABLE);
  EXPECT(sbx_file_unlink(3, P("file"), 0), SBX_ENOTCAPABLE);
  EXPECT(sbx_file_unlink(3, P("sub"), SBX_UNLINK_REMOVEDIR), SBX_ENOTCAPABLE);
  EXPECT(sbx_file_rename(3, P("file"), 3, P("moved")), SBX_ENOTCAPABLE);
  EXPECT(sbx_file_symlink(P("file"), 3, P("newlink")), SBX_ENOTCAPABLE);
  EXPECT(sbx_file_link(3, 0, P("file"), 3, P("hard")), SBX_ENOTCAPABLE);
  EXPECT(sbx_file_stat_put(3, SBX_LOOKUP_SYMLINK_FOLLOW, P("file"), &st, SBX_FILESTAT_MTIM_NOW), SBX_ENOTCAPABLE);
  EXPECT(sbx_file_stat_put(3, 0, P("."), &st, SBX_FILESTAT_ATIM_NOW), SBX_ENOTCAPABLE);

  /* A directory opened beneath the grant is read-only too. */
  sbx_fd_t sub;
  OK(open_at(3, P("sub"), SBX_O_DIRECTORY, R_DIR, R_READ, 0, &sub));
  EQ(fdstat_of(sub).fs_filetype, SBX_FILETYPE_DIRECTORY);
  EXPECT(open_at(3, P("sub"), SBX_O_DIRECTORY, R_DIR | SBX_RIGHT_FILE_CREATE_FILE, R_READ, 0, &x), SBX_ENOTCAPABLE);
  EXPECT(sbx_file_create(sub, P("d"), SBX_FILETYPE_DIRECTORY), SBX_ENOTCAPABLE);
  EXPECT(open_at(sub, P("inner"), 0, SBX_RIGHT_FD_WRITE, 0, 0, &x), SBX_ENOTCAPABLE);
  sbx_fd_t inner;
  OK(open_at(sub, P("inner"), 0, R_READ, 0, 0, &inner));
  EXPECT(sbx_fd_write(inner, &civ, 1, &n), SBX_ENOTCAPABLE);
  sbx_proc_exit(0);
}
