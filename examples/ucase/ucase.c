// ucase copies a file, upper-casing ASCII letters on the way.
//
//	ucase INPUT OUTPUT
//
// It is an ordinary POSIX program built against wasi-libc: it opens paths
// and nothing else. Under sandboxd it can open only what it was granted,
// and it reports a refusal in its own words ("input denied", "output
// denied") with the errno the runtime gave.
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define BUFSIZE (64 * 1024)

static unsigned char buf[BUFSIZE];

static void upcase(unsigned char *p, size_t n) {
  for (size_t i = 0; i < n; i++) {
    unsigned char c = p[i];
    if (c >= 'a' && c <= 'z')
      p[i] = c - ('a' - 'A');
  }
}

// writeall writes n bytes, retrying short writes.
static int writeall(int fd, const unsigned char *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR)
        continue;
      return -1;
    }
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: ucase INPUT OUTPUT\n");
    return 2;
  }
  int in = open(argv[1], O_RDONLY);
  if (in < 0) {
    fprintf(stderr, "ucase: input denied: %s: %s\n", argv[1], strerror(errno));
    return 1;
  }
  int out = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (out < 0) {
    fprintf(stderr, "ucase: output denied: %s: %s\n", argv[2], strerror(errno));
    return 1;
  }
  for (;;) {
    ssize_t n = read(in, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      fprintf(stderr, "ucase: read %s: %s\n", argv[1], strerror(errno));
      return 1;
    }
    if (n == 0)
      break;
    upcase(buf, (size_t)n);
    if (writeall(out, buf, (size_t)n) < 0) {
      fprintf(stderr, "ucase: write %s: %s\n", argv[2], strerror(errno));
      return 1;
    }
  }
  if (close(out) < 0) {
    fprintf(stderr, "ucase: close %s: %s\n", argv[2], strerror(errno));
    return 1;
  }
  close(in);
  return 0;
}
