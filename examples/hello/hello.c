/* hello: a sandboxd guest that shows deny-by-default.
 *
 * It is born holding only stdin, stdout, stderr and the handles granted on
 * the command line, and finds them by name in its startup argdata:
 *
 *   sandboxd run --grant dir:./examples/hello/data=data:ro bin/hello.wasm
 *
 * It reads greeting.txt beneath the "data" directory handle, then tries
 * four things it was not given: a path that climbs out of "data", an
 * absolute path, creating a file in the read-only "data", and writing to a
 * handle number it never received. Each must be refused. It exits 0 when
 * everything went as described, 1 when anything was allowed that should
 * not have been or failed that should not have, and 2 when it was run
 * without a "data" handle.
 *
 * Freestanding C against the native ABI (abi/include/sandboxd.h):
 *   clang --target=wasm32 -nostdlib -O2 -I abi/include \
 *     -Wl,--export=_start -Wl,--allow-undefined -o hello.wasm hello.c
 */
#include <sandboxd.h>

#define NO_FD UINT32_C(0xffffffff)

static sbx_fd_t out_fd = 1; /* replaced by the "stdout" handle's fd */

static size_t len(const char *s) {
  size_t n = 0;
  while (s[n]) n++;
  return n;
}

static void write_all(sbx_fd_t fd, const void *buf, size_t n) {
  const char *p = buf;
  while (n > 0) {
    sbx_ciovec_t iov = {p, n};
    size_t done = 0;
    if (sbx_fd_write(fd, &iov, 1, &done) != SBX_ESUCCESS || done == 0) return;
    p += done;
    n -= done;
  }
}

static void say(const char *s) { write_all(out_fd, s, len(s)); }

static const char *errno_name(sbx_errno_t e) {
  switch (e) {
  case SBX_ESUCCESS: return "success";
  case SBX_EBADF: return "EBADF";
  case SBX_ENOENT: return "ENOENT";
  case SBX_ENOSYS: return "ENOSYS";
  case SBX_ENOTCAPABLE: return "ENOTCAPABLE";
  case SBX_EACCES: return "EACCES";
  case SBX_EPERM: return "EPERM";
  case SBX_EROFS: return "EROFS";
  }
  return "another error";
}

/* Argdata (CloudABI): a tag byte, then the body. A map's body is a series
 * of (length, encoded value) pairs, keys and values alternating; a length
 * is big-endian base-128 with the high bit set on its last byte. */
enum { AD_FD = 3, AD_MAP = 6, AD_STRING = 8 };

static int next_field(const uint8_t **p, const uint8_t *end, const uint8_t **field, size_t *field_len) {
  size_t n = 0;
  for (;;) {
    if (*p >= end || n > (SIZE_MAX >> 7)) return 0;
    uint8_t b = *(*p)++;
    n = (n << 7) | (b & 0x7f);
    if (b & 0x80) break;
  }
  if (n > (size_t)(end - *p)) return 0;
  *field = *p;
  *field_len = n;
  *p += n;
  return 1;
}

static int is_string(const uint8_t *v, size_t n, const char *s) {
  size_t sl = len(s);
  if (n != sl + 2 || v[0] != AD_STRING || v[n - 1] != 0) return 0;
  for (size_t i = 0; i < sl; i++)
    if (v[1 + i] != (uint8_t)s[i]) return 0;
  return 1;
}

/* map_get finds the value under a string key of an encoded map. */
static int map_get(const uint8_t *m, size_t n, const char *key, const uint8_t **val, size_t *val_len) {
  if (n == 0 || m[0] != AD_MAP) return 0;
  const uint8_t *p = m + 1, *end = m + n;
  const uint8_t *k, *v;
  size_t kl, vl;
  while (p < end) {
    if (!next_field(&p, end, &k, &kl) || !next_field(&p, end, &v, &vl)) return 0;
    if (is_string(k, kl, key)) {
      *val = v;
      *val_len = vl;
      return 1;
    }
  }
  return 0;
}

static sbx_fd_t handle(const uint8_t *ad, size_t n, const char *name) {
  const uint8_t *hs, *fd;
  size_t hl, fl;
  if (!map_get(ad, n, "handles", &hs, &hl) || !map_get(hs, hl, name, &fd, &fl)) return NO_FD;
  if (fl != 5 || fd[0] != AD_FD) return NO_FD;
  return ((sbx_fd_t)fd[1] << 24) | ((sbx_fd_t)fd[2] << 16) | ((sbx_fd_t)fd[3] << 8) | fd[4];
}

static sbx_errno_t open_beneath(sbx_fd_t dir, const char *path, uint32_t oflags, uint64_t rights, sbx_fd_t *fd) {
  sbx_fdstat_t want = {0};
  want.fs_rights_base = rights;
  return sbx_file_open(dir, SBX_LOOKUP_SYMLINK_FOLLOW, (void *)path, len(path), oflags, &want, fd);
}

static int failures;

/* expect_denied reports an attempt that must have been refused with want:
 * ENOTCAPABLE for a handle that does not allow it, EBADF for no handle. */
static void expect_denied(const char *what, sbx_errno_t got, sbx_errno_t want, const char *why) {
  say("  ");
  say(what);
  if (got == want) {
    say(": denied (");
    say(errno_name(got));
    say(", ");
    say(why);
    say(")\n");
    return;
  }
  failures++;
  say(got == SBX_ESUCCESS ? ": ALLOWED, but it was never granted\n" : ": failed with the wrong error: ");
  if (got != SBX_ESUCCESS) {
    say(errno_name(got));
    say("\n");
  }
}

static uint8_t argdata[4096];
static char text[1024];

void _start(void) {
  size_t n = 0;
  if (sbx_argdata_get(argdata, sizeof argdata, &n) != SBX_ESUCCESS) sbx_proc_exit(2);
  sbx_fd_t o = handle(argdata, n, "stdout");
  if (o != NO_FD) out_fd = o;
  sbx_fd_t data = handle(argdata, n, "data");
  if (data == NO_FD) {
    say("hello: no handle named \"data\": run with --grant dir:./examples/hello/data=data:ro\n");
    sbx_proc_exit(2);
  }

  say("hello from a sandboxd guest: it holds stdin, stdout, stderr and \"data\", nothing else\n");

  sbx_fd_t f;
  sbx_errno_t e = open_beneath(data, "greeting.txt", 0, SBX_RIGHT_FD_READ, &f);
  if (e != SBX_ESUCCESS) {
    say("  read data/greeting.txt: failed: ");
    say(errno_name(e));
    say("\n");
    sbx_proc_exit(1);
  }
  sbx_iovec_t iov = {text, sizeof text};
  size_t got = 0;
  e = sbx_fd_read(f, &iov, 1, &got);
  sbx_fd_close(f);
  if (e != SBX_ESUCCESS) {
    say("  read data/greeting.txt: failed: ");
    say(errno_name(e));
    say("\n");
    sbx_proc_exit(1);
  }
  say("  read data/greeting.txt: ");
  write_all(out_fd, text, got);

  expect_denied("open data/../../../etc/passwd", open_beneath(data, "../../../etc/passwd", 0, SBX_RIGHT_FD_READ, &f),
                SBX_ENOTCAPABLE, "no path leaves a granted directory");
  expect_denied("open /etc/passwd", open_beneath(data, "/etc/passwd", 0, SBX_RIGHT_FD_READ, &f),
                SBX_ENOTCAPABLE, "there is no global file system");
  expect_denied("create data/note.txt", open_beneath(data, "note.txt", SBX_O_CREAT, SBX_RIGHT_FD_WRITE, &f),
                SBX_ENOTCAPABLE, "\"data\" was granted read-only");
  sbx_ciovec_t msg = {"x", 1};
  size_t wrote = 0;
  expect_denied("write to fd 9", sbx_fd_write(9, &msg, 1, &wrote), SBX_EBADF, "no handle was ever granted there");

  say(failures == 0 ? "every ungranted access was refused\n" : "SOME ACCESS WAS NOT AS EXPECTED\n");
  sbx_proc_exit(failures == 0 ? 0 : 1);
}
