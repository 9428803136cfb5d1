/* Delegation scenario, child side. Table at start: 0 the narrowed,
 * revocable directory, 1 a channel end to the parent; nothing else. Every
 * finding is reported to the parent as one message. */
#include "rt.h"

#define DIR 0
#define CH 1

static char msg[256];
static sbx_recv_out_t ro;

void _start(void) {
  sendf(CH, "argdata %s", argdata_string());
  sendf(CH, "table 0=%s 1=%s 2=%s", fdkind(0), fdkind(1), fdkind(2));

  char desc[512];
  uint32_t size = 0;
  sbx_errno_t e = sbx_fd_describe(DIR, desc, sizeof desc, &size);
  sendf(CH, "describe dir: %s edge %s kind %s", ename(e),
        contains(desc, size, "\x08spawn", 7) ? "spawn" : "?",
        contains(desc, size, "\x08" "dir", 5) ? "dir" : "?");
  sbx_fdstat_t st;
  sbx_fd_stat_get(DIR, &st);
  sendf(CH, "dir may open for writing: %s",
        (st.fs_rights_inheriting & SBX_RIGHT_FD_WRITE) ? "yes" : "no");

  /* Reading is allowed... */
  sbx_fd_t f, x, inner;
  char buf[64];
  size_t n;
  e = open_at(DIR, "notes.txt", 0, SBX_RIGHT_FD_READ, &f);
  if (e == 0) e = read_some(f, buf, sizeof buf, &n);
  sendf(CH, "read notes: %s %s", ename(e), buf);
  /* ...writing is not. */
  sendf(CH, "create: %s", ename(open_at(DIR, "new.txt", SBX_O_CREAT, SBX_RIGHT_FD_WRITE, &x)));
  sendf(CH, "open for writing: %s", ename(open_at(DIR, "notes.txt", 0, SBX_RIGHT_FD_READ | SBX_RIGHT_FD_WRITE, &x)));
  sendf(CH, "open inner: %s", ename(open_at(DIR, "sub/inner.txt", 0, SBX_RIGHT_FD_READ | SBX_RIGHT_FD_SEEK, &inner)));

  /* The handle the parent sends over the channel. */
  sbx_fd_t got[4];
  e = recvmsg(CH, msg, sizeof msg, got, 4, &ro);
  sendf(CH, "received: %s '%s' with %u handle(s) at fd %u", ename(e), msg, ro.ro_fdslen, got[0]);
  e = read_some(got[0], buf, sizeof buf, &n);
  sendf(CH, "sent file: %s %s %s", ename(e), buf, fdkind(got[0]));
  sendf(CH, "write sent file: %s", ename(write_str(got[0], "scribble")));

  sendf(CH, "ready");
  recvmsg(CH, msg, sizeof msg, 0, 0, &ro);
  if (!streq(msg, "revoked")) sbx_proc_exit(99);

  char ibuf[16];
  sbx_iovec_t iov = {ibuf, sizeof ibuf};
  size_t nr;
  sendf(CH, "after: read inner %s", ename(sbx_fd_pread(inner, &iov, 1, 0, &nr)));
  sendf(CH, "after: read notes %s", ename(read_some(f, buf, sizeof buf, &n)));
  sendf(CH, "after: open %s", ename(open_at(DIR, "notes.txt", 0, SBX_RIGHT_FD_READ, &x)));
  sendf(CH, "after: read sent file %s", ename(read_some(got[0], buf, sizeof buf, &n)));
  sendf(CH, "after: describe dir %s", ename(sbx_fd_describe(DIR, desc, sizeof desc, &size)));
  sendf(CH, "after: table 0=%s 2=%s 3=%s 4=%s", fdkind(0), fdkind(2), fdkind(3), fdkind(4));
  sendf(CH, "after: channel %s", ename(sendf(CH, "still here")));
  sbx_proc_exit(7);
}
