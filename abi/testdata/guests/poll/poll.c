/* poll tests; the argdata string picks the scenario. Reports go to
 * stdout (fd 1). Handles beyond stdio are given by the test:
 *   clocks, errors:       none
 *   read, write-later:    3 a channel end (the two guests hold the ends)
 *   block, poll-revoke:   3 a channel end whose peer the test holds
 *   proc:                 3 the module of poll/child.c
 *   close-proc, spawn-wait: 3 the module of poll/child.c */
#include "../deleg/rt.h"

#define OUT 1

static sbx_subscription_t clock_sub(uint64_t ud, uint32_t clock, uint64_t timeout, uint16_t flags) {
  sbx_subscription_t s = {0};
  s.userdata = ud;
  s.type = SBX_EVENTTYPE_CLOCK;
  s.u.clock.clock_id = clock;
  s.u.clock.timeout = timeout;
  s.u.clock.flags = flags;
  return s;
}

static sbx_subscription_t fd_sub(uint64_t ud, uint8_t type, uint32_t fd) {
  sbx_subscription_t s = {0};
  s.userdata = ud;
  s.type = type;
  s.u.fd_readwrite.fd = fd;
  s.u.fd_readwrite.flags = 1; /* SUBSCRIPTION_FD_READWRITE_POLL: deprecated, must be set */
  return s;
}

#define MS 1000000ull

static void clocks(void) {
  sbx_subscription_t s[3];
  sbx_event_t ev[3];
  uint32_t n = 0;

  uint64_t t0 = now_ns(SBX_CLOCK_MONOTONIC);
  s[0] = clock_sub(7, SBX_CLOCK_MONOTONIC, 50 * MS, 0);
  sbx_errno_t e = sbx_poll(s, ev, 1, &n);
  uint64_t waited = now_ns(SBX_CLOCK_MONOTONIC) - t0;
  sayf(OUT, "relative: %s events %u userdata %U type %u error %s early %s", ename(e), n, ev[0].userdata,
       (uint32_t)ev[0].type, ename(ev[0].error), waited < 50 * MS ? "yes" : "no");

  /* The earlier of two clocks fires alone. */
  s[0] = clock_sub(2, SBX_CLOCK_MONOTONIC, 400 * MS, 0);
  s[1] = clock_sub(1, SBX_CLOCK_MONOTONIC, 30 * MS, 0);
  e = sbx_poll(s, ev, 2, &n);
  sayf(OUT, "two clocks: %s events %u first userdata %U", ename(e), n, ev[0].userdata);

  /* Absolute deadlines, on the realtime and the monotonic clock. */
  t0 = now_ns(SBX_CLOCK_MONOTONIC);
  s[0] = clock_sub(3, SBX_CLOCK_REALTIME, now_ns(SBX_CLOCK_REALTIME) + 50 * MS, SBX_SUBSCRIPTION_CLOCK_ABSTIME);
  e = sbx_poll(s, ev, 1, &n);
  waited = now_ns(SBX_CLOCK_MONOTONIC) - t0;
  sayf(OUT, "absolute realtime: %s events %u early %s", ename(e), n, waited < 50 * MS ? "yes" : "no");
  t0 = now_ns(SBX_CLOCK_MONOTONIC);
  s[0] = clock_sub(4, SBX_CLOCK_MONOTONIC, t0 + 50 * MS, SBX_SUBSCRIPTION_CLOCK_ABSTIME);
  e = sbx_poll(s, ev, 1, &n);
  waited = now_ns(SBX_CLOCK_MONOTONIC) - t0;
  sayf(OUT, "absolute monotonic: %s events %u early %s", ename(e), n, waited < 50 * MS ? "yes" : "no");
  s[0] = clock_sub(5, SBX_CLOCK_MONOTONIC, 1, SBX_SUBSCRIPTION_CLOCK_ABSTIME);
  e = sbx_poll(s, ev, 1, &n);
  sayf(OUT, "absolute past: %s events %u userdata %U", ename(e), n, ev[0].userdata);

  /* An always-ready handle wins over an hour-long clock: no wait. */
  t0 = now_ns(SBX_CLOCK_MONOTONIC);
  s[0] = clock_sub(6, SBX_CLOCK_MONOTONIC, 3600000 * MS, 0);
  s[1] = fd_sub(8, SBX_EVENTTYPE_FD_WRITE, OUT);
  e = sbx_poll(s, ev, 2, &n);
  sayf(OUT, "ready handle: %s events %u userdata %U type %u waited<1s %s", ename(e), n, ev[0].userdata,
       (uint32_t)ev[0].type, now_ns(SBX_CLOCK_MONOTONIC) - t0 < 1000 * MS ? "yes" : "no");
}

static void errors(void) {
  sbx_subscription_t s[8];
  sbx_event_t ev[8];
  uint32_t n = 0;
  sbx_fd_t a, b;
  sbx_fd_create2(SBX_FILETYPE_SOCKET_STREAM, &a, &b);
  sbx_fdstat_t st = {0};
  st.fs_rights_base = SBX_RIGHT_FD_READ; /* no poll_fd_readwrite */
  sbx_fd_stat_put(a, &st, SBX_FDSTAT_RIGHTS);

  sayf(OUT, "no subscriptions: %s", ename(sbx_poll(s, ev, 0, &n)));
  sayf(OUT, "too many: %s", ename(sbx_poll(s, ev, 4097, &n)));
  s[0] = fd_sub(1, SBX_EVENTTYPE_FD_READ, 99);
  sayf(OUT, "events out of memory: %s", ename(sbx_poll(s, (void *)0xfffffff0, 1, &n)));

  s[0] = fd_sub(1, SBX_EVENTTYPE_FD_READ, 99);
  s[1] = fd_sub(2, SBX_EVENTTYPE_FD_READ, a);
  s[2] = fd_sub(3, SBX_EVENTTYPE_CONDVAR, 0);
  s[3] = fd_sub(4, SBX_EVENTTYPE_LOCK_WRLOCK, 0);
  s[4] = fd_sub(5, 99, 0);
  s[5] = clock_sub(6, 77, 0, 0);
  s[6] = fd_sub(7, SBX_EVENTTYPE_PROC_TERMINATE, b);
  s[7] = clock_sub(8, SBX_CLOCK_MONOTONIC, 3600000 * MS, 0);
  sbx_errno_t e = sbx_poll(s, ev, 8, &n);
  sayf(OUT, "per-subscription errors: %s events %u", ename(e), n);
  for (uint32_t i = 0; i < n; i++)
    sayf(OUT, "  userdata %U type %u error %s", ev[i].userdata, (uint32_t)ev[i].type, ename(ev[i].error));
}

static void read_side(void) {
  sbx_subscription_t s[2] = {fd_sub(1, SBX_EVENTTYPE_FD_READ, 3), clock_sub(2, SBX_CLOCK_MONOTONIC, 10000 * MS, 0)};
  sbx_event_t ev[2];
  uint32_t n = 0;
  sbx_errno_t e = sbx_poll(s, ev, 2, &n);
  sayf(OUT, "read: %s events %u userdata %U type %u error %s", ename(e), n, ev[0].userdata, (uint32_t)ev[0].type,
       ename(ev[0].error));
  char buf[32];
  size_t got;
  e = read_some(3, buf, sizeof buf, &got);
  sayf(OUT, "data: %s %s", ename(e), buf);
  s[0] = fd_sub(3, SBX_EVENTTYPE_FD_WRITE, 3);
  e = sbx_poll(s, ev, 1, &n);
  sayf(OUT, "writable: %s events %u type %u", ename(e), n, (uint32_t)ev[0].type);
  /* The writer exits: its end closes, and the reader sees the hangup. */
  s[0] = fd_sub(4, SBX_EVENTTYPE_FD_READ, 3);
  e = sbx_poll(s, ev, 1, &n);
  sayf(OUT, "hangup: %s events %u flags %u", ename(e), n, (uint32_t)ev[0].u.fd_readwrite.flags);
}

static void write_later(void) {
  sleep_ns(100 * MS);
  write_str(3, "ping");
}

/* block tells the test it is about to wait, then waits on fd 3 with no
 * timeout; only a kill, a deadline or a revocation ends the wait. */
static void block(int revoke) {
  write_str(3, "waiting");
  sbx_subscription_t s = fd_sub(1, SBX_EVENTTYPE_FD_READ, 3);
  sbx_event_t ev;
  uint32_t n = 0;
  sbx_errno_t e = sbx_poll(&s, &ev, 1, &n);
  sayf(OUT, "poll returned: %s events %u error %s", ename(e), n, ename(ev.error));
  if (!revoke) sbx_proc_exit(1);
}

static sbx_errno_t wait_proc(sbx_fd_t proc, sbx_event_t *ev) {
  sbx_subscription_t s = fd_sub(9, SBX_EVENTTYPE_PROC_TERMINATE, proc);
  uint32_t n = 0;
  return sbx_poll(&s, ev, 1, &n);
}

static void proc(void) {
  static const char *modes[] = {"exit", "raise", "ignore", "trap"};
  for (int i = 0; i < 4; i++) {
    char ad[16];
    ad[0] = 0x08;
    size_t k = slen(modes[i]);
    memcpy(ad + 1, modes[i], k + 1);
    sbx_fd_t p;
    sbx_errno_t e = sbx_proc_spawn(3, ad, k + 2, 0, 0, &p);
    sbx_event_t ev = {0};
    sbx_errno_t pe = e ? e : wait_proc(p, &ev);
    sayf(OUT, "%s: spawn %s poll %s type %u signal %u code %u kind %s", modes[i], ename(e), ename(pe),
         (uint32_t)ev.type, (uint32_t)ev.u.proc_terminate.signal, ev.u.proc_terminate.exitcode, fdkind(p));
    sbx_fd_close(p);
  }
  /* A process handle is not readable. */
  sbx_fd_t p;
  static const char spin[] = "\x08spin";
  sbx_proc_spawn(3, (void *)spin, sizeof spin, 0, 0, &p);
  sbx_subscription_t s = fd_sub(1, SBX_EVENTTYPE_FD_READ, p);
  sbx_event_t ev;
  uint32_t n;
  sbx_poll(&s, &ev, 1, &n);
  sayf(OUT, "fd_read on a process: %s", ename(ev.error));
  sbx_fd_close(p); /* kills the spinning child */
}

/* close_proc spawns a spinning child holding one end of a channel, closes
 * the process handle, and waits for the child's end to close. */
static void close_proc(void) {
  sbx_fd_t a, b, p;
  sbx_fd_create2(SBX_FILETYPE_SOCKET_STREAM, &a, &b);
  static const char spin[] = "\x08spin";
  sbx_errno_t e = sbx_proc_spawn(3, (void *)spin, sizeof spin, &b, 1, &p);
  sbx_fd_close(b);
  sayf(OUT, "spawn: %s", ename(e));
  sleep_ns(20 * MS);
  sayf(OUT, "close: %s", ename(sbx_fd_close(p)));
  sbx_subscription_t s[2] = {fd_sub(1, SBX_EVENTTYPE_FD_READ, a), clock_sub(2, SBX_CLOCK_MONOTONIC, 10000 * MS, 0)};
  sbx_event_t ev[2];
  uint32_t n = 0;
  e = sbx_poll(s, ev, 2, &n);
  sayf(OUT, "child gone: %s userdata %U hangup %u", ename(e), ev[0].userdata,
       (uint32_t)ev[0].u.fd_readwrite.flags);
}

/* spawn_wait spawns a spinning child and waits for it forever; the test
 * kills this guest. */
static void spawn_wait(void) {
  sbx_fd_t p;
  static const char spin[] = "\x08spin";
  sbx_errno_t e = sbx_proc_spawn(3, (void *)spin, sizeof spin, 0, 0, &p);
  sayf(OUT, "spawn: %s", ename(e));
  sbx_event_t ev;
  wait_proc(p, &ev);
  sayf(OUT, "child ended on its own");
}

void _start(void) {
  const char *mode = argdata_string();
  if (streq(mode, "clocks")) clocks();
  else if (streq(mode, "errors")) errors();
  else if (streq(mode, "read")) read_side();
  else if (streq(mode, "write-later")) write_later();
  else if (streq(mode, "block")) block(0);
  else if (streq(mode, "poll-revoke")) block(1);
  else if (streq(mode, "proc")) proc();
  else if (streq(mode, "close-proc")) close_proc();
  else if (streq(mode, "spawn-wait")) spawn_wait();
  else sbx_proc_exit(3);
  sbx_proc_exit(0);
}
