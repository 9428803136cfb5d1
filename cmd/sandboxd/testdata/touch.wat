;; Grows its memory 1 MiB at a time, as malloc does through sbrk, and
;; touches every 4 KiB page of each new MiB, until it has touched 384 MiB;
;; exits 0, or 1 if a memory.grow is refused. Used by
;; TestRunPeakMemoryIsWhatTheGuestTouched.
(module
  (import "sandboxd" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    (local $mib i32) (local $p i32) (local $end i32)
    (block $done
      (loop $grow
        (br_if $done (i32.eq (local.get $mib) (i32.const 384)))
        (local.set $p (memory.grow (i32.const 16)))
        (if (i32.eq (local.get $p) (i32.const -1))
          (then (call $proc_exit (i32.const 1))))
        (local.set $p (i32.mul (local.get $p) (i32.const 65536)))
        (local.set $end (i32.add (local.get $p) (i32.const 1048576)))
        (loop $touch
          (i32.store8 (local.get $p) (i32.const 1))
          (local.set $p (i32.add (local.get $p) (i32.const 4096)))
          (br_if $touch (i32.lt_u (local.get $p) (local.get $end))))
        (local.set $mib (i32.add (local.get $mib) (i32.const 1)))
        (br $grow)))
    (call $proc_exit (i32.const 0))))
