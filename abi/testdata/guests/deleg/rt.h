/* Minimal runtime for freestanding test guests (clang --target=wasm32
 * -nostdlib): the memory functions the compiler may call, formatting, and
 * wrappers that write lines to an fd or send them as messages. Each guest
 * is one translation unit that includes this file once. */
#ifndef SBX_TEST_RT_H
#define SBX_TEST_RT_H

#include <sandboxd.h>
#include <stdarg.h>

void *memset(void *d, int c, size_t n) {
  unsigned char *p = d;
  while (n--) *p++ = (unsigned char)c;
  return d;
}

void *memcpy(void *d, const void *s, size_t n) {
  unsigned char *p = d;
  const unsigned char *q = s;
  while (n--) *p++ = *q++;
  return d;
}

int memcmp(const void *a, const void *b, size_t n) {
  const unsigned char *p = a, *q = b;
  for (; n; n--, p++, q++)
    if (*p != *q) return *p - *q;
  return 0;
}

static size_t slen(const char *s) {
  size_t n = 0;
  while (s[n]) n++;
  return n;
}

static int streq(const char *a, const char *b) {
  size_t n = slen(a);
  return n == slen(b) && memcmp(a, b, n) == 0;
}

/* contains reports whether needle occurs in the n bytes at hay. */
static int contains(const void *hay, size_t n, const void *needle, size_t m) {
  const unsigned char *h = hay;
  for (size_t i = 0; i + m <= n; i++)
    if (memcmp(h + i, needle, m) == 0) return 1;
  return 0;
}

/* ename names an errno for reports. */
static const char *ename(sbx_errno_t e) {
  switch (e) {
  case 0: return "ok";
  case SBX_E2BIG: return "E2BIG";
  case SBX_EAGAIN: return "EAGAIN";
  case SBX_EBADF: return "EBADF";
  case SBX_EFAULT: return "EFAULT";
  case SBX_EINVAL: return "EINVAL";
  case SBX_EMFILE: return "EMFILE";
  case SBX_ENOBUFS: return "ENOBUFS";
  case SBX_ENOEXEC: return "ENOEXEC";
  case SBX_ENOSYS: return "ENOSYS";
  case SBX_ENOTSOCK: return "ENOTSOCK";
  case SBX_ENOTSUP: return "ENOTSUP";
  case SBX_EPIPE: return "EPIPE";
  case SBX_ENOTCAPABLE: return "ENOTCAPABLE";
  }
  return "errno?";
}

/* vfmt formats %s (string), %u (uint32), %U (uint64) into buf. */
static size_t vfmt(char *buf, size_t cap, const char *f, va_list ap) {
  size_t n = 0;
#define PUT(c) do { if (n + 1 < cap) buf[n++] = (c); } while (0)
  for (; *f; f++) {
    if (*f != '%') { PUT(*f); continue; }
    f++;
    if (*f == 's') {
      const char *s = va_arg(ap, const char *);
      while (*s) PUT(*s++);
    } else if (*f == 'u' || *f == 'U') {
      uint64_t v = *f == 'u' ? va_arg(ap, uint32_t) : va_arg(ap, uint64_t);
      char d[24];
      int k = 0;
      do { d[k++] = '0' + v % 10; v /= 10; } while (v);
      while (k) PUT(d[--k]);
    } else {
      PUT('%');
      PUT(*f);
    }
  }
#undef PUT
  buf[n] = 0;
  return n;
}

/* sayf writes one formatted line (a newline is added) to fd. */
static void sayf(uint32_t fd, const char *f, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, f);
  size_t n = vfmt(buf, sizeof buf - 1, f, ap);
  va_end(ap);
  buf[n++] = '\n';
  sbx_ciovec_t iov = {buf, n};
  size_t nw;
  sbx_fd_write(fd, &iov, 1, &nw);
}

/* sendf sends one formatted message (no newline) on a channel, with the
 * handles in fds attached; it returns sock_send's errno. */
static sbx_errno_t sendfds(uint32_t sock, const sbx_fd_t *fds, size_t nfds, const char *f, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, f);
  size_t n = vfmt(buf, sizeof buf, f, ap);
  va_end(ap);
  sbx_ciovec_t iov = {buf, n};
  sbx_send_in_t in = {&iov, 1, fds, nfds, 0};
  sbx_send_out_t out;
  return sbx_sock_send(sock, &in, &out);
}
#define sendf(sock, ...) sendfds((sock), 0, 0, __VA_ARGS__)

/* recvmsg receives one message into buf (NUL-terminated) and up to
 * maxfds handles; it returns sock_recv's errno. */
static sbx_errno_t recvmsg(uint32_t sock, char *buf, size_t cap, sbx_fd_t *fds, size_t maxfds, sbx_recv_out_t *out) {
  sbx_iovec_t iov = {buf, cap - 1};
  sbx_recv_in_t in = {&iov, 1, fds, maxfds, 0};
  sbx_errno_t e = sbx_sock_recv(sock, &in, out);
  buf[e == 0 ? out->ro_datalen : 0] = 0;
  return e;
}

/* argdata_string returns the startup argdata as a string, when it is an
 * argdata string value (tag 0x08, bytes, NUL); "" otherwise. */
static const char *argdata_string(void) {
  static char buf[256];
  uint32_t size = 0;
  if (sbx_argdata_get(buf, sizeof buf - 1, &size) != 0 || size < 2 || buf[0] != 0x08) return "";
  buf[size] = 0;
  return buf + 1;
}

/* fdkind names what fd_stat_get reports for fd, or the errno. */
static const char *fdkind(uint32_t fd) {
  sbx_fdstat_t st;
  sbx_errno_t e = sbx_fd_stat_get(fd, &st);
  if (e == SBX_EBADF) return "EBADF";
  if (e == SBX_ENOTCAPABLE) return "ENOTCAPABLE";
  if (e != 0) return "error";
  switch (st.fs_filetype) {
  case SBX_FILETYPE_DIRECTORY: return "dir";
  case SBX_FILETYPE_REGULAR_FILE: return "file";
  case SBX_FILETYPE_SOCKET_DGRAM: return "dgram";
  case SBX_FILETYPE_SOCKET_STREAM: return "stream";
  case SBX_FILETYPE_PROCESS: return "process";
  case SBX_FILETYPE_SHARED_MEMORY: return "bytes";
  case SBX_FILETYPE_CHARACTER_DEVICE: return "tty";
  case SBX_FILETYPE_UNKNOWN: return "unknown"; /* a standard stream not a terminal's */
  }
  return "other";
}

/* open_at opens path beneath dir with the given base rights. */
static sbx_errno_t open_at(uint32_t dir, const char *path, uint32_t oflags, uint64_t base, sbx_fd_t *fd) {
  sbx_fdstat_t st = {0};
  st.fs_rights_base = base;
  return sbx_file_open(dir, 0, (void *)path, slen(path), oflags, &st, fd);
}

/* read_some reads up to cap-1 bytes from fd into buf (NUL-terminated). */
static sbx_errno_t read_some(uint32_t fd, char *buf, size_t cap, size_t *n) {
  sbx_iovec_t iov = {buf, cap - 1};
  size_t got = 0;
  sbx_errno_t e = sbx_fd_read(fd, &iov, 1, &got);
  buf[e == 0 ? got : 0] = 0;
  *n = got;
  return e;
}

static sbx_errno_t write_str(uint32_t fd, const char *s) {
  sbx_ciovec_t iov = {s, slen(s)};
  size_t nw;
  return sbx_fd_write(fd, &iov, 1, &nw);
}

/* sleep_ns waits on a relative monotonic clock. */
static sbx_errno_t sleep_ns(uint64_t ns) {
  sbx_subscription_t sub = {0};
  sub.type = SBX_EVENTTYPE_CLOCK;
  sub.u.clock.clock_id = SBX_CLOCK_MONOTONIC;
  sub.u.clock.timeout = ns;
  sbx_event_t ev;
  uint32_t n;
  return sbx_poll(&sub, &ev, 1, &n);
}

static uint64_t now_ns(uint32_t clock) {
  uint64_t t = 0;
  sbx_clock_time_get(clock, 0, &t);
  return t;
}

#endif
