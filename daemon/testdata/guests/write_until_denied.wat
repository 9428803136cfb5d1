;; Writes "x" to fd 3, then keeps writing nothing to it (a rights check
;; with no I/O) until a write fails, and exits with that errno.
(module
  (import "sandboxd" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "sandboxd" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 32) "x")
  (func (export "_start")
    (local $e i32)
    (i32.store (i32.const 0) (i32.const 32))
    (i32.store (i32.const 4) (i32.const 1))
    (local.set $e (call $fd_write (i32.const 3) (i32.const 0) (i32.const 1) (i32.const 16)))
    (if (local.get $e) (then (call $proc_exit (i32.add (i32.const 1000) (local.get $e)))))
    (i32.store (i32.const 4) (i32.const 0))
    (loop $again
      (local.set $e (call $fd_write (i32.const 3) (i32.const 0) (i32.const 1) (i32.const 16)))
      (br_if $again (i32.eqz (local.get $e))))
    (call $proc_exit (local.get $e))))
