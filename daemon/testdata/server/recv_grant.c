/* Waits on its supervisor channel (fd 3: it is launched with no grants)
 * for one handle, writes "received\n" to stdout, then writes "tick\n" to
 * the received handle every millisecond until a write fails. Exits 0
 * after writing "revoked\n" if the failure is ENOTCAPABLE (the grant was
 * revoked under it), 100+errno if receiving failed, 99 if no handle came,
 * or the errno of any other failure. */
#include <sandboxd.h>

static void say(uint32_t fd, const char *s, size_t n) {
	sbx_ciovec_t iov = {s, n};
	size_t w;
	sbx_fd_write(fd, &iov, 1, &w);
}

static void sleep_ms(void) {
	sbx_subscription_t sub = {0};
	sbx_event_t ev;
	size_t n;
	sub.type = SBX_EVENTTYPE_CLOCK;
	sub.u.clock.clock_id = SBX_CLOCK_MONOTONIC;
	sub.u.clock.timeout = 1000000;
	sbx_poll(&sub, &ev, 1, &n);
}

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
	say(1, "received\n", 9);
	for (;;) {
		sbx_ciovec_t tick = {"tick\n", 5};
		size_t w;
		e = sbx_fd_write(fds[0], &tick, 1, &w);
		if (e == SBX_ENOTCAPABLE) {
			say(1, "revoked\n", 8);
			sbx_proc_exit(0);
		}
		if (e != 0)
			sbx_proc_exit(e);
		sleep_ms();
	}
}
