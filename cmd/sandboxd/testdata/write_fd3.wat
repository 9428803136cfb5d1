;; Writes "hello\n" to fd 3, its first grant, and exits 0; exits with the
;; errno if the write fails. Used by the file:…:create tests.
(module
  (import "sandboxd" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "sandboxd" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 32) "hello\n")
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 32))
    (i32.store (i32.const 4) (i32.const 6))
    (call $proc_exit (call $fd_write (i32.const 3) (i32.const 0) (i32.const 1) (i32.const 16)))))
