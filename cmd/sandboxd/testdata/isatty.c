// Prints whether each standard stream is a terminal, as isatty (which
// wasi-libc reads from fd_fdstat_get: a character device without the
// seek and tell rights) says: "STDIN STDOUT STDERR", each 0 or 1.
#include <stdio.h>
#include <unistd.h>

int main(void) {
  printf("%d %d %d\n", isatty(0), isatty(1), isatty(2));
  return 0;
}
