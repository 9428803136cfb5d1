/* Sends the datagram "ping" with the handle at fd 4 on fd 3 (a chan:
 * grant) and exits with sock_send's errno. */
#include <sandboxd.h>

void _start(void) {
	sbx_ciovec_t iov = {"ping", 4};
	sbx_fd_t fd = 4;
	sbx_send_in_t si = {&iov, 1, &fd, 1, 0};
	sbx_send_out_t so;
	sbx_proc_exit(sbx_sock_send(3, &si, &so));
}
