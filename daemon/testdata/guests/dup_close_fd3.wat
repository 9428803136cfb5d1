;; Dups fd 3, closes fd 3, writes "x" to stdout, then loops forever: the
;; capability it was granted lives on as the dup only.
(module
  (import "sandboxd" "fd_dup" (func $fd_dup (param i32 i32) (result i32)))
  (import "sandboxd" "fd_close" (func $fd_close (param i32) (result i32)))
  (import "sandboxd" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "sandboxd" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 32) "x")
  (func (export "_start")
    (local $e i32)
    (local.set $e (call $fd_dup (i32.const 3) (i32.const 8)))
    (if (local.get $e) (then (call $proc_exit (i32.add (i32.const 1000) (local.get $e)))))
    (local.set $e (call $fd_close (i32.const 3)))
    (if (local.get $e) (then (call $proc_exit (i32.add (i32.const 2000) (local.get $e)))))
    (i32.store (i32.const 0) (i32.const 32))
    (i32.store (i32.const 4) (i32.const 1))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 16)))
    (loop $forever (br $forever))))
