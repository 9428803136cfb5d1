;; Run with its own module file at fd 3 (--grant file:spawn_spin_exit.wasm),
;; it spawns two copies of itself and exits with 7 once both have started.
;; Each copy is handed one end of a stream channel (its fd 0), the parent's
;; stdin (its fd 1) and no argdata: it writes one byte on the channel, reads
;; stdin once, whatever that read returns, and then spins without a host
;; call. The parent reads both bytes before it writes "children spinning"
;; and exits, so each child is then reading stdin or spinning. A failure to
;; set up exits with 1 (channel), 2 (spawn) or 3 (read).
(module
  (import "sandboxd" "argdata_get" (func $argdata_get (param i32 i32 i32) (result i32)))
  (import "sandboxd" "fd_create2" (func $fd_create2 (param i32 i32 i32) (result i32)))
  (import "sandboxd" "proc_spawn" (func $spawn (param i32 i32 i32 i32 i32 i32) (result i32)))
  (import "sandboxd" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "sandboxd" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "sandboxd" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  ;; 0: the parent's channel end; 4 and 8: the fds handed to the children
  ;; (the other channel end, stdin); 12: bytes read or written; 16: an
  ;; iovec; 24: the byte; 28: a process handle; 32: argdata size; 64: the
  ;; message.
  (data (i32.const 64) "children spinning\n")
  (func $child
    (i32.store (i32.const 16) (i32.const 24))
    (i32.store (i32.const 20) (i32.const 1))
    (drop (call $fd_write (i32.const 0) (i32.const 16) (i32.const 1) (i32.const 12)))
    (drop (call $fd_read (i32.const 1) (i32.const 16) (i32.const 1) (i32.const 12)))
    (loop $l (br $l)))
  (func $spawn_child
    (if (call $spawn (i32.const 3) (i32.const 0) (i32.const 0) (i32.const 4) (i32.const 2) (i32.const 28))
      (then (call $exit (i32.const 2)))))
  (func $read_byte
    (i32.store (i32.const 16) (i32.const 24))
    (i32.store (i32.const 20) (i32.const 1))
    (if (call $fd_read (i32.load (i32.const 0)) (i32.const 16) (i32.const 1) (i32.const 12))
      (then (call $exit (i32.const 3))))
    (if (i32.ne (i32.load (i32.const 12)) (i32.const 1))
      (then (call $exit (i32.const 3)))))
  (func (export "_start")
    ;; Only the parent has argdata: copying none of it leaves its size.
    (drop (call $argdata_get (i32.const 0) (i32.const 0) (i32.const 32)))
    (if (i32.eqz (i32.load (i32.const 32)))
      (then (call $child)))
    (if (call $fd_create2 (i32.const 0x82) (i32.const 0) (i32.const 4))
      (then (call $exit (i32.const 1))))
    (call $spawn_child)
    (call $spawn_child)
    (call $read_byte)
    (call $read_byte)
    (i32.store (i32.const 16) (i32.const 64))
    (i32.store (i32.const 20) (i32.const 18))
    (drop (call $fd_write (i32.const 1) (i32.const 16) (i32.const 1) (i32.const 12)))
    (call $exit (i32.const 7))))
