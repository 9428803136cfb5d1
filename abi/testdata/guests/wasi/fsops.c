// fsops exercises the WASI filesystem calls through wasi-libc's POSIX
// layer. It expects two preopens, /data (read-write) and /ro (read-only),
// each holding a file "hello.txt" with the contents "hello\n", and prints
// one line per step: "<step>: ok [detail]" or "<step>: <errno name>".
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char *ename(int e) {
  switch (e) {
  case EACCES: return "EACCES";
  case EBADF: return "EBADF";
  case EEXIST: return "EEXIST";
  case EINVAL: return "EINVAL";
  case EISDIR: return "EISDIR";
  case ELOOP: return "ELOOP";
  case ENOENT: return "ENOENT";
  case ENOTCAPABLE: return "ENOTCAPABLE";
  case ENOTDIR: return "ENOTDIR";
  case ENOTEMPTY: return "ENOTEMPTY";
  case EPERM: return "EPERM";
  case ESPIPE: return "ESPIPE";
  case EXDEV: return "EXDEV";
  }
  static char buf[32];
  snprintf(buf, sizeof buf, "errno%d", e);
  return buf;
}

static void report(const char *step, int rc) {
  if (rc < 0)
    printf("%s: %s\n", step, ename(errno));
  else
    printf("%s: ok\n", step);
}

int main(void) {
  char buf[256];
  int fd, n;

  // Read a granted file.
  fd = open("/data/hello.txt", O_RDONLY);
  report("open-read", fd);
  n = read(fd, buf, sizeof buf);
  printf("read: %d %.*s", n, n > 0 ? n : 0, buf);
  close(fd);

  // Create, write, seek, pread, pwrite, fstat, truncate.
  fd = open("/data/new.txt", O_RDWR | O_CREAT | O_TRUNC, 0644);
  report("create", fd);
  report("write", write(fd, "0123456789", 10));
  printf("lseek-cur: %lld\n", (long long)lseek(fd, 0, SEEK_CUR));
  printf("lseek-set: %lld\n", (long long)lseek(fd, 2, SEEK_SET));
  n = read(fd, buf, 3);
  printf("read-after-seek: %.*s\n", n, buf);
  n = pread(fd, buf, 4, 6);
  printf("pread: %.*s\n", n, buf);
  report("pwrite", pwrite(fd, "AB", 2, 0));
  report("ftruncate", ftruncate(fd, 5));
  struct stat st;
  report("fstat", fstat(fd, &st));
  printf("size: %lld regular: %d\n", (long long)st.st_size, S_ISREG(st.st_mode));
  n = pread(fd, buf, sizeof buf, 0);
  printf("contents: %.*s\n", n, buf);
  report("fsync", fsync(fd));
  close(fd);

  // Append mode.
  fd = open("/data/new.txt", O_WRONLY | O_APPEND);
  report("open-append", fd);
  report("append", write(fd, "!", 1));
  close(fd);
  fd = open("/data/new.txt", O_RDONLY);
  n = read(fd, buf, sizeof buf);
  printf("after-append: %.*s\n", n, buf);
  close(fd);

  // Directories.
  report("mkdir", mkdir("/data/sub", 0755));
  report("mkdir-again", mkdir("/data/sub", 0755));
  report("rename", rename("/data/new.txt", "/data/sub/moved.txt"));
  report("stat-moved", stat("/data/sub/moved.txt", &st));
  report("rmdir-notempty", rmdir("/data/sub"));
  report("link", link("/data/sub/moved.txt", "/data/linked.txt"));
  report("symlink", symlink("hello.txt", "/data/sym"));
  n = readlink("/data/sym", buf, sizeof buf);
  printf("readlink: %d %.*s\n", n, n > 0 ? n : 0, buf);
  report("lstat-sym", lstat("/data/sym", &st));
  printf("is-link: %d\n", S_ISLNK(st.st_mode));
  report("stat-sym", stat("/data/sym", &st));
  printf("follows-to-size: %lld\n", (long long)st.st_size);
  fd = open("/data/sym", O_RDONLY | O_NOFOLLOW);
  report("open-nofollow", fd);

  struct timespec ts[2] = {{.tv_sec = 1000000000, .tv_nsec = 0}, {.tv_sec = 1200000000, .tv_nsec = 0}};
  report("utimensat", utimensat(AT_FDCWD, "/data/hello.txt", ts, 0));
  stat("/data/hello.txt", &st);
  printf("mtime: %lld\n", (long long)st.st_mtim.tv_sec);

  DIR *d = opendir("/data");
  printf("opendir: %s\n", d ? "ok" : ename(errno));
  int count = 0;
  struct dirent *de;
  while (d && (de = readdir(d)) != NULL) {
    printf("entry: %s\n", de->d_name);
    count++;
  }
  if (d)
    closedir(d);
  printf("entries: %d\n", count);

  report("unlink", unlink("/data/linked.txt"));
  report("unlink-dir", unlink("/data/sub"));
  report("unlink-moved", unlink("/data/sub/moved.txt"));
  report("rmdir", rmdir("/data/sub"));

  // What was not granted.
  fd = open("/ro/hello.txt", O_RDONLY);
  report("ro-read", fd);
  close(fd);
  report("ro-create", open("/ro/x.txt", O_WRONLY | O_CREAT, 0644));
  report("ro-mkdir", mkdir("/ro/d", 0755));
  report("ro-unlink", unlink("/ro/hello.txt"));
  report("ro-rename-out", rename("/ro/hello.txt", "/data/stolen.txt"));
  report("escape-dotdot", open("/data/../ro/hello.txt", O_RDONLY));
  int dfd = open("/data", O_RDONLY | O_DIRECTORY);
  report("open-dir", dfd);
  report("openat-dotdot", openat(dfd, "../etc/passwd", O_RDONLY));
  report("openat-abs", openat(dfd, "/etc/passwd", O_RDONLY));
  report("read-dir", read(dfd, buf, 1));
  report("symlink-abs", symlink("/etc/passwd", "/data/abs"));
  report("symlink-out", symlink("../../../../../../../../etc/passwd", "/data/out"));
  report("follow-out", open("/data/out", O_RDONLY));
  report("ungranted", open("/etc/passwd", O_RDONLY));

  // poll on a regular file is ready at once.
  fd = open("/data/hello.txt", O_RDONLY);
  struct pollfd pfd = {.fd = fd, .events = POLLIN};
  n = poll(&pfd, 1, 1000);
  printf("poll-file: %d %s\n", n, (pfd.revents & POLLIN) ? "POLLIN" : "-");
  close(fd);

  // A short sleep goes through poll_oneoff's clock.
  struct timespec t0, t1, req = {.tv_sec = 0, .tv_nsec = 20000000};
  clock_gettime(CLOCK_MONOTONIC, &t0);
  nanosleep(&req, NULL);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  long long slept = (t1.tv_sec - t0.tv_sec) * 1000000000LL + (t1.tv_nsec - t0.tv_nsec);
  printf("slept-enough: %d\n", slept >= 20000000);
  return 0;
}
