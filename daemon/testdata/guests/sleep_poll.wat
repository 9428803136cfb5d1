;; Blocks in sandboxd.poll on one relative monotonic clock subscription of
;; one hour (56-byte CloudABI subscription, docs/ABI.md). Exits 0 if poll
;; returns after the hour, or with poll's errno if it fails.
(module
  (import "sandboxd" "poll" (func $poll (param i32 i32 i32 i32) (result i32)))
  (import "sandboxd" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    (local $e i32)
    ;; subscription at 0: userdata@0, type@10 = 1 (clock),
    ;; identifier@16, clock_id@24 = 1 (monotonic), timeout@32 = 3600 s,
    ;; precision@40 = 0, flags@48 = 0 (relative).
    (i64.store (i32.const 0) (i64.const 42))
    (i32.store8 (i32.const 10) (i32.const 1))
    (i64.store (i32.const 16) (i64.const 1))
    (i32.store (i32.const 24) (i32.const 1))
    (i64.store (i32.const 32) (i64.const 3600000000000))
    (i64.store (i32.const 40) (i64.const 0))
    (i32.store16 (i32.const 48) (i32.const 0))
    ;; event buffer at 64 (32 bytes), nevents at 128.
    (local.set $e (call $poll (i32.const 0) (i32.const 64) (i32.const 1) (i32.const 128)))
    (call $proc_exit (local.get $e))))
