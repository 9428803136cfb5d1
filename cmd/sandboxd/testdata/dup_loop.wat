;; Dups its granted handle, fd 3, and closes the dup, 1500 times, keeping
;; the last dup: a guest making audit records in a loop.
(module
  (import "sandboxd" "fd_dup" (func $fd_dup (param i32 i32) (result i32)))
  (import "sandboxd" "fd_close" (func $fd_close (param i32) (result i32)))
  (import "sandboxd" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    (local $i i32) (local $e i32)
    (loop $again
      (local.set $e (call $fd_dup (i32.const 3) (i32.const 8)))
      (if (local.get $e) (then (call $proc_exit (i32.add (i32.const 1000) (local.get $e)))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (if (i32.lt_u (local.get $i) (i32.const 1500))
        (then
          (local.set $e (call $fd_close (i32.load (i32.const 8))))
          (if (local.get $e) (then (call $proc_exit (i32.add (i32.const 2000) (local.get $e)))))
          (br $again))))
    (call $proc_exit (i32.const 0))))
