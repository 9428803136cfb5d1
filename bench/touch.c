// touch allocates memory 1 MiB at a time and writes one byte in every 4 KiB
// page of it, until malloc fails or LIMIT MiB are allocated, then prints
// how many MiB it got:
//
//	touch [LIMIT]
//
// bench/harness compares the peak resident memory of `sandboxd run` of it
// with what it touched (docs/BENCHMARKS.md, guest memory), and the same
// source built natively.
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
  long limit = argc > 1 ? atol(argv[1]) : -1;
  long n = 0;
  while (limit < 0 || n < limit) {
    volatile char *p = malloc(1 << 20);
    if (!p)
      break;
    for (int i = 0; i < (1 << 20); i += 4096)
      p[i] = 1;
    n++;
  }
  printf("%ld MiB\n", n);
  return 0;
}
