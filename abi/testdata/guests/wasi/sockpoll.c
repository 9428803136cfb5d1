/* sockpoll: a WASI guest that waits on many granted sockets at once with
 * poll_oneoff, as a server's event loop does. fds 3 .. 3+N-1 are stream
 * sockets.
 *
 *   sockpoll echo N K    echoes every byte it reads, on the socket it came
 *                        from, until K bytes in all; prints "served K"
 *   sockpoll wait N      polls once, with no timeout, and prints each event
 *                        ("fd F error E"); then "events M"
 *   sockpoll check N K   polls K times with a zero timeout, the clock first
 *                        as Go's wasip1 netpoller puts it; prints "polls K
 *                        fd-events E" (E counts socket events seen)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wasi/api.h>

#define MAXN 512

static __wasi_subscription_t subs[MAXN + 1];
static __wasi_event_t evs[MAXN + 1];

/* fd_subs fills subs[at .. at+n-1] with read subscriptions on fds 3 .. 3+n-1. */
static void fd_subs(int at, int n) {
  memset(subs, 0, sizeof subs);
  for (int i = 0; i < n; i++) {
    subs[at + i].userdata = 3 + i;
    subs[at + i].u.tag = __WASI_EVENTTYPE_FD_READ;
    subs[at + i].u.u.fd_read.file_descriptor = 3 + i;
  }
}

static void clock_sub(int i, __wasi_timestamp_t timeout) {
  subs[i].userdata = 0;
  subs[i].u.tag = __WASI_EVENTTYPE_CLOCK;
  subs[i].u.u.clock.id = __WASI_CLOCKID_MONOTONIC;
  subs[i].u.u.clock.timeout = timeout;
}

static __wasi_size_t poll_or_die(int n) {
  __wasi_size_t got = 0;
  __wasi_errno_t e = __wasi_poll_oneoff(subs, evs, n, &got);
  if (e != 0) {
    printf("poll_oneoff: errno %d\n", e);
    exit(1);
  }
  return got;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    printf("usage: sockpoll echo N K | wait N | check N K\n");
    return 2;
  }
  int n = atoi(argv[2]);
  if (n < 1 || n > MAXN) {
    printf("bad N\n");
    return 2;
  }
  if (strcmp(argv[1], "echo") == 0 && argc == 4) {
    long want = atol(argv[3]), served = 0;
    fd_subs(0, n);
    while (served < want) {
      __wasi_size_t got = poll_or_die(n);
      for (__wasi_size_t i = 0; i < got; i++) {
        int fd = (int)evs[i].userdata;
        if (evs[i].error != 0) {
          printf("fd %d error %d\n", fd, evs[i].error);
          return 1;
        }
        char buf[256];
        __wasi_iovec_t iov = {(uint8_t *)buf, sizeof buf};
        __wasi_size_t nr = 0;
        __wasi_errno_t e = __wasi_fd_read(fd, &iov, 1, &nr);
        if (e == __WASI_ERRNO_AGAIN) {
          continue; /* readiness is a hint: another read may have taken it */
        }
        if (e != 0 || nr == 0) {
          printf("fd %d: read errno %d, %u bytes\n", fd, e, (unsigned)nr);
          return 1;
        }
        __wasi_ciovec_t ciov = {(const uint8_t *)buf, nr};
        __wasi_size_t nw = 0;
        e = __wasi_fd_write(fd, &ciov, 1, &nw);
        if (e != 0 || nw != nr) {
          printf("fd %d: write errno %d, %u of %u bytes\n", fd, e, (unsigned)nw, (unsigned)nr);
          return 1;
        }
        served += nr;
      }
    }
    printf("served %ld\n", served);
    return 0;
  }
  if (strcmp(argv[1], "wait") == 0) {
    fd_subs(0, n);
    __wasi_size_t got = poll_or_die(n);
    for (__wasi_size_t i = 0; i < got; i++) {
      printf("fd %d error %d\n", (int)evs[i].userdata, evs[i].error);
    }
    printf("events %u\n", (unsigned)got);
    return 0;
  }
  if (strcmp(argv[1], "check") == 0 && argc == 4) {
    long k = atol(argv[3]), fdev = 0;
    fd_subs(1, n);
    clock_sub(0, 0);
    for (long j = 0; j < k; j++) {
      __wasi_size_t got = poll_or_die(n + 1);
      for (__wasi_size_t i = 0; i < got; i++) {
        if (evs[i].type != __WASI_EVENTTYPE_CLOCK) {
          fdev++;
        }
      }
    }
    printf("polls %ld fd-events %ld\n", k, fdev);
    return 0;
  }
  printf("bad mode %s\n", argv[1]);
  return 2;
}
