/* A child for process tests; its argdata string says how to end:
 * "exit" exits with code 42, "raise" raises SIGTERM, "ignore" raises the
 * ignored SIGCHLD and SIGPIPE and the no-op SIGCONT and then exits 5,
 * "trap" executes unreachable, "spin" loops forever without a host call,
 * "invalid" raises signal 0 and 99 and reports both to stdout (fd 1 when
 * run as a top-level guest). */
#include "../deleg/rt.h"

void _start(void) {
  const char *mode = argdata_string();
  if (streq(mode, "exit")) sbx_proc_exit(42);
  if (streq(mode, "raise")) {
    sbx_proc_raise(SBX_SIGTERM);
    sbx_proc_exit(1); /* not reached */
  }
  if (streq(mode, "ignore")) {
    if (sbx_proc_raise(SBX_SIGCHLD) || sbx_proc_raise(SBX_SIGPIPE) || sbx_proc_raise(SBX_SIGCONT)) sbx_proc_exit(2);
    sbx_proc_exit(5);
  }
  if (streq(mode, "trap")) __builtin_trap();
  if (streq(mode, "spin")) {
    volatile uint32_t n = 0;
    for (;;) n++;
  }
  if (streq(mode, "invalid")) {
    sayf(1, "raise 0: %s", ename(sbx_proc_raise(0)));
    sayf(1, "raise 99: %s", ename(sbx_proc_raise(99)));
    sbx_proc_exit(0);
  }
  sbx_proc_exit(3);
}
