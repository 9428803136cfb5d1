/* Writes 8 MiB to stdout in 64 KiB writes (each byte is 'a' + offset
 * mod 26, so a reader can check order and completeness), then exits 0.
 * Exits with the errno if a write fails. */
#include <sandboxd.h>

static char buf[65536];

void _start(void) {
	for (int chunk = 0; chunk < 128; chunk++) {
		for (int i = 0; i < (int)sizeof buf; i++)
			buf[i] = 'a' + (char)(((unsigned)chunk * sizeof buf + (unsigned)i) % 26);
		size_t off = 0;
		while (off < sizeof buf) {
			sbx_ciovec_t iov = {buf + off, sizeof buf - off};
			size_t w;
			sbx_errno_t e = sbx_fd_write(1, &iov, 1, &w);
			if (e != 0)
				sbx_proc_exit(e);
			off += w;
		}
	}
	sbx_proc_exit(0);
}
