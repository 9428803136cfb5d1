/* proc_exec and proc_spawn refusals; the argdata string picks the part.
 *   "first":  table 0-2 stdio, 3 the module of this program, 4 a file of
 *             garbage with proc_exec, 5 the same file without it. Reports
 *             refused execs and spawns, then execs itself as "second" with
 *             handles [stdout, a byte object, the byte object again].
 *   "second": reports its table, argdata and byte object to fd 0 (the old
 *             stdout) and exits 9. */
#include "rt.h"

static void first(void) {
  sbx_fd_t obj;
  sbx_fd_create1(SBX_FILETYPE_SHARED_MEMORY, &obj); /* fd 6 */
  sbx_ciovec_t civ = {"kept", 4};
  size_t nw;
  sbx_fd_pwrite(obj, &civ, 1, 0, &nw);

  static const char second[] = "\x08second";
  sbx_fd_t keep[3] = {1, obj, obj};
  sbx_fd_t bad[1] = {60};
  sbx_fd_t p;
  sayf(1, "exec garbage: %s", ename(sbx_proc_exec(4, (void *)second, sizeof second, keep, 3)));
  sayf(1, "exec without proc_exec: %s", ename(sbx_proc_exec(5, (void *)second, sizeof second, keep, 3)));
  sayf(1, "exec stdout: %s", ename(sbx_proc_exec(1, (void *)second, sizeof second, keep, 3)));
  sayf(1, "exec keeping a closed fd: %s", ename(sbx_proc_exec(3, (void *)second, sizeof second, bad, 1)));
  sayf(1, "spawn garbage: %s", ename(sbx_proc_spawn(4, (void *)second, sizeof second, 0, 0, &p)));
  sayf(1, "spawn without proc_exec: %s", ename(sbx_proc_spawn(5, (void *)second, sizeof second, 0, 0, &p)));
  sayf(1, "spawn handing over a closed fd: %s", ename(sbx_proc_spawn(3, (void *)second, sizeof second, bad, 1, &p)));
  sayf(1, "spawn argdata too big: %s", ename(sbx_proc_spawn(3, (void *)second, 2u << 20, 0, 0, &p)));
  sayf(1, "still running, table 4=%s 6=%s", fdkind(4), fdkind(6));
  sayf(1, "exec: %s", ename(sbx_proc_exec(3, (void *)second, sizeof second, keep, 3)));
  sbx_proc_exit(1); /* not reached */
}

static void second(void) {
  sayf(0, "second: argdata %s table 0=%s 1=%s 2=%s 3=%s", argdata_string(), fdkind(0), fdkind(1), fdkind(2),
       fdkind(3));
  char buf[8] = {0};
  sbx_iovec_t iov = {buf, 4};
  size_t n;
  sbx_errno_t e = sbx_fd_pread(2, &iov, 1, 0, &n);
  char desc[512];
  uint32_t size;
  sbx_fd_describe(1, desc, sizeof desc, &size);
  int moved = contains(desc, size, "\x08" "create", 8);
  sbx_fd_describe(2, desc, sizeof desc, &size);
  int copied = contains(desc, size, "\x08" "dup", 5);
  sayf(0, "second: object %s %s, fd 1 kept its capability %s, fd 2 is a copy %s", ename(e), buf,
       moved ? "yes" : "no", copied ? "yes" : "no");
  sbx_proc_exit(9);
}

void _start(void) {
  const char *mode = argdata_string();
  if (streq(mode, "first")) first();
  if (streq(mode, "second")) second();
  sbx_proc_exit(3);
}
