;; Run with its own module file at fd 3 (--grant file:spawn_exec.wasm) and
;; another module file at fd 4 (--grant file:byte_spin.wasm), it spawns a
;; copy of itself handing it that other file (its fd 0) and one end of a
;; stream channel (its fd 1), closes its own copy of that end, writes "spawned\n", reads a byte from stdin
;; and writes it on its own end. The child, which has no argdata, reads that byte and replaces
;; its program with the other file's (proc_exec), handing it the channel
;; end as its fd 0. Once a byte arrives on its own end the parent writes
;; "child execed\n" and then reads stdin until it ends. A failed channel
;; exits 1, a failed spawn 2, a failed read 3 (as when the child ends
;; without writing); a child whose proc_exec returns exits 4.
(module
  (import "sandboxd" "argdata_get" (func $argdata_get (param i32 i32 i32) (result i32)))
  (import "sandboxd" "fd_create2" (func $fd_create2 (param i32 i32 i32) (result i32)))
  (import "sandboxd" "proc_spawn" (func $spawn (param i32 i32 i32 i32 i32 i32) (result i32)))
  (import "sandboxd" "proc_exec" (func $exec (param i32 i32 i32 i32 i32) (result i32)))
  (import "sandboxd" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "sandboxd" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "sandboxd" "fd_close" (func $fd_close (param i32) (result i32)))
  (import "sandboxd" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  ;; 0 and 4: the channel's ends; 12: bytes read or written; 16: an
  ;; iovec; 24: a byte; 28: a process handle; 32: argdata size; 40: the fd
  ;; the child hands on (its 1); 48: the fds handed to the child (4, the
  ;; second end); 64 and 80: the messages.
  (data (i32.const 40) "\01\00\00\00")
  (data (i32.const 64) "child execed\n")
  (data (i32.const 80) "spawned\n")
  (func (export "_start")
    ;; Only the parent has argdata: copying none of it leaves its size.
    (drop (call $argdata_get (i32.const 0) (i32.const 0) (i32.const 32)))
    (if (i32.eqz (i32.load (i32.const 32)))
      (then
        (i32.store (i32.const 16) (i32.const 24))
        (i32.store (i32.const 20) (i32.const 1))
        (drop (call $fd_read (i32.const 1) (i32.const 16) (i32.const 1) (i32.const 12)))
        (drop (call $exec (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 40) (i32.const 1)))
        (call $exit (i32.const 4))))
    (if (call $fd_create2 (i32.const 0x82) (i32.const 0) (i32.const 4))
      (then (call $exit (i32.const 1))))
    (i32.store (i32.const 48) (i32.const 4))
    (i32.store (i32.const 52) (i32.load (i32.const 4)))
    (if (call $spawn (i32.const 3) (i32.const 0) (i32.const 0) (i32.const 48) (i32.const 2) (i32.const 28))
      (then (call $exit (i32.const 2))))
    (drop (call $fd_close (i32.load (i32.const 4))))
    (i32.store (i32.const 16) (i32.const 80))
    (i32.store (i32.const 20) (i32.const 8))
    (drop (call $fd_write (i32.const 1) (i32.const 16) (i32.const 1) (i32.const 12)))
    (i32.store (i32.const 16) (i32.const 24))
    (i32.store (i32.const 20) (i32.const 1))
    (if (call $fd_read (i32.const 0) (i32.const 16) (i32.const 1) (i32.const 12))
      (then (call $exit (i32.const 3))))
    (drop (call $fd_write (i32.load (i32.const 0)) (i32.const 16) (i32.const 1) (i32.const 12)))
    (if (call $fd_read (i32.load (i32.const 0)) (i32.const 16) (i32.const 1) (i32.const 12))
      (then (call $exit (i32.const 3))))
    (if (i32.ne (i32.load (i32.const 12)) (i32.const 1))
      (then (call $exit (i32.const 3))))
    (i32.store (i32.const 16) (i32.const 64))
    (i32.store (i32.const 20) (i32.const 13))
    (drop (call $fd_write (i32.const 1) (i32.const 16) (i32.const 1) (i32.const 12)))
    (i32.store (i32.const 16) (i32.const 24))
    (i32.store (i32.const 20) (i32.const 1))
    (block $end
      (loop $read
        (br_if $end (call $fd_read (i32.const 0) (i32.const 16) (i32.const 1) (i32.const 12)))
        (br_if $end (i32.eqz (i32.load (i32.const 12))))
        (br $read)))
    (call $exit (i32.const 0))))
