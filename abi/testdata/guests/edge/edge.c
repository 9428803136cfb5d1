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

/* fd_dup and fd_create1 with fd_out out of bounds are EFAULT and make
 * nothing: no capability is derived or created (the test counts the
 * kernel's events), so none is closed behind the guest's back. */
static void new_out(void) {
  EXPECT(sbx_fd_dup(1, BAD), SBX_EFAULT);
  EXPECT(sbx_fd_create1(SBX_FILETYPE_SHARED_MEMORY, BAD), SBX_EFAULT);
}

/* entries_from counts the entries of fd 3's listing from cookie on. */
static uint32_t entries_from(uint64_t cookie) {
  static char buf[4096];
  uint32_t used = 0, n = 0, off = 0;
  OK(sbx_file_readdir(3, buf, sizeof buf, cookie, &used));
  CHECK(used < sizeof buf);
  while (off + sizeof(sbx_dirent_t) <= used) {
    sbx_dirent_t d;
    memcpy(&d, buf + off, sizeof d);
    off += sizeof d + d.d_namlen;
    n++;
  }
  return n;
}

/* file_readdir and file_readlink with bufused_out out of bounds are
 * EFAULT and do nothing: readdir from cookie 0 keeps the listing it had
 * rather than take a new one, and readlink writes nothing to buf. */
static void bufused_out(void) {
  sbx_fd_t f;
  char buf[64];
  uint32_t n = entries_from(0);
  OK(open_at(3, P("new"), SBX_O_CREAT, R_READ, 0, 0, &f));
  EXPECT(sbx_file_readdir(3, buf, sizeof buf, 0, BAD), SBX_EFAULT);
  EQ(entries_from(n), 0);
  EQ(entries_from(0), n + 1);

  OK(sbx_file_symlink(P("target"), 3, P("ln")));
  memset(buf, 'x', sizeof buf);
  EXPECT(sbx_file_readlink(3, P("ln"), buf, sizeof buf, BAD), SBX_EFAULT);
  CHECK(buf[0] == 'x');
  uint32_t used = 0;
  OK(sbx_file_readlink(3, P("ln"), buf, sizeof buf, &used));
  EQ(used, 6);
  CHECK(mem_eq(buf, "target", 6));
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
  EXPECT(sbx_fd_describe(3, 0, 0, &dsize), SBX_ENOBUFS);
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

/* send_fds sends msg and the handles fds on sock; *sent is so_datalen. */
static sbx_errno_t send_fds(sbx_fd_t sock, const char *msg, const sbx_fd_t *fds, size_t nfds, size_t *sent) {
  sbx_ciovec_t iov = {msg, str_len(msg)};
  sbx_send_in_t in = {&iov, 1, fds, nfds, 0};
  sbx_send_out_t so = {0};
  sbx_errno_t e = sbx_sock_send(sock, &in, &so);
  *sent = so.so_datalen;
  return e;
}

/* recv_fds receives into buf, with room for nfds handles at fds. */
static sbx_errno_t recv_fds(sbx_fd_t sock, char *buf, size_t len, sbx_fd_t *fds, size_t nfds, uint16_t flags,
                            sbx_recv_out_t *ro) {
  sbx_iovec_t iov = {buf, len};
  sbx_recv_in_t in = {&iov, 1, fds, nfds, flags};
  return sbx_sock_recv(sock, &in, ro);
}

/* recv_is receives on sock with flags into a buffer of len bytes, with
 * room for 4 handles, and checks that it got the bytes want and nfds
 * handles, closing them. */
#define RECV_IS(sock, len, flags, want, nfds)                                  \
  do {                                                                         \
    char rb_[16];                                                              \
    sbx_fd_t rf_[4];                                                           \
    sbx_recv_out_t ro_ = {0};                                                  \
    OK(recv_fds(sock, rb_, len, rf_, 4, flags, &ro_));                         \
    EQ(ro_.ro_datalen, str_len(want));                                         \
    CHECK(mem_eq(rb_, want, str_len(want)));                                   \
    EQ(ro_.ro_fdslen, nfds);                                                   \
    for (unsigned i_ = 0; i_ < ro_.ro_fdslen; i_++) OK(sbx_fd_close(rf_[i_])); \
  } while (0)

/* A stream read that returns handles returns bytes of the message they
 * came with only: it starts at that message's first byte and stops at its
 * end, WAITALL or not, and bytes sent later never join it. So a guest
 * knows which bytes came with which handles. (b is non-blocking: a read
 * that ran on would find nothing more rather than wait.) */
static void stream_handles(void) {
  sbx_fd_t a, b, o;
  size_t n;
  OK(sbx_fd_create2(SBX_FILETYPE_SOCKET_STREAM, &a, &b));
  OK(set_flags(b, SBX_FDFLAG_NONBLOCK));
  OK(sbx_fd_create1(SBX_FILETYPE_SHARED_MEMORY, &o));
  sbx_fd_t one[] = {o};
  /* Plain bytes, then a message with a handle, then plain bytes. */
  OK(send_fds(a, "ab", 0, 0, &n));
  OK(send_fds(a, "cd", one, 1, &n));
  OK(send_fds(a, "ef", 0, 0, &n));
  RECV_IS(b, 6, SBX_SOCK_RECV_WAITALL, "ab", 0);
  RECV_IS(b, 6, SBX_SOCK_RECV_PEEK, "cd", 0);
  RECV_IS(b, 6, SBX_SOCK_RECV_WAITALL, "cd", 1);
  RECV_IS(b, 6, 0, "ef", 0);
  /* Without WAITALL. */
  OK(send_fds(a, "gh", one, 1, &n));
  OK(send_fds(a, "ij", 0, 0, &n));
  RECV_IS(b, 8, 0, "gh", 1);
  RECV_IS(b, 8, 0, "ij", 0);
  /* Two messages with handles: one read takes one message's. */
  OK(send_fds(a, "m", one, 1, &n));
  OK(send_fds(a, "n", one, 1, &n));
  RECV_IS(b, 2, SBX_SOCK_RECV_WAITALL, "m", 1);
  RECV_IS(b, 2, SBX_SOCK_RECV_WAITALL, "n", 1);
  /* Handles sent with no bytes come alone, before the bytes sent next. */
  OK(send_fds(a, "", one, 1, &n));
  OK(send_fds(a, "k", 0, 0, &n));
  RECV_IS(b, 4, 0, "", 1);
  RECV_IS(b, 4, 0, "k", 0);
  /* The rest of a message whose handles came with a read cut short by
   * its buffer reads on into later bytes: it brings no handles. */
  OK(send_fds(a, "pq", one, 1, &n));
  RECV_IS(b, 1, 0, "p", 1);
  OK(send_fds(a, "rs", 0, 0, &n));
  RECV_IS(b, 8, 0, "qrs", 0);
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

/* What exec_revoked would run had proc_exec gone through: exit 7. */
static void exec_child(void) { sbx_proc_exit(7); }

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

/* type_of returns the filetype fd_stat_get reports for fd, after checking
 * that file_stat_fget, where the handle may call it, reports the same. */
static uint8_t type_of(sbx_fd_t fd) {
  sbx_fdstat_t fs;
  sbx_filestat_t st;
  OK(sbx_fd_stat_get(fd, &fs));
  if (!(fs.fs_rights_base & SBX_RIGHT_FILE_STAT_FGET)) return fs.fs_filetype;
  OK(sbx_file_stat_fget(fd, &st));
  EQ(st.st_filetype, fs.fs_filetype);
  return fs.fs_filetype;
}

/* fd_stat_get and file_stat_fget report the same filetype for every kind
 * of handle: a module (fd 4) is a REGULAR_FILE, as the executable file a
 * CloudABI proc_exec takes is, with its size; a process is a PROCESS. */
static void types_agree(void) {
  sbx_fd_t a, b, o, f, p;
  sbx_filestat_t st;
  OK(sbx_fd_create2(SBX_FILETYPE_SOCKET_STREAM, &a, &b));
  EQ(type_of(a), SBX_FILETYPE_SOCKET_STREAM);
  OK(sbx_fd_create2(SBX_FILETYPE_SOCKET_DGRAM, &a, &b));
  EQ(type_of(a), SBX_FILETYPE_SOCKET_DGRAM);
  OK(sbx_fd_create1(SBX_FILETYPE_SHARED_MEMORY, &o));
  EQ(type_of(o), SBX_FILETYPE_SHARED_MEMORY);
  OK(open_at(3, P("full"), 0, R_READ | SBX_RIGHT_FILE_STAT_FGET, 0, 0, &f));
  EQ(type_of(f), SBX_FILETYPE_REGULAR_FILE);
  EQ(type_of(3), SBX_FILETYPE_DIRECTORY);
  EQ(type_of(1), SBX_FILETYPE_UNKNOWN); /* a standard stream not a terminal's */
  EQ(type_of(4), SBX_FILETYPE_REGULAR_FILE);
  OK(sbx_file_stat_fget(4, &st));
  CHECK(st.st_size > 0);
  static const char child[] = "\x08" "exec-child";
  OK(sbx_proc_spawn(4, (void *)child, sizeof child, 0, 0, &p));
  EQ(type_of(p), SBX_FILETYPE_PROCESS);
}

/* With the table full, every call that would add a handle is EMFILE and
 * does nothing: no capability made (the test counts the kernel's events),
 * no file created, as open(2) finds a descriptor before it opens. With
 * one slot free, the calls that add two are EMFILE too. fd 3 is a
 * read-write directory; the table holds 8 handles. */
static void table_full(void) {
  sbx_fd_t o, x, y;
  sbx_filestat_t st;
  static const char child[] = "\x08" "exec-child";
  int k = 0;
  while (sbx_fd_create1(SBX_FILETYPE_SHARED_MEMORY, &o) == 0) k++;
  EQ(k, 3); /* stdio, the directory, the module and these three */
  EXPECT(sbx_fd_create1(SBX_FILETYPE_SHARED_MEMORY, &x), SBX_EMFILE);
  EXPECT(sbx_fd_dup(1, &x), SBX_EMFILE);
  EXPECT(sbx_fd_create2(SBX_FILETYPE_SOCKET_STREAM, &x, &y), SBX_EMFILE);
  EXPECT(sbx_cap_revocable(1, &x, &y), SBX_EMFILE);
  EXPECT(open_at(3, P("made"), SBX_O_CREAT, R_READ | R_WRITE, 0, 0, &x), SBX_EMFILE);
  EXPECT(sbx_file_stat_get(3, 0, P("made"), &st), SBX_ENOENT);
  EXPECT(sbx_proc_spawn(4, (void *)child, sizeof child, 0, 0, &x), SBX_EMFILE);
  OK(sbx_fd_close(o));
  EXPECT(sbx_fd_create2(SBX_FILETYPE_SOCKET_STREAM, &x, &y), SBX_EMFILE);
  EXPECT(sbx_cap_revocable(1, &x, &y), SBX_EMFILE);
  OK(sbx_fd_dup(1, &x));
}

/* proc_spawn refuses a list with a closed or revoked handle before it
 * makes any copy for the child (the test counts the kernel's events). */
static void spawn_bad_list(void) {
  sbx_fd_t f, r, fw, p;
  static const char child[] = "\x08" "exec-child";
  OK(open_at(3, P("full"), 0, R_READ, 0, 0, &f));
  OK(sbx_cap_revocable(f, &fw, &r));
  OK(sbx_cap_revoke(r));
  sbx_fd_t closed[] = {1, 2, 200};
  sbx_fd_t revoked[] = {1, 2, fw};
  EXPECT(sbx_proc_spawn(4, (void *)child, sizeof child, closed, 3, &p), SBX_EBADF);
  EXPECT(sbx_proc_spawn(4, (void *)child, sizeof child, revoked, 3, &p), SBX_ENOTCAPABLE);
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

/* dispatch runs the scenario mode names; 0 for an unknown one. */
static int dispatch(const char *mode) {
  if (streq(mode, "open-out")) open_out();
  else if (streq(mode, "rw-out")) rw_out();
  else if (streq(mode, "recv-fds-end")) recv_fds_end();
  else if (streq(mode, "accept-full")) accept_full();
  else if (streq(mode, "poll-nbytes")) poll_nbytes_left();
  else if (streq(mode, "buf-end")) buf_end();
  else if (streq(mode, "poll-kind")) poll_kind();
  else if (streq(mode, "exec-revoked")) exec_revoked();
  else if (streq(mode, "exec-child")) exec_child();
  else if (streq(mode, "create2-out")) create2_out();
  else if (streq(mode, "new-out")) new_out();
  else if (streq(mode, "types-agree")) types_agree();
  else if (streq(mode, "stream-handles")) stream_handles();
  else if (streq(mode, "bufused-out")) bufused_out();
  else if (streq(mode, "table-full")) table_full();
  else if (streq(mode, "spawn-bad-list")) spawn_bad_list();
  else return 0;
  return 1;
}

void _start(void) {
  if (!dispatch(argdata_string())) sbx_proc_exit(3);
  sbx_proc_exit(0);
}
