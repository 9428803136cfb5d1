package abi

import (
	"bytes"
	"context"
	"encoding/binary"
	"testing"
	"time"

	"github.com/tetratelabs/wazero/api"
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
	env := newFuzzEnv(f)
	m := env.mod.Memory()
	f.Fuzz(func(t *testing.T, idx uint8, params []byte, mem []byte) {
		c := &wasiCalls[int(idx)%len(wasiCalls)]
		p := make([]uint64, max(len(c.Params), 1))
		for i := range c.Params {
			if len(params) >= 8 {
				p[i] = binary.LittleEndian.Uint64(params)
				params = params[8:]
			}
			if c.Params[i].Type == api.ValueTypeI32 {
				p[i] = uint64(uint32(p[i]))
			}
		}
		if len(mem) > int(m.Size()) {
			mem = mem[:m.Size()]
		}
		clear(mustRead(t, m))
		m.Write(0, mem)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		g := env.guest(t, ctx)
		defer g.table.CloseAll()
		if _, r := callHandler(c.fn, g, m, p); r != nil {
			t.Fatalf("%s(%v) panicked: %v", c.Name, p, r)
		}
	})
}
