// A wasi-libc program that traps in a named function, built with -g by
// TestRunDebugInfoPutsSourceLinesInTrapTraces.
#include <stdio.h>

__attribute__((noinline)) static void crash_here(volatile int *p) {
	if (*p == 42)
		__builtin_trap();
}

int main(void) {
	volatile int x = 42;
	puts("about to trap");
	crash_here(&x);
	return 0;
}
