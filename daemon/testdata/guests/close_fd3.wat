;; Reads one byte from stdin, closes fd 3, writes "x" to stdout, then
;; loops forever: what was derived from fd 3 lives on without it.
(module
  (import "sandboxd" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "sandboxd" "fd_close" (func $fd_close (param i32) (result i32)))
  (import "sandboxd" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "sandboxd" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 32) "x")
  ;; 0: an iovec for one byte at 40; 8: bytes read or written.
  (func (export "_start")
    (local $e i32)
    (i32.store (i32.const 0) (i32.const 40))
    (i32.store (i32.const 4) (i32.const 1))
    (drop (call $fd_read (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 8)))
    (local.set $e (call $fd_close (i32.const 3)))
    (if (local.get $e) (then (call $proc_exit (i32.add (i32.const 1000) (local.get $e)))))
    (i32.store (i32.const 0) (i32.const 32))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
    (loop $forever (br $forever))))
