/* A guest holding only stdio (fds 0-2) can reach no file system object:
 * every path call on an fd it does not hold is EBADF, and on a stdio
 * handle, which has no path rights, ENOTCAPABLE. */
#include "guest.h"

static void path_calls(sbx_fd_t fd, sbx_errno_t want) {
  sbx_fdstat_t fs = {0};
  fs.fs_rights_base = SBX_RIGHT_FD_READ;
  sbx_fd_t nfd = 12345;
  sbx_filestat_t st;
  char buf[64];
  size_t used;
  EXPECT(sbx_file_open(fd, SBX_LOOKUP_SYMLINK_FOLLOW, P("etc/passwd"), 0, &fs, &nfd), want);
  EXPECT(sbx_file_open(fd, 0, P("x"), SBX_O_CREAT, &fs, &nfd), want);
  EQ(nfd, 12345);
  EXPECT(sbx_file_create(fd, P("d"), SBX_FILETYPE_DIRECTORY), want);
  EXPECT(sbx_file_unlink(fd, P("x"), 0), want);
  EXPECT(sbx_file_unlink(fd, P("d"), SBX_UNLINK_REMOVEDIR), want);
  EXPECT(sbx_file_rename(fd, P("a"), fd, P("b")), want);
  EXPECT(sbx_file_link(fd, 0, P("a"), fd, P("b")), want);
  EXPECT(sbx_file_symlink(P("/etc"), fd, P("l")), want);
  EXPECT(sbx_file_readlink(fd, P("l"), buf, sizeof buf, &used), want);
  EXPECT(sbx_file_stat_get(fd, SBX_LOOKUP_SYMLINK_FOLLOW, P("."), &st), want);
  EXPECT(sbx_file_stat_put(fd, 0, P("."), &st, SBX_FILESTAT_MTIM_NOW), want);
  EXPECT(sbx_file_readdir(fd, buf, sizeof buf, 0, &used), want);
}

void _start(void) {
  sbx_fd_t unheld[] = {3, 4, 63, 64, 1000, 0xffffffffu};
  for (unsigned i = 0; i < sizeof unheld / sizeof unheld[0]; i++) {
    sbx_fd_t fd = unheld[i];
    path_calls(fd, SBX_EBADF);
    sbx_fdstat_t fs;
    sbx_filestat_t st;
    uint64_t pos;
    sbx_fd_t nfd;
    char b[4];
    sbx_iovec_t iov = {b, sizeof b};
    size_t n;
    EXPECT(sbx_fd_stat_get(fd, &fs), SBX_EBADF);
    EXPECT(sbx_file_stat_fget(fd, &st), SBX_EBADF);
    EXPECT(sbx_fd_seek(fd, 0, SBX_WHENCE_CUR, &pos), SBX_EBADF);
    EXPECT(sbx_fd_read(fd, &iov, 1, &n), SBX_EBADF);
    EXPECT(sbx_fd_pread(fd, &iov, 1, 0, &n), SBX_EBADF);
    EXPECT(sbx_fd_dup(fd, &nfd), SBX_EBADF);
    EXPECT(sbx_fd_replace(fd, 1), SBX_EBADF);
    EXPECT(sbx_fd_replace(1, fd), SBX_EBADF);
    EXPECT(sbx_fd_sync(fd), SBX_EBADF);
    EXPECT(sbx_fd_close(fd), SBX_EBADF);
  }
  for (sbx_fd_t fd = 0; fd < 3; fd++) {
    path_calls(fd, SBX_ENOTCAPABLE);
    uint64_t pos;
    EXPECT(sbx_fd_seek(fd, 0, SBX_WHENCE_SET, &pos), SBX_ENOTCAPABLE);
    EXPECT(sbx_fd_sync(fd), SBX_ENOTCAPABLE);
    EXPECT(sbx_fd_datasync(fd), SBX_ENOTCAPABLE);
    EXPECT(sbx_file_allocate(fd, 0, 1), SBX_ENOTCAPABLE);
    sbx_fdstat_t fs = fdstat_of(fd);
    EQ(fs.fs_filetype, SBX_FILETYPE_UNKNOWN); /* not a terminal's */
    EQ(fs.fs_rights_inheriting, 0);
    CHECK((fs.fs_rights_base & SBX_RIGHT_FILE_OPEN) == 0);
  }
  sbx_proc_exit(0);
}
