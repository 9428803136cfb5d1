;; Writes one byte on its fd 0 (a channel end it was handed), then spins
;; without a host call until it is ended.
(module
  (import "sandboxd" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 24) "x")
  (func (export "_start")
    (i32.store (i32.const 16) (i32.const 24))
    (i32.store (i32.const 20) (i32.const 1))
    (drop (call $fd_write (i32.const 0) (i32.const 16) (i32.const 1) (i32.const 12)))
    (loop $l (br $l))))
