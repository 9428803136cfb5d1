// resp is a plain C program (wasi-libc) that speaks Redis's protocol,
// RESP, over the one connection it was granted: SET a key, GET it back.
// It finds the connection the way systemd socket activation hands it over
// (LISTEN_FDS, LISTEN_FDNAMES, fds from 3; sd_listen_fds(3)) and uses
// nothing but read(2) and write(2) on it.
//
//	clang --target=wasm32-wasi --sysroot=/usr -O2 -o resp.wasm resp.c
//	sandboxd run --grant sock:tcp:127.0.0.1:6379=db resp.wasm KEY VALUE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

// activated returns the fd LISTEN_FDNAMES names name, or -1.
static int activated(const char *name) {
	const char *fds = getenv("LISTEN_FDS"), *names = getenv("LISTEN_FDNAMES");
	if (!fds || !names)
		return -1;
	int n = atoi(fds);
	size_t len = strlen(name);
	for (int i = 0; i < n && *names; i++) {
		const char *end = strchr(names, ':');
		size_t l = end ? (size_t)(end - names) : strlen(names);
		if (l == len && memcmp(names, name, len) == 0)
			return 3 + i;
		if (!end)
			break;
		names = end + 1;
	}
	return -1;
}

static int write_all(int fd, const char *p, size_t n) {
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

// command sends a RESP array of argc bulk strings.
static int command(int fd, int argc, const char **argv) {
	char buf[1024];
	int off = snprintf(buf, sizeof buf, "*%d\r\n", argc);
	for (int i = 0; i < argc; i++)
		off += snprintf(buf + off, sizeof buf - (size_t)off, "$%zu\r\n%s\r\n", strlen(argv[i]), argv[i]);
	if (off >= (int)sizeof buf)
		return -1;
	return write_all(fd, buf, (size_t)off);
}

// reply reads one reply into buf (a simple string, error or bulk string
// of up to size-1 bytes) and returns its first byte, or -1.
static int reply(int fd, char *buf, size_t size) {
	size_t n = 0;
	// Read until the reply is complete: a line, and for a bulk string
	// ("$LEN\r\n") the LEN bytes and "\r\n" after it.
	for (;;) {
		ssize_t r = read(fd, buf + n, size - 1 - n);
		if (r <= 0)
			return -1;
		n += (size_t)r;
		buf[n] = 0;
		char *eol = strstr(buf, "\r\n");
		if (!eol)
			continue;
		if (buf[0] != '$')
			break;
		long len = strtol(buf + 1, NULL, 10);
		if (len < 0 || (size_t)(eol + 2 - buf) + (size_t)len + 2 <= n)
			break;
	}
	return buf[0];
}

int main(int argc, char **argv) {
	const char *key = argc > 1 ? argv[1] : "sandboxd:c";
	const char *value = argc > 2 ? argv[2] : "hello from C";
	int fd = activated("db");
	if (fd < 0) {
		fprintf(stderr, "resp: no socket named db: run me with --grant sock:...=db\n");
		return 2;
	}
	char buf[512];
	const char *set[] = {"SET", key, value};
	if (command(fd, 3, set) < 0 || reply(fd, buf, sizeof buf) != '+') {
		fprintf(stderr, "resp: SET failed: %s\n", errno ? strerror(errno) : buf);
		return 1;
	}
	printf("SET %s: %.*s\n", key, (int)strcspn(buf + 1, "\r"), buf + 1);
	const char *get[] = {"GET", key};
	if (command(fd, 2, get) < 0 || reply(fd, buf, sizeof buf) != '$') {
		fprintf(stderr, "resp: GET failed: %s\n", errno ? strerror(errno) : buf);
		return 1;
	}
	char *val = strstr(buf, "\r\n") + 2;
	printf("GET %s: %.*s\n", key, (int)strcspn(val, "\r"), val);
	return 0;
}
