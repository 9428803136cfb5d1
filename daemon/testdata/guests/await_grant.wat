;; Tries to write "granted\n" to fd 3 until the handle appears: exits 0
;; once the write succeeds, or with the errno if it fails with anything
;; other than EBADF (8, no such handle yet).
(module
  (import "sandboxd" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "sandboxd" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 32) "granted\n")
  (func (export "_start")
    (local $e i32)
    (i32.store (i32.const 0) (i32.const 32))
    (i32.store (i32.const 4) (i32.const 8))
    (loop $try
      (local.set $e (call $fd_write (i32.const 3) (i32.const 0) (i32.const 1) (i32.const 16)))
      (br_if $try (i32.eq (local.get $e) (i32.const 8))))
    (call $proc_exit (local.get $e))))
