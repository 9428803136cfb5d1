/* Passes its fd 3 (a granted handle) on twice, to itself, over a datagram
 * channel it creates: fd 3 is sent and received as a first-hop copy, and
 * that copy is sent again as a second hop. Writes "hop1 E1 hop2 E2\n" to
 * stdout, E1 and E2 the errno of each sock_send (0: sent), and exits 0. */
#include <sandboxd.h>

static char digits[4];

static const char *num(sbx_errno_t e) {
	digits[0] = '0' + e / 10;
	digits[1] = '0' + e % 10;
	return digits;
}

static void say(const char *s) {
	size_t n = 0;
	while (s[n])
		n++;
	sbx_ciovec_t iov = {s, n};
	size_t w;
	sbx_fd_write(1, &iov, 1, &w);
}

/* hop sends fd on a and receives it on b into *out; it returns the send's
 * errno. */
static sbx_errno_t hop(sbx_fd_t a, sbx_fd_t b, sbx_fd_t fd, sbx_fd_t *out) {
	sbx_ciovec_t siov = {"h", 1};
	sbx_send_in_t si = {&siov, 1, &fd, 1, 0};
	sbx_send_out_t so;
	sbx_errno_t e = sbx_sock_send(a, &si, &so);
	if (e != 0)
		return e;
	char buf[8];
	sbx_iovec_t riov = {buf, sizeof buf};
	sbx_recv_in_t ri = {&riov, 1, out, 1, 0};
	sbx_recv_out_t ro;
	e = sbx_sock_recv(b, &ri, &ro);
	if (e == 0 && ro.ro_fdslen != 1)
		sbx_proc_exit(99);
	return e;
}

void _start(void) {
	sbx_fd_t a, b, one, two;
	if (sbx_fd_create2(SBX_FILETYPE_SOCKET_DGRAM, &a, &b) != 0)
		sbx_proc_exit(98);
	say("hop1 ");
	say(num(hop(a, b, 3, &one)));
	say(" hop2 ");
	say(num(hop(a, b, one, &two)));
	say("\n");
	sbx_proc_exit(0);
}
