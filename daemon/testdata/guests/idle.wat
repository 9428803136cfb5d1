;; An idle guest: writes one byte to stdout, so that a test knows it has
;; started, then blocks in poll_oneoff on a clock that never fires, as a
;; service waiting for work does. The density test and BenchmarkIdleGuestCost
;; launch it by the thousand.
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 256) ".")
  (func (export "_start")
    ;; iovec at 200: one byte at 256
    (i32.store (i32.const 200) (i32.const 256))
    (i32.store (i32.const 204) (i32.const 1))
    (drop (call $fd_write (i32.const 1) (i32.const 200) (i32.const 1) (i32.const 208)))
    ;; subscription at 0: a clock (tag 0), monotonic (id 1), relative,
    ;; a timeout of about 31 years; its event goes to 64.
    (i32.store (i32.const 16) (i32.const 1))
    (i64.store (i32.const 24) (i64.const 1000000000000000000))
    (loop $wait
      (drop (call $poll (i32.const 0) (i32.const 64) (i32.const 1) (i32.const 128)))
      (br $wait))))
