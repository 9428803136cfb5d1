;; Loops forever without calling the host: only a kill can end it.
(module
  (func (export "_start")
    (loop $forever (br $forever))))
