/* fd 3: a read-write grant holding "file". The guest opens "file" and a
 * subdirectory handle beneath the grant, says "ready" on stdout, then
 * waits on stdin until the Go test has revoked the grant. Everything
 * opened beneath the grant is cut off with it. */
#include "guest.h"

void _start(void) {
  sbx_fd_t f, sub, x;
  char buf[16];
  size_t n;
  OK(open_at(3, P("file"), 0, R_READ, 0, 0, &f));
  OK(open_at(3, P("sub"), SBX_O_DIRECTORY, R_DIR, R_READ, 0, &sub));
  OK(sbx_fd_dup(f, &x));
  EQ(read_buf(f, buf, 4), 4);
  write_str(1, "ready\n");
  EQ(read_buf(0, buf, sizeof buf), 7); /* "revoked" */
  sbx_iovec_t iov = {buf, sizeof buf};
  EXPECT(sbx_fd_read(f, &iov, 1, &n), SBX_ENOTCAPABLE);
  EXPECT(sbx_fd_read(x, &iov, 1, &n), SBX_ENOTCAPABLE);
  sbx_fdstat_t fs;
  EXPECT(sbx_fd_stat_get(f, &fs), SBX_ENOTCAPABLE);
  EXPECT(open_at(3, P("file"), 0, R_READ, 0, 0, &x), SBX_ENOTCAPABLE);
  EXPECT(open_at(sub, P("inner"), 0, R_READ, 0, 0, &x), SBX_ENOTCAPABLE);
  EXPECT(sbx_fd_dup(f, &x), SBX_ENOTCAPABLE);
  /* The handles are still there (closing them is the guest's business)
   * but designate nothing. */
  OK(sbx_fd_close(f));
  sbx_proc_exit(0);
}
