;; Run with its own module file at fd 3 (--grant file:spawn_hold.wasm), it
;; spawns one copy of itself, handing it that file (its fd 0), writes
;; "spawned\n" and then reads stdin until it ends, the child spinning
;; without a host call meanwhile. A failed spawn exits with 2.
(module
  (import "sandboxd" "argdata_get" (func $argdata_get (param i32 i32 i32) (result i32)))
  (import "sandboxd" "proc_spawn" (func $spawn (param i32 i32 i32 i32 i32 i32) (result i32)))
  (import "sandboxd" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "sandboxd" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "sandboxd" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  ;; 4: the fd handed to the child; 12: bytes read or written; 16: an
  ;; iovec; 24: a byte; 28: a process handle; 32: argdata size; 64: the
  ;; message.
  (data (i32.const 4) "\03\00\00\00")
  (data (i32.const 64) "spawned\n")
  (func (export "_start")
    ;; Only the parent has argdata: copying none of it leaves its size.
    (drop (call $argdata_get (i32.const 0) (i32.const 0) (i32.const 32)))
    (if (i32.eqz (i32.load (i32.const 32)))
      (then (loop $l (br $l))))
    (if (call $spawn (i32.const 3) (i32.const 0) (i32.const 0) (i32.const 4) (i32.const 1) (i32.const 28))
      (then (call $exit (i32.const 2))))
    (i32.store (i32.const 16) (i32.const 64))
    (i32.store (i32.const 20) (i32.const 8))
    (drop (call $fd_write (i32.const 1) (i32.const 16) (i32.const 1) (i32.const 12)))
    (i32.store (i32.const 16) (i32.const 24))
    (i32.store (i32.const 20) (i32.const 1))
    (block $end
      (loop $read
        (br_if $end (call $fd_read (i32.const 0) (i32.const 16) (i32.const 1) (i32.const 12)))
        (br_if $end (i32.eqz (i32.load (i32.const 12))))
        (br $read)))
    (call $exit (i32.const 0))))
