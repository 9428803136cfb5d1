/* fd 3: a read-write grant of a directory holding "data" ("0123456789")
 * and "sub/". fd_stat_put narrows rights and can never widen them; what is
 * opened beneath a narrowed directory stays within the narrowed rights. */
#include "guest.h"

#define DIR_KEEP (R_DIR | SBX_RIGHT_FD_STAT_PUT_FLAGS)

void _start(void) {
  sbx_fdstat_t orig = fdstat_of(3);
  sbx_fd_t f, x;
  size_t n;

  /* Narrow the directory: no creating, and files beneath only readable. */
  OK(set_rights(3, DIR_KEEP, R_READ | R_DIR));
  sbx_fdstat_t now = fdstat_of(3);
  EQ(now.fs_rights_base, DIR_KEEP);
  EQ(now.fs_rights_inheriting, R_READ | R_DIR);
  EXPECT(set_rights(3, orig.fs_rights_base, orig.fs_rights_inheriting), SBX_ENOTCAPABLE);
  EXPECT(set_rights(3, DIR_KEEP | SBX_RIGHT_FILE_CREATE_FILE, R_READ), SBX_ENOTCAPABLE);
  EXPECT(set_rights(3, DIR_KEEP, R_READ | SBX_RIGHT_FD_WRITE), SBX_ENOTCAPABLE);
  now = fdstat_of(3);
  EQ(now.fs_rights_base, DIR_KEEP);
  EQ(now.fs_rights_inheriting, R_READ | R_DIR);

  EXPECT(open_at(3, P("data"), 0, R_READ | SBX_RIGHT_FD_WRITE, 0, 0, &x), SBX_ENOTCAPABLE);
  EXPECT(open_at(3, P("new"), SBX_O_CREAT, R_READ, 0, 0, &x), SBX_ENOTCAPABLE);
  EXPECT(sbx_file_create(3, P("dir"), SBX_FILETYPE_DIRECTORY), SBX_ENOTCAPABLE);
  OK(open_at(3, P("data"), 0, R_READ, 0, 0, &f));
  EQ(fdstat_of(f).fs_rights_base, R_READ);

  /* A subdirectory opened beneath gets no more than the narrowed
   * inheriting rights, and passes no more on. */
  sbx_fd_t sub;
  EXPECT(open_at(3, P("sub"), SBX_O_DIRECTORY, R_DIR, R_READ | SBX_RIGHT_FD_WRITE, 0, &sub), SBX_ENOTCAPABLE);
  OK(open_at(3, P("sub"), SBX_O_DIRECTORY, R_DIR, R_READ, 0, &sub));
  EXPECT(open_at(sub, P("inner"), 0, R_READ | SBX_RIGHT_FD_WRITE, 0, 0, &x), SBX_ENOTCAPABLE);
  OK(open_at(sub, P("inner"), 0, R_READ, 0, 0, &x));

  /* The open file: narrowing works, widening never does, and a dup keeps
   * what the original had. */
  EXPECT(set_rights(f, R_READ | SBX_RIGHT_FD_WRITE, 0), SBX_ENOTCAPABLE);
  EXPECT(set_rights(f, R_READ, SBX_RIGHT_FD_READ), SBX_ENOTCAPABLE);
  OK(set_rights(f, SBX_RIGHT_FD_READ | SBX_RIGHT_FD_TELL, 0));
  uint64_t pos;
  OK(sbx_fd_seek(f, 0, SBX_WHENCE_CUR, &pos)); /* FD_TELL is enough to tell */
  EQ(pos, 0);
  EXPECT(sbx_fd_seek(f, 0, SBX_WHENCE_SET, &pos), SBX_ENOTCAPABLE);
  EXPECT(sbx_fd_seek(f, 1, SBX_WHENCE_CUR, &pos), SBX_ENOTCAPABLE);
  sbx_iovec_t iov = {&pos, 1};
  EXPECT(sbx_fd_pread(f, &iov, 1, 0, &n), SBX_ENOTCAPABLE);
  EXPECT(set_flags(f, 0), SBX_ENOTCAPABLE);
  sbx_fd_t d;
  OK(sbx_fd_dup(f, &d));
  EQ(fdstat_of(d).fs_rights_base, SBX_RIGHT_FD_READ | SBX_RIGHT_FD_TELL);
  EXPECT(set_rights(d, R_READ, 0), SBX_ENOTCAPABLE);
  OK(set_rights(d, SBX_RIGHT_FD_READ, 0));
  EXPECT(sbx_fd_seek(d, 0, SBX_WHENCE_CUR, &pos), SBX_ENOTCAPABLE);
  sbx_fd_t s;
  OK(open_at(3, P("data"), 0, R_READ, 0, 0, &s));
  OK(set_rights(s, SBX_RIGHT_FD_SEEK, 0));
  OK(sbx_fd_seek(s, 0, SBX_WHENCE_CUR, &pos)); /* FD_SEEK implies FD_TELL */
  OK(sbx_fd_seek(s, 3, SBX_WHENCE_SET, &pos));
  EQ(pos, 3);
  EQ(fdstat_of(f).fs_rights_base, SBX_RIGHT_FD_READ | SBX_RIGHT_FD_TELL);

  /* fd_stat_put takes exactly one of FLAGS and RIGHTS. */
  sbx_fdstat_t fs = fdstat_of(3);
  EXPECT(sbx_fd_stat_put(3, &fs, 0), SBX_EINVAL);
  EXPECT(sbx_fd_stat_put(3, &fs, SBX_FDSTAT_FLAGS | SBX_FDSTAT_RIGHTS), SBX_EINVAL);
  EXPECT(sbx_fd_stat_put(3, &fs, 4), SBX_EINVAL);

  /* Dropping FILE_OPEN from the directory ends all opening through it. */
  OK(set_rights(3, SBX_RIGHT_FILE_STAT_GET, 0));
  EXPECT(open_at(3, P("data"), 0, SBX_RIGHT_FD_READ, 0, 0, &x), SBX_ENOTCAPABLE);
  sbx_filestat_t st;
  OK(sbx_file_stat_get(3, 0, P("data"), &st));
  EQ(st.st_size, 10);
  sbx_proc_exit(0);
}
