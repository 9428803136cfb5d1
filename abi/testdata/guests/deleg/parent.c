/* Delegation scenario, parent side. Table: 0-2 stdio, 3 a directory
 * (read-write grant), 4 the child's module.
 *
 * It spawns the child with exactly two handles: a revocable forwarder of
 * the directory narrowed to reading, and one end of a datagram channel.
 * It then sends the child a revocable forwarder of a read-only file over
 * the channel, relays the child's reports to stdout, revokes both
 * forwarders when the child is ready, and reports how the child exited. */
#include "rt.h"

#define OUT 1
#define DIR 3
#define CHILD_MODULE 4

static void relay(sbx_fd_t ch, const char *until) {
  char msg[256];
  sbx_recv_out_t ro;
  for (;;) {
    sbx_errno_t e = recvmsg(ch, msg, sizeof msg, 0, 0, &ro);
    if (e != 0) {
      sayf(OUT, "recv: %s", ename(e));
      return;
    }
    if (ro.ro_datalen == 0) return; /* the child's end is closed */
    if (until && streq(msg, until)) return;
    sayf(OUT, "child: %s", msg);
  }
}

void _start(void) {
  sbx_fd_t a, b;
  if (sbx_fd_create2(SBX_FILETYPE_SOCKET_DGRAM, &a, &b) != 0) sbx_proc_exit(10);

  sbx_fd_t fwd, rev;
  if (sbx_cap_revocable(DIR, &fwd, &rev) != 0) sbx_proc_exit(11);
  sbx_fdstat_t ro = {0};
  ro.fs_rights_base = SBX_RIGHT_FILE_OPEN | SBX_RIGHT_FILE_READDIR | SBX_RIGHT_FILE_STAT_GET;
  ro.fs_rights_inheriting = SBX_RIGHT_FD_READ | SBX_RIGHT_FD_SEEK | SBX_RIGHT_FD_TELL |
                            SBX_RIGHT_FILE_STAT_FGET | SBX_RIGHT_FILE_OPEN |
                            SBX_RIGHT_FILE_READDIR | SBX_RIGHT_FILE_STAT_GET;
  sayf(OUT, "narrow: %s", ename(sbx_fd_stat_put(fwd, &ro, SBX_FDSTAT_RIGHTS)));

  static const char argdata[] = "\x08" "child"; /* argdata string "child" */
  sbx_fd_t give[2] = {fwd, b};
  sbx_fd_t proc;
  sayf(OUT, "spawn: %s", ename(sbx_proc_spawn(CHILD_MODULE, (void *)argdata, sizeof argdata, give, 2, &proc)));
  /* The child holds its own copies; these are no longer needed here. */
  sbx_fd_close(fwd);
  sbx_fd_close(b);

  sbx_fd_t f, ffwd, frev;
  if (open_at(DIR, "notes.txt", 0, SBX_RIGHT_FD_READ | SBX_RIGHT_FD_SEEK | SBX_RIGHT_FILE_STAT_FGET, &f) != 0)
    sbx_proc_exit(12);
  if (sbx_cap_revocable(f, &ffwd, &frev) != 0) sbx_proc_exit(13);
  sayf(OUT, "send file: %s", ename(sendfds(a, &ffwd, 1, "here is a file")));
  sbx_fd_close(ffwd);

  relay(a, "ready");
  sayf(OUT, "revoke dir: %s", ename(sbx_cap_revoke(rev)));
  sayf(OUT, "revoke file: %s", ename(sbx_cap_revoke(frev)));
  sendf(a, "revoked");
  relay(a, 0);

  sbx_subscription_t sub = {0};
  sub.type = SBX_EVENTTYPE_PROC_TERMINATE;
  sub.u.proc_terminate.fd = proc;
  sbx_event_t ev;
  uint32_t n = 0;
  sbx_errno_t e = sbx_poll(&sub, &ev, 1, &n);
  sayf(OUT, "child exited: %s events %u error %s signal %u code %u", ename(e), n, ename(ev.error),
       (uint32_t)ev.u.proc_terminate.signal, ev.u.proc_terminate.exitcode);

  /* Revocation cut off the forwarders, not the parent's own handles. */
  sbx_fd_t again;
  sayf(OUT, "parent reopen: %s", ename(open_at(DIR, "notes.txt", 0, SBX_RIGHT_FD_READ, &again)));
  char buf[64];
  sbx_iovec_t iov = {buf, sizeof buf - 1};
  size_t got = 0;
  e = sbx_fd_pread(f, &iov, 1, 0, &got);
  buf[got] = 0;
  sayf(OUT, "parent file: %s %s", ename(e), buf);
  sbx_proc_exit(0);
}
