;; Writes its startup argdata (args, env and handle names) to stdout
;; unchanged and exits 0, so a test can decode what the guest was given.
(module
  (import "sandboxd" "argdata_get" (func $argdata_get (param i32 i32 i32) (result i32)))
  (import "sandboxd" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "sandboxd" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 2)
  (func (export "_start")
    (local $e i32)
    ;; argdata into 1024..(1024+64512), its size at 16.
    (local.set $e (call $argdata_get (i32.const 1024) (i32.const 64512) (i32.const 16)))
    (if (local.get $e) (then (call $proc_exit (local.get $e))))
    (i32.store (i32.const 0) (i32.const 1024))
    (i32.store (i32.const 4) (i32.load (i32.const 16)))
    (call $proc_exit (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 20)))))
