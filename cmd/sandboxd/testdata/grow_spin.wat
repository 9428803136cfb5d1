;; Grows its memory by 192 MiB, more than run lets the Go runtime's memory
;; grow before it collects (gcHeadroom), then spins without a host call:
;; a sandboxd that counted guest memory as the Go runtime's would start a
;; garbage collection that waits for the spinning guest forever. Used by
;; TestRunTimeoutEndsSpinningGuestWhateverTheCollectorDoes.
(module
  (memory (export "memory") 1)
  (func (export "_start")
    (drop (memory.grow (i32.const 3072)))
    (loop $spin (br $spin))))
