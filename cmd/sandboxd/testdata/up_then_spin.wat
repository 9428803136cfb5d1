;; Writes "up\n" to stdout, then spins in its own code for ever: a guest
;; that is running, with output kept, until something kills it (the
;; lifecycle tests stop the daemon under it).
(module
  (import "sandboxd" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "sandboxd" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 64) "up\n")
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 64))
    (i32.store (i32.const 4) (i32.const 3))
    (if (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 16))
      (then (call $proc_exit (i32.const 1))))
    (loop (br 0))))
