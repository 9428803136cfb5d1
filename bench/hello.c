// hello is the smallest useful WASI program: it writes one line and exits.
// bench/run.sh times how long each runtime takes from process start to
// exit status with it.
#include <stdio.h>

int main(void) {
  puts("hello");
  return 0;
}
