// relopen opens each of its arguments, a path relative or absolute, as a
// wasi-libc program does, and prints "PATH: ok" or "PATH: ERRNO" for each,
// after "cwd CWD", the working directory wasi-libc starts from.
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv) {
  char cwd[256];
  printf("cwd %s\n", getcwd(cwd, sizeof cwd) ? cwd : strerror(errno));
  for (int i = 1; i < argc; i++) {
    FILE *f = fopen(argv[i], "r");
    printf("%s: %s\n", argv[i], f ? "ok" : strerror(errno));
    if (f) fclose(f);
  }
  return 0;
}
