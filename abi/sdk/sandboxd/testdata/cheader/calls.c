/* Calls every function sandboxd.h declares, so that each import must
 * match what the host exports (name, module and signature: a mismatch
 * fails instantiation), and prints "call errno" per line. Handles that
 * are not open (fd 999) make each call that names one fail with EBADF
 * before it does anything; the calls that need none are made for real.
 * Built freestanding (clang --target=wasm32 -nostdlib, which runs
 * _start) and against wasi-libc (--target=wasm32-wasi, which runs main). */
#include "../../../../include/sandboxd.h"

#define NOFD 999u

#ifndef __wasi__
__attribute__((no_builtin("memset"))) void *memset(void *d, int c, size_t n) {
  char *dd = d;
  while (n--) *dd++ = (char)c;
  return d;
}
#endif

static void out(const char *s) {
  size_t n = 0, done;
  while (s[n]) n++;
  sbx_ciovec_t iov = {s, n};
  sbx_fd_write(1, &iov, 1, &done);
}

static void line(const char *name, unsigned v) {
  char num[12];
  int i = sizeof num;
  num[--i] = 0;
  do num[--i] = (char)('0' + v % 10); while ((v /= 10) && i > 0);
  out(name);
  out(" ");
  out(num + i);
  out("\n");
}

static unsigned char scratch[256];
static sbx_fdstat_t fst;
static sbx_filestat_t st;
static uint32_t fd_out, fd2_out, n_out;
static uint64_t t_out;

#define R(name, args) line(#name, sbx_##name args)

static void clocks_and_threads(void) {
  uint64_t res = 0, t1 = 0, t2 = 0;
  line("clock_res_get", sbx_clock_res_get(SBX_CLOCK_MONOTONIC, &res) || res == 0);
  line("clock_time_get", sbx_clock_time_get(SBX_CLOCK_MONOTONIC, 0, &t1) ||
                             sbx_clock_time_get(SBX_CLOCK_MONOTONIC, 0, &t2) || t2 < t1);
  line("clock_time_get realtime after 2020", sbx_clock_time_get(SBX_CLOCK_REALTIME, 0, &t1) || t1 < UINT64_C(1577836800000000000));
  R(condvar_signal, (scratch, 0, 1));
  R(lock_unlock, (scratch, 0));
  R(thread_create, (scratch, &n_out));
  R(thread_exit, (scratch, 0));
  R(thread_yield, ());
  int nonzero = 0;
  line("random_get", sbx_random_get(scratch, 32));
  for (int i = 0; i < 32; i++) nonzero |= scratch[i];
  line("random_get gave bytes", !nonzero);
  R(argdata_get, (scratch, 0, &n_out));
  R(fd_describe, (1, scratch, 0, &n_out));
  R(proc_raise, (0));
}

static void fd_calls(void) {
  sbx_iovec_t iov = {scratch, 8};
  R(fd_close, (NOFD));
  R(fd_create1, (0, &fd_out));
  R(fd_create2, (0, &fd_out, &fd2_out));
  R(fd_datasync, (NOFD));
  R(fd_dup, (NOFD, &fd_out));
  R(fd_pread, (NOFD, &iov, 1, 0, &n_out));
  R(fd_pwrite, (NOFD, &iov, 1, 0, &n_out));
  R(fd_read, (NOFD, &iov, 1, &n_out));
  R(fd_replace, (NOFD, 1));
  R(fd_seek, (NOFD, 0, SBX_WHENCE_SET, &t_out));
  R(fd_stat_get, (NOFD, &fst));
  R(fd_stat_put, (NOFD, &fst, SBX_FDSTAT_RIGHTS));
  R(fd_sync, (NOFD));
  R(fd_write, (NOFD, &iov, 1, &n_out));
}

static void file_calls(void) {
  R(file_advise, (NOFD, 0, 0, 0));
  R(file_allocate, (NOFD, 0, 1));
  R(file_create, (NOFD, "d", 1, SBX_FILETYPE_DIRECTORY));
  R(file_link, (NOFD, 0, "a", 1, NOFD, "b", 1));
  R(file_open, (NOFD, 0, "a", 1, 0, &fst, &fd_out));
  R(file_readdir, (NOFD, scratch, sizeof scratch, 0, &n_out));
  R(file_readlink, (NOFD, "a", 1, scratch, sizeof scratch, &n_out));
  R(file_rename, (NOFD, "a", 1, NOFD, "b", 1));
  R(file_stat_fget, (NOFD, &st));
  R(file_stat_fput, (NOFD, &st, SBX_FILESTAT_SIZE));
  R(file_stat_get, (NOFD, 0, "a", 1, &st));
  R(file_stat_put, (NOFD, 0, "a", 1, &st, SBX_FILESTAT_MTIM_NOW));
  R(file_symlink, ("a", 1, NOFD, "b", 1));
  R(file_unlink, (NOFD, "a", 1, 0));
}

static void cap_proc_sock_calls(void) {
  sbx_subscription_t sub = {.userdata = 1, .type = SBX_EVENTTYPE_FD_READ, .u.fd_readwrite.fd = NOFD};
  sbx_event_t ev;
  sbx_iovec_t iov = {scratch, 8};
  sbx_recv_in_t ri = {.ri_data = &iov, .ri_data_len = 1};
  sbx_recv_out_t ro;
  sbx_send_in_t si = {.si_data = (const sbx_ciovec_t *)&iov, .si_data_len = 1};
  sbx_send_out_t so;
  uint32_t fds[1] = {NOFD};
  R(sock_accept, (NOFD, &fd_out));
  R(cap_revoke, (NOFD));
  R(cap_revocable, (NOFD, &fd_out, &fd2_out));
  line("poll", sbx_poll(&sub, &ev, 1, &n_out));
  line("poll event", n_out == 1 ? ev.error : 1000);
  R(proc_exec, (NOFD, scratch, 0, fds, 0));
  R(proc_spawn, (NOFD, scratch, 0, fds, 0, &fd_out));
  R(sock_recv, (NOFD, &ri, &ro));
  R(sock_send, (NOFD, &si, &so));
  R(sock_shutdown, (NOFD, SBX_SHUT_RD));
}

#ifdef __wasi__
int main(void) {
#else
void _start(void) {
#endif
  clocks_and_threads();
  fd_calls();
  file_calls();
  cap_proc_sock_calls();
  out("done\n");
  sbx_proc_exit(0);
}
