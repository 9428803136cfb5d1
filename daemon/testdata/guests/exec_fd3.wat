;; Reads one byte from stdin, then replaces its program with the module
;; file at fd 3 (--grant file:NEXT.wasm), handing it no handles and no
;; argdata. Exits 1 if proc_exec returns.
(module
  (import "sandboxd" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "sandboxd" "proc_exec" (func $exec (param i32 i32 i32 i32 i32) (result i32)))
  (import "sandboxd" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  ;; 0: an iovec for one byte at 16; 8: bytes read.
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const 1))
    (drop (call $fd_read (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 8)))
    (drop (call $exec (i32.const 3) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)))
    (call $exit (i32.const 1))))
