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

int main_dispatch(const char *mode) {
  if (streq(mode, "open-out")) open_out();
  else return 0;
  return 1;
}

void _start(void) {
  if (!main_dispatch(argdata_string())) sbx_proc_exit(3);
  sbx_proc_exit(0);
}
