/* The fd family on objects the guest makes itself (byte objects, channel
 * pairs) and on fd 3, a file handle over a host pipe holding "pipe data"
 * (a file capability that is not seekable). */
#include "guest.h"

#define BYTES_RIGHTS (SBX_RIGHT_FD_READ | SBX_RIGHT_FD_WRITE | SBX_RIGHT_FD_SEEK | SBX_RIGHT_FD_TELL | \
                      SBX_RIGHT_FILE_STAT_FGET | SBX_RIGHT_FILE_STAT_FPUT_SIZE | SBX_RIGHT_POLL_FD_READWRITE)
#define SOCK_RIGHTS (SBX_RIGHT_FD_READ | SBX_RIGHT_FD_STAT_PUT_FLAGS | SBX_RIGHT_FD_WRITE | SBX_RIGHT_FILE_STAT_FGET | \
                     SBX_RIGHT_POLL_FD_READWRITE | SBX_RIGHT_SOCK_SHUTDOWN)

static uint64_t tell(sbx_fd_t fd) {
  uint64_t pos;
  OK(sbx_fd_seek(fd, 0, SBX_WHENCE_CUR, &pos));
  return pos;
}

static void byte_objects(void) {
  sbx_fd_t b, x;
  size_t n;
  char buf[32];
  EXPECT(sbx_fd_create1(SBX_FILETYPE_REGULAR_FILE, &x), SBX_EINVAL);
  EXPECT(sbx_fd_create1(0, &x), SBX_EINVAL);
  OK(sbx_fd_create1(SBX_FILETYPE_SHARED_MEMORY, &b));
  sbx_fdstat_t fs = fdstat_of(b);
  EQ(fs.fs_filetype, SBX_FILETYPE_SHARED_MEMORY);
  EQ(fs.fs_rights_base, BYTES_RIGHTS);
  EQ(fs.fs_rights_inheriting, 0);

  write_str(b, "abcdef");
  EQ(tell(b), 6);
  uint64_t pos;
  OK(sbx_fd_seek(b, 0, SBX_WHENCE_SET, &pos));
  EQ(read_buf(b, buf, 3), 3);
  CHECK(mem_eq(buf, "abc", 3));
  sbx_iovec_t iov = {buf, 2};
  OK(sbx_fd_pread(b, &iov, 1, 4, &n));
  CHECK(n == 2 && mem_eq(buf, "ef", 2));
  sbx_ciovec_t civ = {"XY", 2};
  OK(sbx_fd_pwrite(b, &civ, 1, 8, &n));
  EQ(n, 2);
  EQ(tell(b), 3);
  sbx_filestat_t st;
  OK(sbx_file_stat_fget(b, &st));
  EQ(st.st_size, 10);
  EQ(st.st_filetype, SBX_FILETYPE_SHARED_MEMORY);
  OK(sbx_fd_pread(b, &(sbx_iovec_t){buf, 10}, 1, 0, &n));
  CHECK(n == 10 && mem_eq(buf, "abcdef\0\0XY", 10));
  st.st_size = 2;
  OK(sbx_file_stat_fput(b, &st, SBX_FILESTAT_SIZE));
  st.st_size = 4;
  OK(sbx_file_stat_fput(b, &st, SBX_FILESTAT_SIZE));
  OK(sbx_fd_pread(b, &(sbx_iovec_t){buf, 10}, 1, 0, &n));
  CHECK(n == 4 && mem_eq(buf, "ab\0\0", 4));
  EXPECT(sbx_file_stat_fput(b, &st, SBX_FILESTAT_MTIM_NOW), SBX_ENOTCAPABLE);
  EXPECT(sbx_fd_datasync(b), SBX_ENOTCAPABLE);
  EXPECT(sbx_file_allocate(b, 0, 1), SBX_ENOTCAPABLE);

  /* dup: a second handle on the same object, sharing its offset. */
  sbx_fd_t d;
  OK(sbx_fd_dup(b, &d));
  CHECK(d != b);
  EQ(fdstat_of(d).fs_rights_base, BYTES_RIGHTS);
  OK(sbx_fd_seek(d, 1, SBX_WHENCE_SET, &pos));
  EQ(tell(b), 1);
  OK(sbx_fd_close(b));
  EQ(read_buf(d, buf, 1), 1);
  EQ(buf[0], 'b');

  /* A byte object's flags are fixed: CloudABI gives shared memory no
   * FD_STAT_PUT_FLAGS. */
  OK(sbx_fd_dup(d, &b));
  EXPECT(set_flags(d, SBX_FDFLAG_APPEND), SBX_ENOTCAPABLE);
  write_str(b, "Z");
  OK(sbx_fd_seek(b, 0, SBX_WHENCE_SET, &pos));
  OK(sbx_file_stat_fget(b, &st));
  EQ(st.st_size, 4);

  /* replace: to must be open; it then designates from's object, and from
   * stays open. */
  EXPECT(sbx_fd_replace(d, 60), SBX_EBADF);
  OK(sbx_fd_replace(d, 0));
  OK(sbx_fd_pread(0, &(sbx_iovec_t){buf, 5}, 1, 0, &n));
  CHECK(n == 4 && mem_eq(buf, "abZ\0", 4));
  EQ(fdstat_of(0).fs_filetype, SBX_FILETYPE_SHARED_MEMORY);
  EQ(fdstat_of(d).fs_filetype, SBX_FILETYPE_SHARED_MEMORY);
  OK(sbx_fd_replace(d, d));

  /* Seek rights: FD_TELL alone tells but does not seek. */
  OK(set_rights(d, SBX_RIGHT_FD_READ | SBX_RIGHT_FD_TELL, 0));
  OK(sbx_fd_seek(d, 0, SBX_WHENCE_CUR, &pos));
  EXPECT(sbx_fd_seek(d, 0, SBX_WHENCE_END, &pos), SBX_ENOTCAPABLE);
  EXPECT(sbx_fd_pread(d, &iov, 1, 0, &n), SBX_ENOTCAPABLE);
}

static void channels(void) {
  sbx_fd_t a, b, x;
  size_t n;
  char buf[32];
  EXPECT(sbx_fd_create2(0x81, &a, &b), SBX_EINVAL);
  EXPECT(sbx_fd_create2(SBX_FILETYPE_SHARED_MEMORY, &a, &b), SBX_EINVAL);
  OK(sbx_fd_create2(SBX_FILETYPE_SOCKET_STREAM, &a, &b));
  CHECK(a != b);
  sbx_fdstat_t fs = fdstat_of(a);
  EQ(fs.fs_filetype, SBX_FILETYPE_SOCKET_STREAM);
  EQ(fs.fs_rights_base, SOCK_RIGHTS);
  write_str(a, "ping");
  EQ(read_buf(b, buf, sizeof buf), 4);
  CHECK(mem_eq(buf, "ping", 4));
  write_str(b, "pong");
  EQ(read_buf(a, buf, sizeof buf), 4);
  uint64_t pos;
  EXPECT(sbx_fd_seek(a, 0, SBX_WHENCE_CUR, &pos), SBX_ENOTCAPABLE);
  EXPECT(sbx_fd_sync(a), SBX_ENOTCAPABLE);
  sbx_iovec_t iov = {buf, 4};
  EXPECT(sbx_fd_pread(a, &iov, 1, 0, &n), SBX_ENOTCAPABLE);
  /* NONBLOCK: an empty channel answers EAGAIN instead of waiting. */
  OK(set_flags(b, SBX_FDFLAG_NONBLOCK));
  EQ(fdstat_of(b).fs_flags, SBX_FDFLAG_NONBLOCK);
  EXPECT(sbx_fd_read(b, &iov, 1, &n), SBX_EAGAIN);
  EXPECT(set_flags(b, SBX_FDFLAG_APPEND), SBX_ENOTSUP);
  /* Closing one end: the other reads end of stream and cannot write. */
  OK(sbx_fd_close(a));
  OK(sbx_fd_read(b, &iov, 1, &n));
  EQ(n, 0);
  sbx_ciovec_t civ = {"x", 1};
  EXPECT(sbx_fd_write(b, &civ, 1, &n), SBX_EPIPE);

  OK(sbx_fd_create2(SBX_FILETYPE_SOCKET_DGRAM, &a, &x));
  EQ(fdstat_of(a).fs_filetype, SBX_FILETYPE_SOCKET_DGRAM);
  write_str(a, "one");
  write_str(a, "two!");
  EQ(read_buf(x, buf, sizeof buf), 3);
  EQ(read_buf(x, buf, sizeof buf), 4);
  CHECK(mem_eq(buf, "two!", 4));
}

static void host_pipe(void) {
  char buf[32];
  size_t n;
  uint64_t pos;
  EQ(fdstat_of(3).fs_filetype, SBX_FILETYPE_SOCKET_STREAM);
  sbx_iovec_t iov = {buf, sizeof buf};
  EXPECT(sbx_fd_pread(3, &iov, 1, 0, &n), SBX_ESPIPE);
  EXPECT(sbx_fd_seek(3, 0, SBX_WHENCE_SET, &pos), SBX_ESPIPE);
  EQ(read_buf(3, buf, sizeof buf), 9);
  CHECK(mem_eq(buf, "pipe data", 9));
}

void _start(void) {
  byte_objects();
  channels();
  host_pipe();
  sbx_proc_exit(0);
}
