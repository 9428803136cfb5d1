;; Starts with one 64 KiB page and asks for 255 more (16 MiB in all).
;; Exits 0 if memory.grow succeeded, 1 if it was refused.
(module
  (import "sandboxd" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    (call $proc_exit
      (i32.eq (memory.grow (i32.const 255)) (i32.const -1)))))
