;; The same loops against WASI preview1 (wazero's own, for comparison;
;; WASI numbers the monotonic clock 1 as well). Each exported loop makes
;; n calls and returns 0, or the first errno a call returned. fd_write
;; writes one byte from an iovec at 0 to fd 1 and leaves nwritten at 8;
;; clock_time_get reads the monotonic clock into 16.
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "clock_time_get" (func $clock_time_get (param i32 i64 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 64) "x")
  (func (export "_start"))
  (func (export "write_loop") (param $n i32) (result i32)
    (local $e i32)
    (i32.store (i32.const 0) (i32.const 64))
    (i32.store (i32.const 4) (i32.const 1))
    (block $done
      (loop $next
        (br_if $done (i32.eqz (local.get $n)))
        (local.set $e (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
        (br_if $done (local.get $e))
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (br $next)))
    (local.get $e))
  (func (export "clock_loop") (param $n i32) (result i32)
    (local $e i32)
    (block $done
      (loop $next
        (br_if $done (i32.eqz (local.get $n)))
        (local.set $e (call $clock_time_get (i32.const 1) (i64.const 0) (i32.const 16)))
        (br_if $done (local.get $e))
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (br $next)))
    (local.get $e)))
