;; Writes lines to stdout and stderr in turn: o1 e1 o2 e2 o3, one write
;; each, then exits 0. Used by the logs tests (--tail, --since, -t,
;; --stdout, --stderr).
(module
  (import "sandboxd" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "sandboxd" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 64) "o1\n")
  (data (i32.const 68) "e1\n")
  (data (i32.const 72) "o2\n")
  (data (i32.const 76) "e2\n")
  (data (i32.const 80) "o3\n")
  (func $line (param $fd i32) (param $at i32)
    (i32.store (i32.const 0) (local.get $at))
    (i32.store (i32.const 4) (i32.const 3))
    (if (call $fd_write (local.get $fd) (i32.const 0) (i32.const 1) (i32.const 16))
      (then (call $proc_exit (i32.const 1)))))
  (func (export "_start")
    (call $line (i32.const 1) (i32.const 64))
    (call $line (i32.const 2) (i32.const 68))
    (call $line (i32.const 1) (i32.const 72))
    (call $line (i32.const 2) (i32.const 76))
    (call $line (i32.const 1) (i32.const 80))
    (call $proc_exit (i32.const 0))))
