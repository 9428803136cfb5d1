package abi

import (
	"testing"

	"github.com/sandboxd/sandboxd/abi/abitest"
)

// fd_write to a standard stream, the call guests make most, allocates
// nothing, through either ABI, with the capability held between calls or
// not: the iovec array it resolves stays on the stack (smallIOV). It
// allocated three times a call once writev handed its iovecs on to a
// host socket's send, which keeps them, and the ratio to wazero's
// fd_write went from 1.18 to 2.2 (BenchmarkHostCallRatio).
func TestFdWriteOfAStandardStreamAllocatesNothing(t *testing.T) {
	const calls = 1000
	for _, c := range []struct {
		name, wat string
		hold      bool
	}{
		{"native", "abi/testdata/guests/bench/sandboxd.wat", true},
		{"native, not held", "abi/testdata/guests/bench/sandboxd.wat", false},
		{"WASI", "abi/testdata/guests/bench/wasi.wat", true},
	} {
		l := sandboxdLoop(t, abitest.WAT(t, c.wat), "write_loop", c.hold)
		l.run(t, calls)
		allocs := testing.AllocsPerRun(5, func() { l.run(t, calls) })
		if allocs >= calls/10 {
			t.Errorf("%s: %v allocations for %d calls of fd_write to a standard stream, want none per call", c.name, allocs, calls)
		}
		l.check(t)
	}
}
