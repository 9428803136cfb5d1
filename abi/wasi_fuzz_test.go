package abi

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// FuzzWASICall calls every preview1 handler with arbitrary parameters and
// arbitrary guest memory, on a guest whose table holds stdio, read-write
// and read-only grants of a temporary directory (with a file, a
// subdirectory and a symlink that leads out), a byte object and a channel
// pair. The host must answer with an errno or unwind the guest (proc_exit,
// proc_raise, a kill while blocked); it must never panic, whatever the
// input.
func FuzzWASICall(f *testing.F) {
	seed := func(name string, mem []byte, params ...uint64) {
		idx := -1
		for i := range wasiCalls {
			if wasiCalls[i].Name == name {
				idx = i
			}
		}
		if idx < 0 {
			f.Fatalf("no preview1 function %s", name)
		}
		b := make([]byte, 8*len(params))
		for i, p := range params {
			binary.LittleEndian.PutUint64(b[8*i:], p)
		}
		f.Add(uint8(idx), b, mem)
	}
	seed("path_open", []byte("f"), 3, 1, 0, 1, 0, 0x3fffffff, 0x3fffffff, 0, 64)
	seed("path_open", []byte("out/passwd"), 3, 1, 0, 10, 0, 2, 0, 0, 64)
	seed("fd_readdir", nil, 3, 0, 4096, 0, 8192)
	seed("poll_oneoff", bytes.Repeat([]byte{0xff}, 96), 0, 200, 2, 400)
	seed("fd_write", []byte{8, 0, 0, 0, 5, 0, 0, 0, 'h', 'e', 'l', 'l', 'o'}, 1, 0, 1, 100)
	seed("args_get", nil, 0, 65534)
	seed("sock_recv", []byte{100, 0, 0, 0, 16, 0, 0, 0}, 7, 0, 1, 3, 200, 204)
	seed("fd_renumber", nil, 6, 3)
	seed("fd_fdstat_set_rights", nil, 3, ^uint64(0), ^uint64(0))
	fuzzCallTable(f, wasiCalls[:])
}
