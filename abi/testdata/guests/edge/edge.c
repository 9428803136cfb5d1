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

#define SHOW(call)            \
  do {                        \
    out_str(#call " = ");     \
    out_num((call));          \
    out_str("\n");            \
  } while (0)

static void probe(void) {
  sbx_fd_t a, b, o, f, d, r, fw;
  size_t n;
  char buf[256];
  uint64_t t;
  uint32_t sz;
  OK(sbx_fd_create2(SBX_FILETYPE_SOCKET_STREAM, &a, &b));
  OK(sbx_fd_create1(SBX_FILETYPE_SHARED_MEMORY, &o));
  OK(open_at(3, P("full"), 0, R_READ, 0, 0, &f));
  OK(open_at(3, P("."), SBX_O_DIRECTORY, R_DIR, R_READ, 0, &d));
  OK(sbx_cap_revocable(f, &fw, &r));
  sbx_subscription_t s = {0};
  sbx_event_t ev[2];
  uint32_t ne;
  s.type = SBX_EVENTTYPE_PROC_TERMINATE;
  s.u.proc_terminate.fd = f;
  SHOW(sbx_poll(&s, ev, 1, &ne));
  SHOW(ev[0].error);
  s.u.proc_terminate.fd = a;
  SHOW(sbx_poll(&s, ev, 1, &ne));
  SHOW(ev[0].error);
  s.u.proc_terminate.fd = r;
  SHOW(sbx_poll(&s, ev, 1, &ne));
  SHOW(ev[0].error);
  s.type = SBX_EVENTTYPE_FD_READ;
  s.u.fd_readwrite.fd = o;
  SHOW(sbx_poll(&s, ev, 1, &ne));
  SHOW(ev[0].error);
  SHOW(ev[0].u.fd_readwrite.nbytes);
  s.u.fd_readwrite.fd = d;
  SHOW(sbx_poll(&s, ev, 1, &ne));
  SHOW(ev[0].error);
  s.type = SBX_EVENTTYPE_FD_WRITE;
  s.u.fd_readwrite.fd = o;
  SHOW(sbx_poll(&s, ev, 1, &ne));
  SHOW(ev[0].error);
  SHOW(sbx_clock_res_get(0, &t));
  SHOW(sbx_clock_res_get(5, &t));
  SHOW(sbx_clock_time_get(4, 0, &t));
  SHOW(sbx_proc_raise(SBX_SIGSTOP));
  SHOW(sbx_proc_raise(27));
  SHOW(sbx_argdata_get((void *)(__builtin_wasm_memory_size(0) * 65536 - 8), 64, &sz));
  SHOW(sbx_fd_describe(3, (void *)(__builtin_wasm_memory_size(0) * 65536 - 8), 0x10000, &sz));
  SHOW(sz);
  SHOW(sbx_fd_replace(a, a));
  SHOW(sbx_fd_replace(a, 100));
  SHOW(sbx_fd_replace(100, a));
  SHOW(sbx_fd_replace(o, d));
  SHOW(fdstat_of(d).fs_filetype);
  SHOW(sbx_file_readdir(3, buf, sizeof buf, 0, &n));
  SHOW(n);
  SHOW(sbx_file_readdir(3, buf, sizeof buf, 1000, &n));
  SHOW(n);
  SHOW(sbx_cap_revoke(r));
  SHOW(sbx_cap_revoke(r));
  SHOW(sbx_cap_revoke(a));
  SHOW(sbx_fd_stat_get(fw, (void *)buf));
  SHOW(sbx_fd_close(fw));
  SHOW(sbx_file_stat_fget(o, (void *)buf));
  SHOW(sbx_sock_shutdown(o, 1));
  SHOW(sbx_sock_accept(a, &n));
  SHOW(sbx_sock_accept(o, &n));
  SHOW(sbx_thread_yield());
  SHOW(sbx_random_get(BAD, 0));
  SHOW(sbx_file_create(3, P("newdir"), SBX_FILETYPE_REGULAR_FILE));
  SHOW(sbx_file_unlink(3, P("full"), 0x2));
}

/* argdata_get and fd_describe bounds-check the whole (buf, buf_len)
 * range: one that crosses the end of memory is EFAULT even when what they
 * would copy fits before the end. The size is written all the same. */
static void buf_end(void) {
  char *end = (char *)(__builtin_wasm_memory_size(0) * 65536);
  uint32_t size = 0, dsize = 0;
  /* The argdata ("buf-end" as an argdata string) is 9 bytes. */
  EXPECT(sbx_argdata_get(end - 16, 64, &size), SBX_EFAULT);
  EQ(size, 9);
  OK(sbx_fd_describe(3, 0, 0, &dsize) == SBX_ENOBUFS ? 0 : 1);
  EXPECT(sbx_fd_describe(3, end - dsize - 8, dsize + 64, &size), SBX_EFAULT);
  EQ(size, dsize);
  EXPECT(sbx_argdata_get(end - 16, 0xffffffffu, &size), SBX_EFAULT);
  /* At the end exactly is in bounds. */
  OK(sbx_argdata_get(end - 9, 9, &size));
  OK(sbx_fd_describe(3, end - dsize, dsize, &size));
}

/* A proc_terminate subscription on a handle that is not a process is
 * EINVAL in its event, as docs/ABI.md says, whatever rights the handle
 * holds (none but a process can hold poll_proc_terminate). */
static void poll_kind(void) {
  sbx_fd_t a, b, o, f, d;
  OK(sbx_fd_create2(SBX_FILETYPE_SOCKET_STREAM, &a, &b));
  OK(sbx_fd_create1(SBX_FILETYPE_SHARED_MEMORY, &o));
  OK(open_at(3, P("full"), 0, R_READ, 0, 0, &f));
  OK(open_at(3, P("."), SBX_O_DIRECTORY, R_DIR, R_READ, 0, &d));
  sbx_fd_t fds[] = {1, 3, a, o, f, d};
  for (unsigned i = 0; i < sizeof fds / sizeof fds[0]; i++) {
    sbx_subscription_t s = {0};
    sbx_event_t ev;
    uint32_t ne = 0;
    s.userdata = i;
    s.type = SBX_EVENTTYPE_PROC_TERMINATE;
    s.u.proc_terminate.fd = fds[i];
    OK(sbx_poll(&s, &ev, 1, &ne));
    EQ(ne, 1);
    EQ(ev.userdata, i);
    EQ(ev.error, SBX_EINVAL);
  }
  /* No such handle is still EBADF. */
  sbx_subscription_t s = {0};
  sbx_event_t ev;
  uint32_t ne = 0;
  s.type = SBX_EVENTTYPE_PROC_TERMINATE;
  s.u.proc_terminate.fd = 200;
  OK(sbx_poll(&s, &ev, 1, &ne));
  EQ(ev.error, SBX_EBADF);
}

int main_dispatch(const char *mode) {
  if (streq(mode, "open-out")) open_out();
  else if (streq(mode, "rw-out")) rw_out();
  else if (streq(mode, "buf-end")) buf_end();
  else if (streq(mode, "poll-kind")) poll_kind();
  else if (streq(mode, "probe")) probe();
  else if (streq(mode, "create2-out")) create2_out();
  else return 0;
  return 1;
}

void _start(void) {
  if (!main_dispatch(argdata_string())) sbx_proc_exit(3);
  sbx_proc_exit(0);
}
