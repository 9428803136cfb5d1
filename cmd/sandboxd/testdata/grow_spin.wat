;; Grows its memory by 32 MiB, which starts a garbage collection in a
;; sandboxd that lets allocation trigger one, then spins without a host
;; call. Used by TestRunTimeoutEndsSpinningGuestWhateverTheCollectorDoes.
(module
  (memory (export "memory") 1)
  (func (export "_start")
    (drop (memory.grow (i32.const 512)))
    (loop $spin (br $spin))))
