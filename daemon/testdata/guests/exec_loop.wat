;; Replaces its program with itself for ever: the module file it was
;; granted as fd 3 (--grant file:exec_loop.wasm), handed on as the new
;; program's fd 0, from which each next one execs.
(module
  (import "sandboxd" "proc_exec" (func $exec (param i32 i32 i32 i32 i32) (result i32)))
  (import "sandboxd" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 3))
    (drop (call $exec (i32.const 3) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 1)))
    (i32.store (i32.const 0) (i32.const 0))
    (drop (call $exec (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 1)))
    (call $exit (i32.const 1))))
