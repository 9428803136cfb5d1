/* Reads stdin to its end and exits with the number of bytes read (at most
 * 255), so that each of many guests proves it got its own input. Exits
 * 255 if a read fails. */
#include <sandboxd.h>

void _start(void) {
	char buf[256];
	uint32_t total = 0;
	for (;;) {
		sbx_iovec_t iov = {buf, sizeof buf};
		size_t n;
		if (sbx_fd_read(0, &iov, 1, &n) != 0)
			sbx_proc_exit(255);
		if (n == 0)
			break;
		total += n;
	}
	sbx_proc_exit(total > 255 ? 255 : total);
}
