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

static sbx_errno_t send_fds(sbx_fd_t sock, const char *msg, const sbx_fd_t *fds, size_t nfds, size_t *sent) {
  sbx_ciovec_t iov = {msg, str_len(msg)};
  sbx_send_in_t in = {&iov, 1, fds, nfds, 0};
  sbx_send_out_t so = {0};
  sbx_errno_t e = sbx_sock_send(sock, &in, &so);
  *sent = so.so_datalen;
  return e;
}

static sbx_errno_t recv_fds(sbx_fd_t sock, char *buf, size_t len, sbx_fd_t *fds, size_t nfds, uint16_t flags,
                            sbx_recv_out_t *ro) {
  sbx_iovec_t iov = {buf, len};
  sbx_recv_in_t in = {&iov, 1, fds, nfds, flags};
  return sbx_sock_recv(sock, &in, ro);
}

static void probe2(void) {
  sbx_fd_t a, b, o, f, r, fw, got[70];
  size_t n;
  char buf[64];
  sbx_recv_out_t ro;
  OK(sbx_fd_create2(SBX_FILETYPE_SOCKET_DGRAM, &a, &b));
  OK(sbx_fd_create1(SBX_FILETYPE_SHARED_MEMORY, &o));
  OK(open_at(3, P("full"), 0, R_READ, 0, 0, &f));
  OK(sbx_cap_revocable(f, &fw, &r));
  sbx_fd_t self[] = {a};
  SHOW(send_fds(a, "self", self, 1, &n));
  memset(&ro, 0, sizeof ro);
  SHOW(recv_fds(b, buf, sizeof buf, got, 4, 0, &ro));
  SHOW(ro.ro_fdslen);
  SHOW(ro.ro_flags);
  SHOW(fdstat_of(got[0]).fs_filetype);
  sbx_fd_t other[] = {b};
  SHOW(send_fds(a, "other", other, 1, &n));
  memset(&ro, 0, sizeof ro);
  SHOW(recv_fds(b, buf, sizeof buf, got, 4, 0, &ro));
  SHOW(ro.ro_fdslen);
  SHOW(got[0]);
  sbx_fd_t three[] = {o, f, o};
  SHOW(send_fds(a, "three", three, 3, &n));
  memset(&ro, 0, sizeof ro);
  SHOW(recv_fds(b, buf, sizeof buf, got, 1, SBX_SOCK_RECV_PEEK, &ro));
  SHOW(ro.ro_fdslen);
  SHOW(ro.ro_flags);
  SHOW(ro.ro_datalen);
  memset(&ro, 0, sizeof ro);
  SHOW(recv_fds(b, buf, sizeof buf, got, 1, 0, &ro));
  SHOW(ro.ro_fdslen);
  SHOW(ro.ro_flags);
  OK(sbx_cap_revoke(r));
  sbx_fd_t rev[] = {o, fw};
  SHOW(send_fds(a, "rev", rev, 2, &n));
  OK(set_flags(b, SBX_FDFLAG_NONBLOCK));
  memset(&ro, 0, sizeof ro);
  SHOW(recv_fds(b, buf, sizeof buf, got, 4, 0, &ro));
  sbx_fd_t many[65];
  for (int i = 0; i < 65; i++) many[i] = o;
  SHOW(send_fds(a, "many", many, 65, &n));
  SHOW(send_fds(a, "64", many, 64, &n));
  memset(&ro, 0, sizeof ro);
  SHOW(recv_fds(b, buf, sizeof buf, got, 70, 0, &ro));
  SHOW(ro.ro_fdslen);
  SHOW(ro.ro_flags);
  /* ri_fds across the end of memory */
  char *end = (char *)(__builtin_wasm_memory_size(0) * 65536);
  SHOW(send_fds(a, "x", many, 2, &n));
  memset(&ro, 0, sizeof ro);
  SHOW(recv_fds(b, buf, sizeof buf, (sbx_fd_t *)(end - 4), 2, 0, &ro));
  SHOW(recv_fds(b, buf, sizeof buf, (sbx_fd_t *)(end - 4), 1, 0, &ro));
  SHOW(ro.ro_fdslen);
  SHOW(ro.ro_flags);
  SHOW(send_fds(a, "x", (sbx_fd_t *)(end - 4), 2, &n));
  sbx_fd_t bad[] = {o, 99};
  SHOW(send_fds(a, "x", bad, 2, &n));
  SHOW(recv_fds(b, buf, sizeof buf, got, 4, 0, &ro));
  SHOW(recv_fds(b, buf, sizeof buf, got, 4, 0x1, &ro));
  sbx_ciovec_t iov = {"x", 1};
  sbx_send_in_t in = {&iov, 1, 0, 0, 1};
  sbx_send_out_t so;
  SHOW(sbx_sock_send(a, &in, &so));
  SHOW(sbx_sock_send(a, &in, (void *)(end - 2)));
  SHOW(sbx_sock_shutdown(a, 0));
  SHOW(sbx_sock_shutdown(a, 4));
  SHOW(sbx_sock_shutdown(a, 3));
  SHOW(send_fds(a, "x", 0, 0, &n));
  SHOW(recv_fds(b, buf, sizeof buf, got, 4, 0, &ro));
  SHOW(ro.ro_datalen);
}

static void probe3(void) {
  sbx_fd_t d1, d2, f, g;
  size_t n;
  char buf[256];
  sbx_filestat_t st = {0};
  OK(sbx_file_create(3, P("sub"), SBX_FILETYPE_DIRECTORY));
  OK(open_at(3, P("sub"), SBX_O_DIRECTORY, R_DIR | SBX_RIGHT_FILE_RENAME_TARGET | SBX_RIGHT_FILE_LINK_TARGET | SBX_RIGHT_FILE_RENAME_SOURCE | SBX_RIGHT_FILE_LINK_SOURCE | SBX_RIGHT_FILE_CREATE_FILE, R_READ | R_WRITE, 0, &d1));
  SHOW(sbx_file_rename(3, P("full"), d1, P("moved")));
  SHOW(sbx_file_link(d1, 0, P("moved"), 3, P("linked")));
  SHOW(sbx_file_rename(d1, P("moved"), d1, P("../escape")));
  SHOW(sbx_file_rename(d1, P("moved"), 3, P("sub/../back")));
  SHOW(sbx_file_link(3, 0, P("back"), d1, P("/abs")));
  SHOW(sbx_file_rename(3, P("back"), 3, P("back/")));
  SHOW(sbx_file_rename(3, P("sub"), 3, P("sub/inner")));
  /* open flags */
  SHOW(open_at(3, P("linked"), SBX_O_CREAT | SBX_O_EXCL, R_READ, 0, 0, &f));
  SHOW(open_at(3, P("new1"), SBX_O_CREAT | SBX_O_DIRECTORY, R_READ, 0, 0, &f));
  SHOW(open_at(3, P("new2"), SBX_O_EXCL, R_READ, 0, 0, &f));
  SHOW(open_at(3, P("sub"), SBX_O_TRUNC, R_READ, 0, 0, &f));
  SHOW(open_at(3, P("sub"), 0, R_READ | R_WRITE, 0, 0, &f));
  SHOW(open_at(3, P("linked"), SBX_O_DIRECTORY, R_READ, 0, 0, &f));
  SHOW(open_at(3, P("linked/"), 0, R_READ, 0, 0, &f));
  SHOW(open_at(3, P("new3"), SBX_O_CREAT, R_READ, 0, SBX_FDFLAG_APPEND, &f));
  SHOW(fdstat_of(f).fs_flags);
  SHOW(open_at(3, P("new4"), SBX_O_CREAT, SBX_RIGHT_FD_WRITE, 0, SBX_FDFLAG_APPEND | SBX_FDFLAG_NONBLOCK, &f));
  SHOW(fdstat_of(f).fs_flags);
  SHOW(fdstat_of(f).fs_rights_base);
  SHOW(open_at(3, P("new5"), SBX_O_CREAT, SBX_RIGHT_FD_WRITE, 0, SBX_FDFLAG_DSYNC, &f));
  SHOW(fdstat_of(f).fs_flags);
  SHOW(open_at(3, P("new6"), SBX_O_CREAT, R_READ, R_READ, 0, &f));
  SHOW(fdstat_of(f).fs_rights_inheriting);
  SHOW(open_at(3, P("new7"), SBX_O_CREAT, 0, 0, 0, &f));
  SHOW(fdstat_of(f).fs_rights_base);
  SHOW(open_at(3, P("sub"), 0, R_DIR | R_READ, R_READ, 0, &g));
  SHOW(fdstat_of(g).fs_rights_base);
  SHOW(fdstat_of(g).fs_rights_inheriting);
  SHOW(fdstat_of(g).fs_filetype);
  /* file_stat_put each flag */
  SHOW(sbx_file_stat_put(3, 0, P("linked"), &st, SBX_FILESTAT_ATIM));
  SHOW(sbx_file_stat_put(3, 0, P("linked"), &st, SBX_FILESTAT_ATIM_NOW));
  SHOW(sbx_file_stat_put(3, 0, P("linked"), &st, SBX_FILESTAT_MTIM));
  SHOW(sbx_file_stat_put(3, 0, P("linked"), &st, SBX_FILESTAT_MTIM_NOW));
  SHOW(sbx_file_stat_put(3, 0, P("linked"), &st, SBX_FILESTAT_SIZE));
  SHOW(sbx_file_stat_put(3, 0, P("linked"), &st, 0));
  SHOW(sbx_file_stat_put(3, 0, P("linked"), &st, 0x20));
  SHOW(sbx_file_stat_put(3, 0, P("nope"), &st, SBX_FILESTAT_MTIM));
  st.st_mtim = 0xffffffffffffffffull;
  SHOW(sbx_file_stat_put(3, 0, P("linked"), &st, SBX_FILESTAT_MTIM));
  st.st_mtim = 1000000000ull * 86400;
  SHOW(sbx_file_stat_put(3, 0, P("linked"), &st, SBX_FILESTAT_MTIM));
  OK(sbx_file_stat_get(3, 0, P("linked"), &st));
  SHOW(st.st_mtim);
  SHOW(sbx_file_symlink(P("linked"), 3, P("sl")));
  SHOW(sbx_file_stat_put(3, 0, P("sl"), &st, SBX_FILESTAT_MTIM));
  SHOW(sbx_file_stat_put(3, 1, P("sl"), &st, SBX_FILESTAT_MTIM));
  SHOW(sbx_file_readlink(3, P("sl"), buf, 3, &n));
  SHOW(n);
  SHOW(sbx_file_readlink(3, P("linked"), buf, 3, &n));
  /* readdir cookies */
  char dbuf[512];
  SHOW(sbx_file_readdir(3, dbuf, sizeof dbuf, 0, &n));
  SHOW(n);
  uint64_t cookie = 0;
  size_t off = 0;
  while (off + sizeof(sbx_dirent_t) <= n) {
    sbx_dirent_t *de = (sbx_dirent_t *)(dbuf + off);
    out(dbuf + off + 24, de->d_namlen);
    out_str(" next=");
    out_num(de->d_next);
    out_str(" type=");
    out_num(de->d_type);
    out_str("\n");
    off += 24 + de->d_namlen;
    cookie = de->d_next;
  }
  SHOW(sbx_file_readdir(3, dbuf, 30, 2, &n));
  SHOW(n);
  SHOW(((sbx_dirent_t *)dbuf)->d_next);
  SHOW(sbx_file_readdir(3, dbuf, 0, 0, &n));
  SHOW(n);
}

static void probe4(void) {
  sbx_fd_t o, o2;
  size_t n;
  char buf[64];
  uint64_t pos;
  sbx_filestat_t st = {0};
  sbx_ciovec_t w = {"hello world", 11};
  sbx_iovec_t r = {buf, sizeof buf};
  OK(sbx_fd_create1(SBX_FILETYPE_SHARED_MEMORY, &o));
  SHOW(fdstat_of(o).fs_rights_base);
  SHOW(fdstat_of(o).fs_rights_inheriting);
  SHOW(sbx_fd_write(o, &w, 1, &n));
  SHOW(sbx_fd_seek(o, 0, SBX_WHENCE_CUR, &pos));
  SHOW(pos);
  st.st_size = 5;
  SHOW(sbx_file_stat_fput(o, &st, SBX_FILESTAT_SIZE));
  SHOW(sbx_fd_seek(o, 0, SBX_WHENCE_CUR, &pos));
  SHOW(pos);
  SHOW(sbx_fd_read(o, &r, 1, &n));
  SHOW(n);
  st.st_size = 20;
  SHOW(sbx_file_stat_fput(o, &st, SBX_FILESTAT_SIZE));
  SHOW(sbx_fd_pread(o, &r, 1, 0, &n));
  SHOW(n);
  SHOW(buf[5]);
  SHOW(buf[10]);
  SHOW(sbx_fd_pread(o, &r, 1, 100, &n));
  SHOW(n);
  SHOW(sbx_fd_pwrite(o, &w, 1, (1u << 30) - 5, &n));
  SHOW(sbx_fd_pwrite(o, &w, 1, (1u << 30) - 11, &n));
  SHOW(n);
  OK(sbx_file_stat_fget(o, &st));
  SHOW(st.st_size);
  st.st_size = (1u << 30) + 1;
  SHOW(sbx_file_stat_fput(o, &st, SBX_FILESTAT_SIZE));
  st.st_size = 0;
  SHOW(sbx_file_stat_fput(o, &st, SBX_FILESTAT_SIZE));
  SHOW(sbx_fd_seek(o, -1, SBX_WHENCE_SET, &pos));
  SHOW(sbx_fd_seek(o, 10, SBX_WHENCE_END, &pos));
  SHOW(pos);
  SHOW(sbx_fd_write(o, &w, 1, &n));
  OK(sbx_file_stat_fget(o, &st));
  SHOW(st.st_size);
  SHOW(st.st_filetype);
  SHOW(st.st_nlink);
  SHOW(sbx_fd_dup(o, &o2));
  SHOW(sbx_fd_seek(o2, 0, SBX_WHENCE_CUR, &pos));
  SHOW(pos);
  SHOW(set_flags(o, SBX_FDFLAG_APPEND));
  SHOW(sbx_fd_sync(o));
  SHOW(sbx_fd_datasync(o));
  SHOW(sbx_file_allocate(o, 0, 10));
  SHOW(sbx_file_advise(o, 0, 10, 1));
  sbx_subscription_t s = {0};
  sbx_event_t ev;
  uint32_t ne;
  s.type = SBX_EVENTTYPE_FD_READ;
  s.u.fd_readwrite.fd = o;
  SHOW(sbx_fd_seek(o, 3, SBX_WHENCE_SET, &pos));
  SHOW(sbx_poll(&s, &ev, 1, &ne));
  SHOW(ev.u.fd_readwrite.nbytes);
  SHOW(ev.error);
  SHOW(sbx_fd_seek(o, 100, SBX_WHENCE_SET, &pos));
  SHOW(sbx_poll(&s, &ev, 1, &ne));
  SHOW(ev.u.fd_readwrite.nbytes);
  SHOW(sbx_fd_create1(SBX_FILETYPE_REGULAR_FILE, &o2));
  SHOW(sbx_fd_create2(SBX_FILETYPE_SOCKET_DGRAM + 1, &o2, &o2));
  SHOW(sbx_fd_close(o));
  SHOW(sbx_fd_close(o));
}

/* poll_nbytes returns the nbytes of an fd_read event on fd, which must be
 * ready at once. */
static uint64_t poll_nbytes(sbx_fd_t fd) {
  sbx_subscription_t s = {0};
  sbx_event_t ev = {0};
  uint32_t ne = 0;
  s.type = SBX_EVENTTYPE_FD_READ;
  s.u.fd_readwrite.fd = fd;
  OK(sbx_poll(&s, &ev, 1, &ne));
  EQ(ne, 1);
  EQ(ev.error, 0);
  return ev.u.fd_readwrite.nbytes;
}

/* An fd_read event on a regular file or a byte object reports the bytes
 * left to read past the handle's offset in nbytes (0 at or past the
 * end). */
static void poll_nbytes_left(void) {
  sbx_fd_t f, o;
  size_t n;
  uint64_t pos;
  OK(open_at(3, P("full"), 0, R_READ | SBX_RIGHT_POLL_FD_READWRITE, 0, 0, &f));
  OK(sbx_fd_seek(f, 1, SBX_WHENCE_SET, &pos));
  EQ(poll_nbytes(f), 3);
  OK(sbx_fd_seek(f, 9, SBX_WHENCE_SET, &pos));
  EQ(poll_nbytes(f), 0);

  OK(sbx_fd_create1(SBX_FILETYPE_SHARED_MEMORY, &o));
  EQ(poll_nbytes(o), 0);
  sbx_ciovec_t w = {"hello world", 11};
  OK(sbx_fd_write(o, &w, 1, &n));
  OK(sbx_fd_seek(o, 3, SBX_WHENCE_SET, &pos));
  EQ(poll_nbytes(o), 8);
  OK(sbx_fd_seek(o, 20, SBX_WHENCE_SET, &pos));
  EQ(poll_nbytes(o), 0);
}

static void probe5(void) {
  sbx_fd_t f, r, fw, p;
  OK(open_at(3, P("full"), 0, R_READ, 0, 0, &f));
  OK(sbx_cap_revocable(f, &fw, &r));
  OK(sbx_cap_revoke(r));
  static const char child[] = "\x08" "exec-child";
  sbx_fd_t one[] = {fw};
  sbx_fd_t two[] = {fw, fw};
  SHOW(sbx_proc_spawn(4, (void *)child, sizeof child, one, 1, &p));
  SHOW(sbx_proc_exec(4, (void *)child, sizeof child, two, 2));
  SHOW(sbx_proc_exec(4, (void *)child, sizeof child, one, 1));
}

static void exec_child(void) {
  sbx_fdstat_t st;
  sbx_errno_t e = sbx_fd_stat_get(0, &st);
  out_str("exec-child: fd 0 stat ");
  out_num(e);
  out_str("\n");
  sbx_proc_exit(7);
}

/* proc_exec refuses a revoked handle in its list with ENOTCAPABLE, as
 * proc_spawn does, listed once or twice, and changes nothing: the table
 * is as it was. fd 4 is this program's module. */
static void exec_revoked(void) {
  sbx_fd_t f, r, fw, p;
  OK(open_at(3, P("full"), 0, R_READ, 0, 0, &f));
  OK(sbx_cap_revocable(f, &fw, &r));
  OK(sbx_cap_revoke(r));
  static const char child[] = "\x08" "exec-child";
  sbx_fd_t one[] = {1, fw};
  sbx_fd_t two[] = {1, fw, fw};
  EXPECT(sbx_proc_spawn(4, (void *)child, sizeof child, one, 2, &p), SBX_ENOTCAPABLE);
  EXPECT(sbx_proc_exec(4, (void *)child, sizeof child, two, 3), SBX_ENOTCAPABLE);
  EXPECT(sbx_proc_exec(4, (void *)child, sizeof child, one, 2), SBX_ENOTCAPABLE);
  /* Nothing moved: the table is as it was. */
  sbx_fdstat_t st;
  OK(sbx_fd_stat_get(f, &st));
  OK(sbx_fd_stat_get(4, &st));
  EXPECT(sbx_fd_stat_get(fw, &st), SBX_ENOTCAPABLE);
}

static void probe6(void) {
  sbx_fd_t a, b, o, got[8];
  size_t n;
  char buf[64];
  sbx_recv_out_t ro;
  OK(sbx_fd_create2(SBX_FILETYPE_SOCKET_STREAM, &a, &b));
  OK(sbx_fd_create1(SBX_FILETYPE_SHARED_MEMORY, &o));
  sbx_fd_t one[] = {o};
  SHOW(send_fds(a, "", one, 1, &n));
  SHOW(n);
  OK(set_flags(b, SBX_FDFLAG_NONBLOCK));
  memset(&ro, 0, sizeof ro);
  SHOW(recv_fds(b, buf, sizeof buf, got, 4, 0, &ro));
  SHOW(ro.ro_datalen);
  SHOW(ro.ro_fdslen);
  SHOW(send_fds(a, "ab", 0, 0, &n));
  SHOW(send_fds(a, "cd", one, 1, &n));
  SHOW(send_fds(a, "ef", 0, 0, &n));
  memset(&ro, 0, sizeof ro);
  SHOW(recv_fds(b, buf, sizeof buf, got, 4, SBX_SOCK_RECV_WAITALL, &ro));
  SHOW(ro.ro_datalen);
  SHOW(ro.ro_fdslen);
  memset(&ro, 0, sizeof ro);
  SHOW(recv_fds(b, buf, 1, got, 4, 0, &ro));
  SHOW(ro.ro_datalen);
  SHOW(ro.ro_fdslen);
  memset(&ro, 0, sizeof ro);
  SHOW(recv_fds(b, buf, sizeof buf, got, 4, 0, &ro));
  SHOW(ro.ro_datalen);
  SHOW(ro.ro_fdslen);
  /* fd_read on a stream with fds queued */
  SHOW(send_fds(a, "gh", one, 1, &n));
  sbx_iovec_t r = {buf, sizeof buf};
  SHOW(sbx_fd_read(b, &r, 1, &n));
  SHOW(n);
  SHOW(sbx_fd_read(b, &r, 1, &n));
  /* dgram zero-length with fds */
  sbx_fd_t c, d;
  OK(sbx_fd_create2(SBX_FILETYPE_SOCKET_DGRAM, &c, &d));
  OK(set_flags(d, SBX_FDFLAG_NONBLOCK));
  SHOW(send_fds(c, "", one, 1, &n));
  memset(&ro, 0, sizeof ro);
  SHOW(recv_fds(d, buf, 0, got, 4, 0, &ro));
  SHOW(ro.ro_datalen);
  SHOW(ro.ro_fdslen);
  SHOW(ro.ro_flags);
  SHOW(send_fds(c, "xyz", one, 1, &n));
  SHOW(sbx_fd_read(d, &r, 1, &n));
  SHOW(n);
  SHOW(recv_fds(d, buf, sizeof buf, got, 4, 0, &ro));
  /* shutdown then send */
  OK(sbx_sock_shutdown(c, SBX_SHUT_WR));
  SHOW(send_fds(c, "x", 0, 0, &n));
  memset(&ro, 0, sizeof ro);
  SHOW(recv_fds(d, buf, sizeof buf, got, 4, 0, &ro));
  SHOW(ro.ro_datalen);
  OK(sbx_fd_close(a));
  SHOW(recv_fds(b, buf, sizeof buf, got, 4, 0, &ro));
  SHOW(ro.ro_datalen);
  SHOW(send_fds(b, "x", 0, 0, &n));
}

/* recv_expect receives on sock (non-blocking) into a 64-byte buffer with
 * room for 4 handles and checks the data and the number of handles. */
static void recv_expect(int line, sbx_fd_t sock, uint16_t flags, const char *want, size_t nfds) {
  char buf[64];
  sbx_fd_t got[4];
  sbx_recv_out_t ro = {0};
  sbx_errno_t e = recv_fds(sock, buf, sizeof buf, got, 4, flags, &ro);
  if (e != 0) fail(line, "sock_recv", e, 0);
  if (ro.ro_datalen != str_len(want) || !mem_eq(buf, want, ro.ro_datalen)) {
    out_str("received \"");
    out(buf, ro.ro_datalen);
    out_str("\"\n");
    fail(line, want, ro.ro_datalen, str_len(want));
  }
  if (ro.ro_fdslen != nfds) fail(line, "ro_fdslen", ro.ro_fdslen, nfds);
}

static void probe7(void) {
  sbx_fd_t a, b, o, f, d, r, fw, p;
  OK(sbx_fd_create2(SBX_FILETYPE_SOCKET_STREAM, &a, &b));
  OK(sbx_fd_create1(SBX_FILETYPE_SHARED_MEMORY, &o));
  OK(open_at(3, P("full"), 0, R_READ | SBX_RIGHT_FD_WRITE | SBX_RIGHT_POLL_FD_READWRITE, 0, 0, &f));
  OK(open_at(3, P("."), SBX_O_DIRECTORY, R_DIR | SBX_RIGHT_POLL_FD_READWRITE, R_READ, 0, &d));
  OK(sbx_cap_revocable(f, &fw, &r));
  static const char child[] = "\x08" "exec-child";
  OK(sbx_proc_spawn(4, (void *)child, sizeof child, 0, 0, &p));
  sbx_fd_t fds[] = {0, 1, 3, 4, a, o, f, d, r, p};
  for (unsigned i = 0; i < sizeof fds / sizeof fds[0]; i++) {
    for (int t = SBX_EVENTTYPE_FD_READ; t <= SBX_EVENTTYPE_FD_WRITE; t++) {
      sbx_subscription_t s[2] = {0};
      sbx_event_t ev[2] = {0};
      uint32_t ne = 0;
      s[0].type = t;
      s[0].u.fd_readwrite.fd = fds[i];
      s[1].type = SBX_EVENTTYPE_CLOCK;
      s[1].u.clock.clock_id = SBX_CLOCK_MONOTONIC;
      s[1].u.clock.timeout = 1;
      s[1].userdata = 99;
      sbx_errno_t e = sbx_poll(s, ev, 2, &ne);
      out_str("fd ");
      out_num(fds[i]);
      out_str(t == SBX_EVENTTYPE_FD_READ ? " read" : " write");
      out_str(": poll ");
      out_num(e);
      out_str(" n ");
      out_num(ne);
      out_str(" ud ");
      out_num(ev[0].userdata);
      out_str(" err ");
      out_num(ev[0].error);
      out_str(" nbytes ");
      out_num(ev[0].u.fd_readwrite.nbytes);
      out_str(" flags ");
      out_num(ev[0].u.fd_readwrite.flags);
      out_str("\n");
    }
  }
}

/* fd 3 is a listener with a connection waiting, and the table has room
 * for one more handle. Filled, sock_accept is EMFILE and leaves the
 * connection queued: once there is room it is accepted, and answered. */
static void accept_full(void) {
  sbx_fd_t o, c;
  OK(sbx_fd_create1(SBX_FILETYPE_SHARED_MEMORY, &o));
  EXPECT(sbx_fd_create1(SBX_FILETYPE_SHARED_MEMORY, &c), SBX_EMFILE);
  EXPECT(sbx_sock_accept(3, &c), SBX_EMFILE);
  OK(sbx_fd_close(o));
  OK(sbx_sock_accept(3, &c));
  write_str(c, "ok");
  OK(sbx_fd_close(c));
}

/* sock_recv bounds-checks the whole ri_fds range, as every range: one
 * that crosses the end of memory is EFAULT, and nothing is received,
 * even though no message brings more than 64 handles. */
static void recv_fds_end(void) {
  sbx_fd_t a, b, o;
  size_t n;
  char buf[8];
  sbx_recv_out_t ro = {0};
  sbx_fd_t *room64 = (sbx_fd_t *)(__builtin_wasm_memory_size(0) * 65536 - 64 * 4);
  OK(sbx_fd_create2(SBX_FILETYPE_SOCKET_DGRAM, &a, &b));
  OK(sbx_fd_create1(SBX_FILETYPE_SHARED_MEMORY, &o));
  OK(set_flags(b, SBX_FDFLAG_NONBLOCK));
  sbx_fd_t one[] = {o};
  OK(send_fds(a, "m", one, 1, &n));
  EXPECT(recv_fds(b, buf, sizeof buf, room64, 65, 0, &ro), SBX_EFAULT);
  EXPECT(recv_fds(b, buf, sizeof buf, room64, 0x40000000u, 0, &ro), SBX_EFAULT);
  OK(recv_fds(b, buf, sizeof buf, room64, 64, 0, &ro));
  EQ(ro.ro_datalen, 1);
  EQ(ro.ro_fdslen, 1);
}

int main_dispatch(const char *mode) {
  if (streq(mode, "open-out")) open_out();
  else if (streq(mode, "rw-out")) rw_out();
  else if (streq(mode, "recv-fds-end")) recv_fds_end();
  else if (streq(mode, "accept-full")) accept_full();
  else if (streq(mode, "poll-nbytes")) poll_nbytes_left();
  else if (streq(mode, "buf-end")) buf_end();
  else if (streq(mode, "poll-kind")) poll_kind();
  else if (streq(mode, "probe")) probe();
  else if (streq(mode, "probe7")) probe7();
  else if (streq(mode, "probe6")) probe6();
  else if (streq(mode, "exec-revoked")) exec_revoked();
  else if (streq(mode, "probe5")) probe5();
  else if (streq(mode, "exec-child")) exec_child();
  else if (streq(mode, "probe4")) probe4();
  else if (streq(mode, "probe3")) probe3();
  else if (streq(mode, "probe2")) probe2();
  else if (streq(mode, "create2-out")) create2_out();
  else return 0;
  return 1;
}

void _start(void) {
  if (!main_dispatch(argdata_string())) sbx_proc_exit(3);
  sbx_proc_exit(0);
}
