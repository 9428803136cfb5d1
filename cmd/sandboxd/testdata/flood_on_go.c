// Writes "start" on stdout, waits until a file named go appears in the
// directory granted as "data", then writes 2 MiB of lines and exits 0:
// a test that reads "start" can make the flood begin when it is ready.
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(void) {
  static char line[1024];
  printf("start\n");
  fflush(stdout);
  while (access("data/go", F_OK) != 0)
    usleep(10000);
  memset(line, 'x', sizeof line - 1);
  line[sizeof line - 1] = '\n';
  for (int i = 0; i < 2048; i++)
    fwrite(line, 1, sizeof line, stdout);
  fflush(stdout);
  return 0;
}
