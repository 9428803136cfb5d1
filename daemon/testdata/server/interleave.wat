;; Writes "out1\n" to stdout, "err1\n" to stderr, then "out2\n" to stdout,
;; and exits with code 3: the order of the two streams is observable.
(module
  (import "sandboxd" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "sandboxd" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 64) "out1\n")
  (data (i32.const 80) "err1\n")
  (data (i32.const 96) "out2\n")
  (func $write (param $fd i32) (param $at i32)
    (i32.store (i32.const 0) (local.get $at))
    (i32.store (i32.const 4) (i32.const 5))
    (drop (call $fd_write (local.get $fd) (i32.const 0) (i32.const 1) (i32.const 8))))
  (func (export "_start")
    (call $write (i32.const 1) (i32.const 64))
    (call $write (i32.const 2) (i32.const 80))
    (call $write (i32.const 1) (i32.const 96))
    (call $proc_exit (i32.const 3))))
