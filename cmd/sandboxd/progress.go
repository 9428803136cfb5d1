package main

import (
	"fmt"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// progressAfter is how long work goes without a word before progress
// says what is happening: compiling a large module takes seconds.
const progressAfter = 700 * time.Millisecond

// progress prints "sandboxd: WHAT…" on stderr if the work it announces is
// still going after progressAfter and stderr is a terminal, and "done in
// D" when the returned func is called. Elsewhere (a pipe, a log file) it
// prints nothing.
func progress(format string, args ...any) (done func()) {
	if !isTerminal(os.Stderr) {
		return func() {}
	}
	start := time.Now()
	t := time.AfterFunc(progressAfter, func() {
		progressLine.Lock()
		defer progressLine.Unlock()
		fmt.Fprintf(os.Stderr, "sandboxd: "+format+"…", args...)
		progressLine.open = true
	})
	return func() {
		t.Stop()
		progressLine.Lock()
		defer progressLine.Unlock()
		if progressLine.open {
			fmt.Fprintf(os.Stderr, " done in %v\n", time.Since(start).Round(10*time.Millisecond))
			progressLine.open = false
		}
	}
}

// progressLine is whether progress has left a line without its end on
// the terminal.
var progressLine struct {
	sync.Mutex
	open bool
}

// endProgressLine ends the line progress left open, if any, so that a
// line printed next (a signal's, as the process exits mid-way) starts a
// line of its own.
func endProgressLine() {
	progressLine.Lock()
	defer progressLine.Unlock()
	if progressLine.open {
		fmt.Fprintln(os.Stderr)
		progressLine.open = false
	}
}

// isTerminal reports whether f is a terminal.
func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// sizeText is a byte count for people: "812 KiB", "10.4 MiB".
func sizeText(n int) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}
