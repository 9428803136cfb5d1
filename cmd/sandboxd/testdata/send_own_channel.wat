;; Makes a channel (fd_create2) and sends its stdin handle on it, one handle
;; a message, never receiving, until a send fails or 100 have been made;
;; exits with the number of sends that succeeded. Used to check serve's
;; --max-inflight-per-user.
(module
  (import "sandboxd" "fd_create2" (func $create2 (param i32 i32 i32) (result i32)))
  (import "sandboxd" "sock_send" (func $send (param i32 i32 i32) (result i32)))
  (import "sandboxd" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 200) "x")
  (func (export "_start")
    (local $n i32)
    (if (call $create2 (i32.const 0x80) (i32.const 400) (i32.const 404))
      (then (call $exit (i32.const 255))))
    (i32.store (i32.const 100) (i32.const 200)) ;; one iovec: "x"
    (i32.store (i32.const 104) (i32.const 1))
    (i32.store (i32.const 300) (i32.const 0))   ;; one fd: 0
    (i32.store (i32.const 0) (i32.const 100))   ;; send_in: iovs, iovs_len
    (i32.store (i32.const 4) (i32.const 1))
    (i32.store (i32.const 8) (i32.const 300))   ;; fds, fds_len
    (i32.store (i32.const 12) (i32.const 1))
    (i32.store16 (i32.const 16) (i32.const 0))  ;; flags
    (block $done
      (loop $again
        (br_if $done (i32.ge_u (local.get $n) (i32.const 100)))
        (br_if $done (call $send (i32.load (i32.const 400)) (i32.const 0) (i32.const 64)))
        (local.set $n (i32.add (local.get $n) (i32.const 1)))
        (br $again)))
    (call $exit (local.get $n))))
