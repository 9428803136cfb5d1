// openmany opens the file named by its first argument again and again,
// keeping every descriptor, until open fails or it holds the number of
// descriptors its optional second argument gives. It prints
// "opened N, then ERRNO" (or "opened N" when it stopped at the count),
// then closes one descriptor and opens the file once more, printing
// "after a close: ok" or "after a close: ERRNO". It exits 0 unless its
// arguments are wrong or it opened nothing.
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static const char *ename(int e) {
  switch (e) {
  case EMFILE: return "EMFILE";
  case ENFILE: return "ENFILE";
  case ENOENT: return "ENOENT";
  case ENOTCAPABLE: return "ENOTCAPABLE";
  }
  static char buf[32];
  snprintf(buf, sizeof buf, "errno%d", e);
  return buf;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: openmany FILE [COUNT]\n");
    return 2;
  }
  long want = argc > 2 ? atol(argv[2]) : -1;
  int last = -1;
  long n = 0;
  int err = 0;
  for (; want < 0 || n < want; n++) {
    int fd = open(argv[1], O_RDONLY);
    if (fd < 0) {
      err = errno;
      break;
    }
    last = fd;
  }
  if (err)
    printf("opened %ld, then %s\n", n, ename(err));
  else
    printf("opened %ld\n", n);
  if (last < 0)
    return 1;
  close(last);
  int fd = open(argv[1], O_RDONLY);
  printf("after a close: %s\n", fd >= 0 ? "ok" : ename(errno));
  return 0;
}
