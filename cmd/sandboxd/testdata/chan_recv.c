/* Receives one datagram on fd 3 (a chan: grant), writes it to stdout and
 * exits 0; or exits with sock_recv's errno. */
#include <sandboxd.h>

void _start(void) {
	char buf[64];
	sbx_iovec_t iov = {buf, sizeof buf};
	sbx_recv_in_t ri = {&iov, 1, 0, 0, 0};
	sbx_recv_out_t ro;
	sbx_errno_t e = sbx_sock_recv(3, &ri, &ro);
	if (e != 0)
		sbx_proc_exit(e);
	sbx_ciovec_t out = {buf, ro.ro_datalen};
	size_t w;
	sbx_fd_write(1, &out, 1, &w);
	sbx_proc_exit(0);
}
