;; Writes 1 MiB to stdout, 4 KiB at a time (256 writes of the zeros at
;; 4096), then blocks in sandboxd.poll on a clock of one hour, as
;; sleep_poll.wat does: a running guest whose kept output is all written.
(module
  (import "sandboxd" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "sandboxd" "poll" (func $poll (param i32 i32 i32 i32) (result i32)))
  (import "sandboxd" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    (local $i i32)
    (i32.store (i32.const 256) (i32.const 4096))
    (i32.store (i32.const 260) (i32.const 4096))
    (loop $again
      (drop (call $fd_write (i32.const 1) (i32.const 256) (i32.const 1) (i32.const 264)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $again (i32.lt_u (local.get $i) (i32.const 256))))
    ;; subscription at 0: userdata@0, type@10 = 1 (clock),
    ;; identifier@16, clock_id@24 = 1 (monotonic), timeout@32 = 3600 s.
    (i64.store (i32.const 0) (i64.const 42))
    (i32.store8 (i32.const 10) (i32.const 1))
    (i64.store (i32.const 16) (i64.const 1))
    (i32.store (i32.const 24) (i32.const 1))
    (i64.store (i32.const 32) (i64.const 3600000000000))
    (call $proc_exit (call $poll (i32.const 0) (i32.const 64) (i32.const 1) (i32.const 128)))))
