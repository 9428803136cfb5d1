;; Exits with code 300, which does not fit in a host exit status.
(module
  (import "sandboxd" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (func (export "_start") (call $proc_exit (i32.const 300))))
