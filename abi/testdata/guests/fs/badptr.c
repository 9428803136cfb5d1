/* fd 3: a read-write grant holding "file". Every pointer or length that
 * leaves guest memory is EFAULT, an over-long path ENAMETOOLONG and an
 * oversize iovec count EINVAL: never a trap, never a host panic. Calls
 * that would have made a handle leave none behind. */
#include "guest.h"

/* The next fd the table would hand out. */
static sbx_fd_t next_fd(void) {
  sbx_fd_t fd;
  OK(sbx_fd_create1(SBX_FILETYPE_SHARED_MEMORY, &fd));
  OK(sbx_fd_close(fd));
  return fd;
}

void _start(void) {
  uintptr_t end = __builtin_wasm_memory_size(0) * 65536;
  void *last4 = (void *)(end - 4); /* in bounds for 4 bytes, not for 8 */
  void *past = (void *)end;
  char buf[64];
  size_t n;
  sbx_fd_t fd;
  uint64_t pos;
  sbx_fdstat_t fs = {0};
  fs.fs_rights_base = R_READ | R_WRITE;
  sbx_filestat_t st = {0};
  sbx_fd_t first = next_fd();

  /* iovecs. */
  sbx_ciovec_t bad_buf = {BAD, 4};
  sbx_ciovec_t over_end = {(void *)(end - 2), 4};
  EXPECT(sbx_fd_write(1, BAD, 1, &n), SBX_EFAULT);
  EXPECT(sbx_fd_write(1, &bad_buf, 1, &n), SBX_EFAULT);
  EXPECT(sbx_fd_write(1, &over_end, 1, &n), SBX_EFAULT);
  EXPECT(sbx_fd_write(1, past, 1, &n), SBX_EFAULT);
  EXPECT(sbx_fd_write(1, last4, 1, &n), SBX_EFAULT); /* an iovec is 8 bytes */
  EXPECT(sbx_fd_write(1, buf, 1025, &n), SBX_EINVAL);
  EXPECT(sbx_fd_write(1, buf, 0xffffffffu, &n), SBX_EINVAL);
  EXPECT(sbx_fd_write(1, BAD, 0x20000000u, &n), SBX_EINVAL);
  sbx_iovec_t rbad = {BAD, 4};
  EXPECT(sbx_fd_read(0, &rbad, 1, &n), SBX_EFAULT);
  EXPECT(sbx_fd_read(0, buf, 1025, &n), SBX_EINVAL);

  /* Paths. */
  EXPECT(sbx_file_open(3, 0, BAD, 4, 0, &fs, &fd), SBX_EFAULT);
  EXPECT(sbx_file_open(3, 0, (void *)(end - 2), 4, 0, &fs, &fd), SBX_EFAULT);
  EXPECT(sbx_file_open(3, 0, buf, 5000, 0, &fs, &fd), SBX_ENAMETOOLONG);
  EXPECT(sbx_file_open(3, 0, buf, 0xffffffffu, 0, &fs, &fd), SBX_ENAMETOOLONG);
  EXPECT(sbx_file_open(3, 0, P("file"), 0, BAD, &fd), SBX_EFAULT);
  EXPECT(sbx_file_open(3, 2, P("file"), 0, &fs, &fd), SBX_EINVAL);
  EXPECT(sbx_file_open(3, 0, P("file"), 0x10, &fs, &fd), SBX_EINVAL);
  EXPECT(sbx_file_open(3, 0, P("file"), 0, &fs, BAD), SBX_EFAULT);
  EXPECT(sbx_file_open(3, 0, P("file"), 0, &fs, past), SBX_EFAULT);
  EXPECT(sbx_file_open(3, 0, "", 0, 0, &fs, &fd), SBX_ENOENT);
  EXPECT(sbx_file_open(3, 0, "fi\0le", 5, 0, &fs, &fd), SBX_EINVAL);
  EXPECT(sbx_file_create(3, BAD, 3, SBX_FILETYPE_DIRECTORY), SBX_EFAULT);
  EXPECT(sbx_file_unlink(3, BAD, 3, 0), SBX_EFAULT);
  EXPECT(sbx_file_rename(3, P("file"), 3, BAD, 3), SBX_EFAULT);
  EXPECT(sbx_file_rename(3, BAD, 3, 3, P("x")), SBX_EFAULT);
  EXPECT(sbx_file_link(3, 0, P("file"), 3, BAD, 3), SBX_EFAULT);
  EXPECT(sbx_file_symlink(BAD, 3, 3, P("x")), SBX_EFAULT);
  EXPECT(sbx_file_symlink(P("file"), 3, BAD, 3), SBX_EFAULT);
  EXPECT(sbx_file_readlink(3, BAD, 3, buf, sizeof buf, &n), SBX_EFAULT);

  /* Output structures. */
  EXPECT(sbx_file_stat_get(3, 0, P("file"), BAD), SBX_EFAULT);
  EXPECT(sbx_file_stat_get(3, 0, P("file"), last4), SBX_EFAULT);
  EXPECT(sbx_file_stat_put(3, 0, P("file"), BAD, SBX_FILESTAT_MTIM), SBX_EFAULT);
  EXPECT(sbx_fd_stat_get(3, BAD), SBX_EFAULT);
  EXPECT(sbx_fd_stat_get(3, (void *)(end - 16)), SBX_EFAULT);
  EXPECT(sbx_fd_stat_put(3, BAD, SBX_FDSTAT_RIGHTS), SBX_EFAULT);
  EXPECT(sbx_fd_stat_put(3, BAD, SBX_FDSTAT_FLAGS), SBX_EFAULT);
  EXPECT(sbx_file_readdir(3, BAD, 64, 0, &n), SBX_EFAULT);
  EXPECT(sbx_file_readdir(3, buf, 0xffffffffu, 0, &n), SBX_EFAULT);
  EXPECT(sbx_file_readdir(3, buf, sizeof buf, 0, BAD), SBX_EFAULT);
  EXPECT(sbx_file_readlink(3, P("file"), BAD, 64, &n), SBX_EFAULT);

  /* Calls on an open file. */
  sbx_fd_t f;
  OK(sbx_file_open(3, 0, P("file"), 0, &fs, &f));
  EXPECT(sbx_fd_seek(f, 0, SBX_WHENCE_CUR, BAD), SBX_EFAULT);
  EXPECT(sbx_fd_seek(f, 0, SBX_WHENCE_CUR, last4), SBX_EFAULT);
  EXPECT(sbx_file_stat_fget(f, BAD), SBX_EFAULT);
  EXPECT(sbx_file_stat_fput(f, BAD, SBX_FILESTAT_SIZE), SBX_EFAULT);
  EXPECT(sbx_fd_pread(f, BAD, 1, 0, &n), SBX_EFAULT);
  EXPECT(sbx_fd_pread(f, &rbad, 1, 0, &n), SBX_EFAULT);
  EXPECT(sbx_fd_pwrite(f, &bad_buf, 1, 0, &n), SBX_EFAULT);
  EXPECT(sbx_fd_pread(f, buf, 2000, 0, &n), SBX_EINVAL);
  sbx_iovec_t ok = {buf, 4};
  EXPECT(sbx_fd_pread(f, &ok, 1, 0x8000000000000000ull, &n), SBX_EINVAL);
  st.st_size = 0x8000000000000000ull;
  EXPECT(sbx_file_stat_fput(f, &st, SBX_FILESTAT_SIZE), SBX_EFBIG);
  EXPECT(sbx_file_allocate(f, 0x7fffffffffffffffull, 2), SBX_EFBIG);

  /* Calls that make handles leave none behind when the out pointer is bad. */
  EXPECT(sbx_fd_create1(SBX_FILETYPE_SHARED_MEMORY, BAD), SBX_EFAULT);
  EXPECT(sbx_fd_create2(SBX_FILETYPE_SOCKET_STREAM, &fd, BAD), SBX_EFAULT);
  EXPECT(sbx_fd_create2(SBX_FILETYPE_SOCKET_STREAM, BAD, &fd), SBX_EFAULT);
  EXPECT(sbx_fd_dup(f, BAD), SBX_EFAULT);
  OK(sbx_fd_close(f));
  EQ(next_fd(), first);

  /* Still alive, and stdout still works. */
  write_str(1, "survived\n");
  sbx_proc_exit(0);
}
