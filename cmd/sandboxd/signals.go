package main

import (
	"os"
	"os/signal"
	"sync"
	"syscall"
)

// catchSignals catches SIGINT and SIGTERM from the start of run's or an
// attached launch's setup until the process exits. Until started is
// called, a signal ends the process at once, with the status and the one
// sandboxd: line of a guest the signal ended, saying that nothing ran:
// reading a module and compiling it take seconds for a large one, and
// neither can be stopped half-way, so the command does not wait for them
// only to start the guest and kill it. From started on, each signal is
// sent on sigs, for the caller to end its guest (one while sigs is full
// is dropped: the first already ends it). A signal the process was
// started with ignored (SIGINT in a shell's background job) stays
// ignored: catching it would turn it back on.
func catchSignals() (sigs <-chan os.Signal, started func()) {
	caught := make(chan os.Signal, 1)
	for _, sig := range []os.Signal{syscall.SIGINT, syscall.SIGTERM} {
		if !signal.Ignored(sig) {
			signal.Notify(caught, sig)
		}
	}
	out := make(chan os.Signal, 1)
	var mu sync.Mutex
	setup := true
	go func() {
		for sig := range caught {
			mu.Lock()
			if setup {
				reason, code := signalExit(sig)
				endProgressLine()
				fail("%s before the guest started: nothing ran", reason)
				os.Exit(code)
			}
			mu.Unlock()
			select {
			case out <- sig:
			default:
			}
		}
	}()
	return out, func() {
		mu.Lock()
		setup = false
		mu.Unlock()
	}
}
