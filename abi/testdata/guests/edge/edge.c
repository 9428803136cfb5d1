/* Edge cases of the native ABI; the argdata string picks the scenario.
 * fd 3 is a read-write directory grant. A failed expectation is reported
 * on stdout with its line (guest.h) and the guest exits 1. */
#include "../fs/guest.h"

static int streq(const char *a, const char *b) {
  while (*a && *a == *b) a++, b++;
  return *a == *b;
}

/* argdata_string returns the startup argdata as a string (tag 0x08). */
static const char *argdata_string(void) {
  static char buf[256];
  uint32_t size = 0;
  if (sbx_argdata_get(buf, sizeof buf - 1, &size) != 0 || size < 2 || buf[0] != 0x08) return "";
  buf[size] = 0;
  return buf + 1;
}

/* A call whose result pointer is out of bounds fails with EFAULT before
 * it does anything: file_open neither creates nor truncates the file. */
static void open_out(void) {
  sbx_filestat_t st;
  sbx_fd_t fd;
  EXPECT(open_at(3, P("made"), SBX_O_CREAT, R_READ | R_WRITE, 0, 0, BAD), SBX_EFAULT);
  EXPECT(sbx_file_stat_get(3, 0, P("made"), &st), SBX_ENOENT);
  EXPECT(open_at(3, P("full"), SBX_O_TRUNC, R_READ | R_WRITE, 0, 0, BAD), SBX_EFAULT);
  OK(sbx_file_stat_get(3, 0, P("full"), &st));
  EQ(st.st_size, 4);
  OK(open_at(3, P("full"), 0, R_READ, 0, 0, &fd));
  OK(sbx_fd_close(fd));
}

/* fd_read and fd_write with nread_out or nwritten_out out of bounds are
 * EFAULT and move nothing: the bytes are neither sent nor taken off the
 * channel. So with fd_pwrite on a byte object and fd_seek on its offset. */
static void rw_out(void) {
  sbx_fd_t a, b, o;
  size_t n;
  char buf[8];
  uint64_t pos;
  sbx_ciovec_t w = {"abc", 3};
  sbx_iovec_t r = {buf, sizeof buf};
  OK(sbx_fd_create2(SBX_FILETYPE_SOCKET_STREAM, &a, &b));
  OK(set_flags(b, SBX_FDFLAG_NONBLOCK));
  EXPECT(sbx_fd_write(a, &w, 1, BAD), SBX_EFAULT);
  EXPECT(sbx_fd_read(b, &r, 1, &n), SBX_EAGAIN);
  OK(sbx_fd_write(a, &w, 1, &n));
  EQ(n, 3);
  EXPECT(sbx_fd_read(b, &r, 1, BAD), SBX_EFAULT);
  OK(sbx_fd_read(b, &r, 1, &n));
  EQ(n, 3);
  CHECK(mem_eq(buf, "abc", 3));

  sbx_filestat_t st;
  OK(sbx_fd_create1(SBX_FILETYPE_SHARED_MEMORY, &o));
  EXPECT(sbx_fd_pwrite(o, &w, 1, 0, BAD), SBX_EFAULT);
  OK(sbx_file_stat_fget(o, &st));
  EQ(st.st_size, 0);
  EXPECT(sbx_fd_seek(o, 5, SBX_WHENCE_SET, BAD), SBX_EFAULT);
  OK(sbx_fd_seek(o, 0, SBX_WHENCE_CUR, &pos));
  EQ(pos, 0);
}

/* fd_create2 with one result pointer out of bounds writes neither. */
static void create2_out(void) {
  sbx_fd_t a = 777, b = 777;
  EXPECT(sbx_fd_create2(SBX_FILETYPE_SOCKET_STREAM, &a, BAD), SBX_EFAULT);
  EQ(a, 777);
  EXPECT(sbx_fd_create2(SBX_FILETYPE_SOCKET_DGRAM, BAD, &b), SBX_EFAULT);
  EQ(b, 777);
}

int main_dispatch(const char *mode) {
  if (streq(mode, "open-out")) open_out();
  else if (streq(mode, "rw-out")) rw_out();
  else if (streq(mode, "create2-out")) create2_out();
  else return 0;
  return 1;
}

void _start(void) {
  if (!main_dispatch(argdata_string())) sbx_proc_exit(3);
  sbx_proc_exit(0);
}
