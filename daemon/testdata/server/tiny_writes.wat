;; Writes "o" to stdout and "e" to stderr, a byte at a time, 262,144
;; times each, and exits 0: output the daemon keeps as a piece per byte,
;; since no two neighbouring writes are to one stream.
(module
  (import "sandboxd" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "sandboxd" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 64) "oe")
  (func $write (param $fd i32) (param $at i32)
    (i32.store (i32.const 0) (local.get $at))
    (i32.store (i32.const 4) (i32.const 1))
    (drop (call $fd_write (local.get $fd) (i32.const 0) (i32.const 1) (i32.const 8))))
  (func (export "_start")
    (local $i i32)
    (loop $again
      (call $write (i32.const 1) (i32.const 64))
      (call $write (i32.const 2) (i32.const 65))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $again (i32.lt_u (local.get $i) (i32.const 262144))))
    (call $proc_exit (i32.const 0))))
