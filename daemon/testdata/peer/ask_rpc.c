/* Asks for a Cap'n Proto connection on its supervisor channel (fd 3: it
 * is launched with no grants), the way an SDK does: first a request that
 * is not argdata (answered by an error notice), then {"request": "rpc"}
 * twice (the second while the first connection is open: refused), then
 * writes "ping" on the connection it received and copies what comes back
 * to stdout. Each notice is written to stdout on its own line. Exits 0, or
 * 100+errno if a call fails, 99 if the rpc notice carried no handle. */
#include <sandboxd.h>

/* argdata of {"request": "rpc"} */
static const char rpc_request[] = "\x06\x89\x08request\x00\x85\x08rpc\x00";

static void say(uint32_t fd, const char *s, size_t n) {
	sbx_ciovec_t iov = {s, n};
	size_t w;
	sbx_fd_write(fd, &iov, 1, &w);
}

static void check(sbx_errno_t e) {
	if (e != 0)
		sbx_proc_exit(100 + e);
}

static void send_request(const char *req, size_t n) {
	sbx_ciovec_t iov = {req, n};
	sbx_send_in_t si = {&iov, 1, 0, 0, 0};
	sbx_send_out_t so;
	check(sbx_sock_send(3, &si, &so));
}

/* Receives one notice, echoes it, and returns the handle it carried or -1. */
static int recv_notice(void) {
	char data[256];
	sbx_fd_t fds[1];
	sbx_iovec_t iov = {data, sizeof data};
	sbx_recv_in_t ri = {&iov, 1, fds, 1, 0};
	sbx_recv_out_t ro;
	check(sbx_sock_recv(3, &ri, &ro));
	say(1, data, ro.ro_datalen);
	say(1, "\n", 1);
	return ro.ro_fdslen == 1 ? (int)fds[0] : -1;
}

void _start(void) {
	send_request("junk", 4);
	recv_notice();
	send_request(rpc_request, sizeof rpc_request - 1);
	int rpc = recv_notice();
	if (rpc < 0)
		sbx_proc_exit(99);
	send_request(rpc_request, sizeof rpc_request - 1);
	recv_notice();
	say(rpc, "ping", 4);
	char buf[16];
	sbx_iovec_t iov = {buf, sizeof buf};
	size_t n;
	check(sbx_fd_read(rpc, &iov, 1, &n));
	say(1, buf, n);
	sbx_proc_exit(0);
}
