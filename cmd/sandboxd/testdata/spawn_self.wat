;; Spawns a copy of itself from its own module file (fd 3, granted with
;; --grant file:spawn_self.wasm), handing on fds 0-3 so that the copy does
;; the same, and then spins. The guest whose spawn fails writes why first:
;; "full" for EAGAIN (6): with --max-procs N, the (N+1)th guest of the
;; tree; "nomem" for ENOMEM (48): the spawn would take the user past the
;; daemon's --max-mem-per-user.
(module
  (import "sandboxd" "proc_spawn" (func $spawn (param i32 i32 i32 i32 i32 i32) (result i32)))
  (import "sandboxd" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "\00\00\00\00\01\00\00\00\02\00\00\00\03\00\00\00")
  (data (i32.const 64) "full\n")
  (data (i32.const 80) "nomem\n")
  (func $say (param $at i32) (param $len i32)
    (i32.store (i32.const 40) (local.get $at))
    (i32.store (i32.const 44) (local.get $len))
    (drop (call $fd_write (i32.const 1) (i32.const 40) (i32.const 1) (i32.const 48))))
  (func (export "_start")
    (local $e i32)
    (local.set $e (call $spawn (i32.const 3) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 4) (i32.const 32)))
    (if (i32.eq (local.get $e) (i32.const 6)) (then (call $say (i32.const 64) (i32.const 5))))
    (if (i32.eq (local.get $e) (i32.const 48)) (then (call $say (i32.const 80) (i32.const 6))))
    (loop $l (br $l))))
