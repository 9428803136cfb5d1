/* fd 3: a read-write grant of "root". Beside it (outside the grant) is
 * "outside/secret". Inside: "file", "sub/file", and symbolic links
 *   abs -> <absolute path of outside>   up -> ../outside
 *   upfile -> ../outside/secret         chain -> up
 *   dangling -> ../outside/created      in -> sub/file    dirlink -> sub
 * Nothing reaches outside: "..", absolute paths and links that lead out
 * are ENOTCAPABLE for every call; links that stay inside work. */
#include "guest.h"

static void refused(const char *path, uint32_t len) {
  sbx_fd_t x = 999;
  sbx_filestat_t st;
  char buf[64];
  size_t n;
  EXPECT(open_at(3, path, len, 0, R_READ, 0, 0, &x), SBX_ENOTCAPABLE);
  EXPECT(open_at(3, path, len, SBX_O_DIRECTORY, R_DIR, R_READ, 0, &x), SBX_ENOTCAPABLE);
  EXPECT(open_at(3, path, len, SBX_O_CREAT, R_READ | SBX_RIGHT_FD_WRITE, 0, 0, &x), SBX_ENOTCAPABLE);
  EQ(x, 999);
  EXPECT(sbx_file_stat_get(3, SBX_LOOKUP_SYMLINK_FOLLOW, (void *)path, len, &st), SBX_ENOTCAPABLE);
  EXPECT(sbx_file_stat_put(3, SBX_LOOKUP_SYMLINK_FOLLOW, (void *)path, len, &st, SBX_FILESTAT_MTIM_NOW),
         SBX_ENOTCAPABLE);
  EXPECT(sbx_file_link(3, SBX_LOOKUP_SYMLINK_FOLLOW, (void *)path, len, 3, P("stolen")), SBX_ENOTCAPABLE);
  (void)buf;
  (void)n;
}

/* Paths that leave the grant before their last component: refused even
 * for calls that do not follow a final link. */
static void refused_anyhow(const char *path, uint32_t len) {
  refused(path, len);
  sbx_filestat_t st;
  char buf[64];
  size_t n;
  sbx_fd_t x;
  sbx_fdstat_t fs = {0};
  fs.fs_rights_base = SBX_RIGHT_FD_READ;
  EXPECT(sbx_file_open(3, 0, (void *)path, len, 0, &fs, &x), SBX_ENOTCAPABLE);
  EXPECT(sbx_file_stat_get(3, 0, (void *)path, len, &st), SBX_ENOTCAPABLE);
  EXPECT(sbx_file_readlink(3, (void *)path, len, buf, sizeof buf, &n), SBX_ENOTCAPABLE);
  EXPECT(sbx_file_unlink(3, (void *)path, len, 0), SBX_ENOTCAPABLE);
  EXPECT(sbx_file_rename(3, (void *)path, len, 3, P("stolen")), SBX_ENOTCAPABLE);
  EXPECT(sbx_file_link(3, 0, (void *)path, len, 3, P("stolen")), SBX_ENOTCAPABLE);
}

#define REFUSED(lit) refused(P(lit))
#define REFUSED_ANYHOW(lit) refused_anyhow(P(lit))

void _start(void) {
  REFUSED_ANYHOW("..");
  REFUSED_ANYHOW("../outside/secret");
  REFUSED_ANYHOW("sub/../../outside/secret");
  REFUSED_ANYHOW("/etc/passwd");
  REFUSED_ANYHOW("/");
  REFUSED_ANYHOW("abs/secret");
  REFUSED_ANYHOW("up/secret");
  REFUSED_ANYHOW("chain/secret");
  REFUSED("abs");
  REFUSED("up");
  REFUSED("upfile");
  REFUSED("chain");
  REFUSED("dangling");

  /* Creating, renaming or linking into a directory outside is refused. */
  EXPECT(sbx_file_create(3, P("up/newdir"), SBX_FILETYPE_DIRECTORY), SBX_ENOTCAPABLE);
  EXPECT(sbx_file_symlink(P("x"), 3, P("up/newlink")), SBX_ENOTCAPABLE);
  EXPECT(sbx_file_rename(3, P("file"), 3, P("up/stolen")), SBX_ENOTCAPABLE);
  EXPECT(sbx_file_link(3, 0, P("file"), 3, P("abs/stolen")), SBX_ENOTCAPABLE);

  /* A final link is not followed without LOOKUP_SYMLINK_FOLLOW: open
   * says ELOOP, stat describes the link itself. */
  sbx_fdstat_t fs = {0};
  fs.fs_rights_base = SBX_RIGHT_FD_READ;
  sbx_fd_t x;
  EXPECT(sbx_file_open(3, 0, P("upfile"), 0, &fs, &x), SBX_ELOOP);
  EXPECT(sbx_file_open(3, 0, P("in"), 0, &fs, &x), SBX_ELOOP);
  sbx_filestat_t st;
  OK(sbx_file_stat_get(3, 0, P("upfile"), &st));
  EQ(st.st_filetype, SBX_FILETYPE_SYMBOLIC_LINK);

  /* Links that stay inside work. */
  char buf[64];
  sbx_fd_t f;
  OK(open_at(3, P("in"), 0, R_READ, 0, 0, &f));
  size_t n = read_buf(f, buf, sizeof buf);
  CHECK(n == 8 && mem_eq(buf, "sub file", 8));
  OK(open_at(3, P("dirlink/file"), 0, R_READ, 0, 0, &f));
  OK(open_at(3, P("sub/../file"), 0, R_READ, 0, 0, &f));
  sbx_fd_t sub;
  OK(open_at(3, P("dirlink"), SBX_O_DIRECTORY, R_DIR, R_READ, 0, &sub));
  OK(open_at(sub, P("file"), 0, R_READ, 0, 0, &f));

  /* A handle to a directory beneath the grant cannot climb back above
   * itself, not even to the rest of the grant. */
  EXPECT(open_at(sub, P("../file"), 0, R_READ, 0, 0, &f), SBX_ENOTCAPABLE);
  EXPECT(sbx_file_stat_get(sub, 0, P(".."), &st), SBX_ENOTCAPABLE);

  /* A guest may create a link that points out (its contents are just
   * bytes), but nothing follows it. */
  OK(sbx_file_symlink(P("../outside/secret"), 3, P("mine")));
  OK(sbx_file_readlink(3, P("mine"), buf, sizeof buf, &n));
  CHECK(n == 17 && mem_eq(buf, "../outside/secret", 17));
  REFUSED("mine");
  OK(sbx_file_unlink(3, P("mine"), 0));
  sbx_proc_exit(0);
}
