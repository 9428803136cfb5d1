// hostcall times one kind of call to the host, made n times in a loop:
//
//	hostcall fd_write N          write(1, "x", 1), N times
//	hostcall clock_time_get N    clock_gettime(CLOCK_MONOTONIC), N times
//
// and prints the wall time per call in nanoseconds on stderr ("ns/call
// 71.3"), timed by the program itself around the loop so that the
// runtime's start does not count. The same source is built for wasm32-wasi
// (under wasi-libc the calls are WASI's fd_write and clock_time_get) and
// natively (the kernel's write and the vDSO's clock_gettime: the physical
// limit). bench/harness runs it under sandboxd, wazero's CLI, Node's
// node:wasi and natively, with stdout on /dev/null for all.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static long long now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: hostcall fd_write|clock_time_get N\n");
    return 2;
  }
  long n = atol(argv[2]);
  long long t0, t1;
  if (strcmp(argv[1], "fd_write") == 0) {
    t0 = now();
    for (long i = 0; i < n; i++) {
      if (write(1, "x", 1) != 1) {
        perror("write");
        return 1;
      }
    }
    t1 = now();
  } else if (strcmp(argv[1], "clock_time_get") == 0) {
    struct timespec ts;
    t0 = now();
    for (long i = 0; i < n; i++) {
      if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0) {
        perror("clock_gettime");
        return 1;
      }
    }
    t1 = now();
  } else {
    fprintf(stderr, "hostcall: unknown call %s (fd_write or clock_time_get)\n", argv[1]);
    return 2;
  }
  fprintf(stderr, "ns/call %.2f\n", (double)(t1 - t0) / (double)n);
  return 0;
}
