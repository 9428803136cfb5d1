;; A module importing both ABIs: it opens "f" beneath fd 3 with WASI's
;; path_open, reads it with the native fd_pread, writes what it read to
;; stdout with WASI's fd_write, and exits with the native proc_exit. The
;; exit code is 0 only if every call succeeded.
(module
  (import "wasi_snapshot_preview1" "path_open"
    (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write"
    (func $wasi_fd_write (param i32 i32 i32 i32) (result i32)))
  (import "sandboxd" "fd_pread"
    (func $fd_pread (param i32 i32 i32 i64 i32) (result i32)))
  (import "sandboxd" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "f")
  ;; 16: fd_out, 20: nread, 24: iovec {256, 64}, 32: nwritten, 256: buffer
  (func (export "_start")
    (local $e i32)
    ;; path_open(3, follow, "f", 1, oflags 0, base fd_read|fd_seek, 0, 0, &fd)
    (local.set $e (call $path_open (i32.const 3) (i32.const 1) (i32.const 0) (i32.const 1)
      (i32.const 0) (i64.const 6) (i64.const 0) (i32.const 0) (i32.const 16)))
    (if (local.get $e) (then (call $proc_exit (i32.add (i32.const 100) (local.get $e)))))
    (i32.store (i32.const 24) (i32.const 256))
    (i32.store (i32.const 28) (i32.const 64))
    (local.set $e (call $fd_pread (i32.load (i32.const 16)) (i32.const 24) (i32.const 1) (i64.const 0) (i32.const 20)))
    (if (local.get $e) (then (call $proc_exit (i32.add (i32.const 150) (local.get $e)))))
    (i32.store (i32.const 28) (i32.load (i32.const 20)))
    (local.set $e (call $wasi_fd_write (i32.const 1) (i32.const 24) (i32.const 1) (i32.const 32)))
    (if (local.get $e) (then (call $proc_exit (i32.add (i32.const 200) (local.get $e)))))
    (call $proc_exit (i32.const 0))))
