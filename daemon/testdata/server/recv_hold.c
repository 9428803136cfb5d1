/* Waits on its supervisor channel (fd 3: it is launched with no grants)
 * for one handle, writes "received\n" to stdout and then holds the handle,
 * blocked in poll for an hour. Exits 100+errno if receiving failed and 99
 * if no handle came. */
#include <sandboxd.h>

void _start(void) {
	char data[256];
	sbx_fd_t fds[1];
	sbx_iovec_t iov = {data, sizeof data};
	sbx_recv_in_t ri = {&iov, 1, fds, 1, 0};
	sbx_recv_out_t ro;
	sbx_errno_t e = sbx_sock_recv(3, &ri, &ro);
	if (e != 0)
		sbx_proc_exit(100 + e);
	if (ro.ro_fdslen != 1)
		sbx_proc_exit(99);
	sbx_ciovec_t msg = {"received\n", 9};
	size_t w;
	sbx_fd_write(1, &msg, 1, &w);
	sbx_subscription_t sub = {0};
	sbx_event_t ev;
	size_t n;
	sub.type = SBX_EVENTTYPE_CLOCK;
	sub.u.clock.clock_id = SBX_CLOCK_MONOTONIC;
	sub.u.clock.timeout = 3600ull * 1000000000ull;
	sbx_poll(&sub, &ev, 1, &n);
	sbx_proc_exit(0);
}
