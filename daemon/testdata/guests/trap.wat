;; Traps at once with "unreachable".
(module
  (func (export "_start") unreachable))
