// idle is the small guest of the density benchmark: a wasi-libc program
// that blocks in sleep until it is killed, as an idle service would block
// waiting for work.
#include <unistd.h>

int main(void) {
  for (;;) sleep(1000000);
}
