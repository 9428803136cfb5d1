/* sock_send / sock_recv / sock_shutdown / sock_accept; the argdata string
 * picks the part. Reports go to stdout (fd 1).
 *   "fdpass":     only stdio; makes its own channels and objects.
 *   "server":     3 a listener; serves one connection.
 *   "recv-block", "waitall": 3 a channel end whose peer the test holds.
 *   "inflight":   only stdio; run with a limit of 8 handles in flight. */
#include "rt.h"

#define OUT 1

static sbx_errno_t recv_flags(sbx_fd_t s, char *buf, size_t cap, sbx_fd_t *fds, size_t nfds, uint16_t flags,
                              sbx_recv_out_t *out) {
  sbx_iovec_t iov = {buf, cap - 1};
  sbx_recv_in_t in = {&iov, 1, fds, nfds, flags};
  sbx_errno_t e = sbx_sock_recv(s, &in, out);
  buf[e == 0 ? out->ro_datalen : 0] = 0;
  return e;
}

static void fdpass(void) {
  sbx_fd_t a, b, s1, s2, obj, fds[4];
  char buf[64];
  sbx_recv_out_t ro;
  sbx_errno_t e;
  sbx_fd_create2(SBX_FILETYPE_SOCKET_DGRAM, &a, &b);
  sbx_fd_create2(SBX_FILETYPE_SOCKET_STREAM, &s1, &s2);
  sbx_fd_create1(SBX_FILETYPE_SHARED_MEMORY, &obj);
  write_str(obj, "obj");

  /* More handles than ri_fds has room for: the rest are closed. */
  sbx_fd_t three[3] = {obj, obj, s1};
  sendfds(a, three, 3, "three");
  e = recv_flags(b, buf, sizeof buf, fds, 1, 0, &ro);
  sayf(OUT, "truncated: %s %s fds %u flags %u new fd %s", ename(e), buf, ro.ro_fdslen, (uint32_t)ro.ro_flags,
       fdkind(fds[0]));
  sbx_fd_close(fds[0]);

  /* PEEK leaves data and handles queued. */
  sendfds(a, &obj, 1, "peek");
  e = recv_flags(b, buf, sizeof buf, fds, 4, SBX_SOCK_RECV_PEEK, &ro);
  sayf(OUT, "peek: %s %s fds %u", ename(e), buf, ro.ro_fdslen);
  e = recv_flags(b, buf, sizeof buf, fds, 4, 0, &ro);
  sayf(OUT, "then read: %s %s fds %u", ename(e), buf, ro.ro_fdslen);
  sbx_fd_close(fds[0]);

  /* A datagram longer than the buffer is cut. */
  sendf(a, "long message");
  e = recv_flags(b, buf, 5, fds, 4, 0, &ro);
  sayf(OUT, "data truncated: %s %s len %u flags %u", ename(e), buf, ro.ro_datalen, (uint32_t)ro.ro_flags);

  /* Handles the sender does not hold, or no longer may use, are refused
   * and nothing is sent. */
  sbx_fd_t closed = 60;
  sayf(OUT, "send closed fd: %s", ename(sendfds(a, &closed, 1, "x")));
  sbx_fd_t fwd, rev;
  sbx_cap_revocable(obj, &fwd, &rev);
  sbx_cap_revoke(rev);
  sayf(OUT, "send revoked: %s", ename(sendfds(a, &fwd, 1, "x")));
  sbx_fdstat_t nb = {0};
  nb.fs_flags = SBX_FDFLAG_NONBLOCK;
  sbx_fd_stat_put(b, &nb, SBX_FDSTAT_FLAGS);
  sayf(OUT, "nothing was sent: %s", ename(recv_flags(b, buf, sizeof buf, fds, 4, 0, &ro)));

  /* Rights travel as the sender holds them, narrowed. */
  sbx_fd_t ro_obj;
  sbx_fd_dup(obj, &ro_obj);
  sbx_fdstat_t narrow = {0};
  narrow.fs_rights_base = SBX_RIGHT_FD_READ | SBX_RIGHT_FD_SEEK;
  sbx_fd_stat_put(ro_obj, &narrow, SBX_FDSTAT_RIGHTS);
  sendfds(a, &ro_obj, 1, "narrow");
  recv_flags(b, buf, sizeof buf, fds, 4, 0, &ro);
  sbx_fdstat_t st;
  sbx_fd_stat_get(fds[0], &st);
  char rb[8] = {0};
  sbx_iovec_t riov = {rb, 3};
  size_t n;
  sbx_fd_pread(fds[0], &riov, 1, 0, &n);
  sayf(OUT, "narrowed: rights %s write %s read %s", st.fs_rights_base == narrow.fs_rights_base ? "kept" : "changed",
       ename(write_str(fds[0], "x")), rb);

  /* On a stream, handles arrive with the first byte of their message. */
  sendf(s2, "ab");
  sendfds(s2, &obj, 1, "cd");
  e = recv_flags(s1, buf, sizeof buf, fds, 4, 0, &ro);
  sayf(OUT, "stream: %s %s fds %u", ename(e), buf, ro.ro_fdslen);
  e = recv_flags(s1, buf, sizeof buf, fds, 4, 0, &ro);
  sayf(OUT, "stream: %s %s fds %u", ename(e), buf, ro.ro_fdslen);

  /* Shutdown and hang-up. */
  sayf(OUT, "shutdown how 0: %s", ename(sbx_sock_shutdown(s2, 0)));
  sayf(OUT, "shutdown a byte object: %s", ename(sbx_sock_shutdown(obj, SBX_SHUT_WR)));
  sayf(OUT, "shutdown: %s", ename(sbx_sock_shutdown(s2, SBX_SHUT_WR)));
  e = recv_flags(s1, buf, sizeof buf, fds, 4, 0, &ro);
  sayf(OUT, "after peer SHUT_WR: %s len %u", ename(e), ro.ro_datalen);
  sayf(OUT, "send after SHUT_WR: %s", ename(sendf(s2, "late")));
  sbx_fd_close(a);
  e = recv_flags(b, buf, sizeof buf, fds, 4, 0, &ro);
  sayf(OUT, "after peer close: %s len %u", ename(e), ro.ro_datalen);
  sayf(OUT, "send to closed peer: %s", ename(sendf(b, "x")));

  /* Bad arguments. */
  sbx_ciovec_t civ = {"x", 1};
  sbx_send_in_t in = {&civ, 1, 0, 0, 1};
  sbx_send_out_t so;
  sayf(OUT, "send flags: %s", ename(sbx_sock_send(s1, &in, &so)));
  sayf(OUT, "recv flags: %s", ename(recv_flags(s1, buf, sizeof buf, fds, 4, 0x100, &ro)));
  sayf(OUT, "send on a byte object: %s", ename(sendf(obj, "x")));
  sayf(OUT, "recv_out out of memory: %s", ename(sbx_sock_recv(s1, &in, (void *)0xfffffff0)));
  sayf(OUT, "accept on a channel: %s", ename(sbx_sock_accept(s1, &fds[0])));
}

static void server(void) {
  sbx_fd_t c;
  sbx_errno_t ae = sbx_sock_accept(3, &c), e = ae;
  char buf[64];
  sbx_recv_out_t ro;
  size_t len = 0;
  while (e == 0 && (len == 0 || buf[len - 1] != '\n')) {
    sbx_iovec_t iov = {buf + len, sizeof buf - 1 - len};
    sbx_recv_in_t in = {&iov, 1, 0, 0, 0};
    e = sbx_sock_recv(c, &in, &ro);
    if (e || ro.ro_datalen == 0) break;
    len += ro.ro_datalen;
  }
  buf[len] = 0;
  for (size_t i = 0; i < len; i++)
    if (buf[i] >= 'a' && buf[i] <= 'z') buf[i] -= 32;
  sbx_ciovec_t civ = {buf, len};
  sbx_send_in_t in = {&civ, 1, 0, 0, 0};
  sbx_send_out_t so;
  sbx_errno_t se = sbx_sock_send(c, &in, &so);
  sbx_errno_t sh = sbx_sock_shutdown(c, SBX_SHUT_WR);
  sbx_fd_t x;
  sayf(OUT, "served: accept %s kind %s recv %s send %s %u shutdown %s fd passing %s", ename(ae), fdkind(c),
       ename(e), ename(se), so.so_datalen, ename(sh), ename(sendfds(c, &c, 1, "x")));
  sbx_fdstat_t nb = {0};
  nb.fs_flags = SBX_FDFLAG_NONBLOCK;
  sbx_fd_stat_put(3, &nb, SBX_FDSTAT_FLAGS);
  sayf(OUT, "non-blocking accept: %s", ename(sbx_sock_accept(3, &x)));
}

/* waitall receives 5 bytes with WAITALL from fd 3, which the test
 * writes in two parts with a pause between them. */
static void waitall(void) {
  write_str(3, "waiting");
  char buf[8];
  sbx_fd_t fds[4];
  sbx_recv_out_t ro;
  sbx_errno_t e = recv_flags(3, buf, 6, fds, 4, SBX_SOCK_RECV_WAITALL, &ro);
  sayf(OUT, "waitall: %s %s", ename(e), buf);
}

static void recv_block(void) {
  write_str(3, "waiting");
  char buf[16];
  sbx_recv_out_t ro;
  sayf(OUT, "recv returned: %s", ename(recvmsg(3, buf, sizeof buf, 0, 0, &ro)));
  sayf(OUT, "send on the revoked handle: %s", ename(sendf(3, "x")));
}

/* inflight sends handles until the limit on handles in flight refuses
 * one, receives one and drops the rest, then builds a chain of channel
 * ends, each queued in the next, keeping only the newest: every link in
 * flight counts, at any depth. */
static void inflight(void) {
  sbx_fd_t a, b, obj, fds[4];
  char buf[16];
  sbx_recv_out_t ro;
  sbx_errno_t e;
  uint32_t n = 0;
  sbx_fd_create2(SBX_FILETYPE_SOCKET_DGRAM, &a, &b);
  sbx_fd_create1(SBX_FILETYPE_SHARED_MEMORY, &obj);
  while ((e = sendfds(a, &obj, 1, "x")) == 0) n++;
  sayf(OUT, "queued: %u, then %s", n, ename(e));
  e = recv_flags(b, buf, sizeof buf, fds, 4, 0, &ro);
  sbx_fd_close(fds[0]);
  sayf(OUT, "received one: %s fds %u", ename(e), ro.ro_fdslen);
  sayf(OUT, "send one more: %s", ename(sendfds(a, &obj, 1, "x")));
  sayf(OUT, "and another: %s", ename(sendfds(a, &obj, 1, "x")));
  sbx_fd_close(b); /* drops the 8 queued at b */
  sbx_fd_close(a);

  sbx_fd_t x, y, last = 0;
  n = 0;
  for (;;) {
    if ((e = sbx_fd_create2(SBX_FILETYPE_SOCKET_DGRAM, &x, &y)) != 0) break;
    if (n > 0 && (e = sendfds(x, &last, 1, "link")) != 0) {
      sbx_fd_close(x);
      sbx_fd_close(y);
      break;
    }
    if (n > 0) sbx_fd_close(last);
    sbx_fd_close(x);
    last = y;
    if (++n == 100000) break;
  }
  sayf(OUT, "chain: %u ends, then %s", n, ename(e));
  sbx_fd_close(last); /* drops the whole chain */
  sbx_fd_create2(SBX_FILETYPE_SOCKET_DGRAM, &a, &b);
  sayf(OUT, "after the chain was dropped: %s", ename(sendfds(a, &obj, 1, "x")));
}

void _start(void) {
  const char *mode = argdata_string();
  if (streq(mode, "fdpass")) fdpass();
  else if (streq(mode, "server")) server();
  else if (streq(mode, "recv-block")) recv_block();
  else if (streq(mode, "waitall")) waitall();
  else if (streq(mode, "inflight")) inflight();
  else sbx_proc_exit(3);
  sbx_proc_exit(0);
}
