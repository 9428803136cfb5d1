package abi

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/caps"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/sys"
)

// fuzzModule is a guest with one page of memory and nothing else: the
// fuzzer writes the memory and calls the handlers directly.
var fuzzModule = []byte{
	0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version
	0x05, 0x03, 0x01, 0x00, 0x01, // memory section: 1 memory, min 1 page
	0x07, 0x0a, 0x01, 0x06, 'm', 'e', 'm', 'o', 'r', 'y', 0x02, 0x00, // export "memory"
}

type fuzzEnv struct {
	rt  *Runtime
	mod api.Module
	dir string
}

func newFuzzEnv(t testing.TB) *fuzzEnv {
	ctx := context.Background()
	rt, err := NewRuntime(ctx, Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close(ctx) })
	cm, err := rt.r.CompileModule(ctx, fuzzModule)
	if err != nil {
		t.Fatal(err)
	}
	mod, err := rt.r.InstantiateModule(ctx, cm, wazero.NewModuleConfig().WithName(""))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "f"), []byte("contents"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../../etc", filepath.Join(dir, "out")); err != nil {
		t.Fatal(err)
	}
	return &fuzzEnv{rt: rt, mod: mod, dir: dir}
}

// fuzzMemory is what a fuzzed call's guest may hold in host memory.
const fuzzMemory = 4 << 20

// guest returns a fresh guest whose table holds stdio, a read-write and a
// read-only grant of the fuzz directory, a byte object and a channel pair.
func (e *fuzzEnv) guest(t testing.TB, ctx context.Context) *Guest {
	k := caps.NewKernel(nil)
	h := &caps.Holder{ID: "fuzz"}
	tbl := caps.NewTable(k, h, 16)
	var sink bytes.Buffer
	ins := func(c *caps.Cap) {
		if _, err := tbl.Insert(c); err != nil {
			t.Fatal(err)
		}
	}
	ins(k.Mint(h, caps.NewStdin(bytes.NewReader([]byte("input"))), caps.RightsTTYBase, 0, "stdin", "fuzz"))
	ins(k.Mint(h, caps.NewStdout("stdout", &sink), caps.RightsTTYBase, 0, "stdout", "fuzz"))
	ins(k.Mint(h, caps.NewStdout("stderr", &sink), caps.RightsTTYBase, 0, "stderr", "fuzz"))
	for _, ro := range []bool{false, true} {
		d, err := caps.OpenDir(e.dir)
		if err != nil {
			t.Fatal(err)
		}
		b, i := caps.GrantRights(caps.KindDirectory, ro)
		ins(k.Mint(h, d, b, i, "dir", "fuzz"))
	}
	// The guest's memory, as the daemon's budget per user charges it:
	// byte objects the input grows (up to a GiB each otherwise) would
	// make each run allocate as much, and the fuzzer's workers stall.
	mem := &testCharge{limit: fuzzMemory}
	ins(k.Mint(h, caps.NewChargedByteObject(mem), caps.RightsByteObjectBase, 0, "bytes", "fuzz"))
	a, b := caps.NewChannelPair(false, "fuzz")
	ins(k.Mint(h, a, caps.RightsSocketBase, caps.RightsSocketInheriting, "chan-a", "fuzz"))
	ins(k.Mint(h, b, caps.RightsSocketBase, caps.RightsSocketInheriting, "chan-b", "fuzz"))
	g := e.rt.NewGuest(&Module{compiledModule: &compiledModule{}}, GuestConfig{ID: "fuzz", Table: tbl, Args: []string{"fuzz"}, Memory: mem})
	g.ctx, g.cancel = context.WithCancelCause(ctx)
	g.started = time.Now()
	return g
}

// callHandler runs one handler and reports a panic that is not the guest
// unwinding on purpose (proc_exit, a kill while blocked).
func callHandler(fn handler, g *Guest, m api.Memory, p []uint64) (e Errno, panicked any) {
	defer func() {
		if r := recover(); r != nil {
			var ee *sys.ExitError
			if err, ok := r.(error); ok && errors.As(err, &ee) {
				return
			}
			panicked = r
		}
	}()
	return fn(g, m, p), nil
}

// FuzzNativeCall calls every native ABI handler with arbitrary parameters
// and arbitrary guest memory. The host must answer with an errno or unwind
// the guest (proc_exit, kill); it must never panic, whatever the input.
func FuzzNativeCall(f *testing.F) {
	f.Add(uint8(16), []byte{1, 0, 0, 0, 0, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0}, []byte("hello"))
	f.Add(uint8(21), []byte{3, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0}, []byte("f"))
	f.Add(uint8(37), bytes.Repeat([]byte{0xff}, 56), bytes.Repeat([]byte{0x01}, 128))
	f.Add(uint8(44), []byte{7, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0}, bytes.Repeat([]byte{0x10, 0, 0, 0}, 16))
	fuzzCallTable(f, calls[:])
}

// fuzzCallTable fuzzes the handlers of one ABI's table: the input picks a
// call, its parameters and the guest's memory contents; a fresh guest
// table (stdio, grants, a byte object, a channel pair) serves each input,
// and a 20 ms deadline unwinds any call that would block.
func fuzzCallTable(f *testing.F, table []Call) {
	env := newFuzzEnv(f)
	m := env.mod.Memory()
	f.Fuzz(func(t *testing.T, idx uint8, params []byte, mem []byte) {
		c := &table[int(idx)%len(table)]
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

func mustRead(t *testing.T, m api.Memory) []byte {
	b, ok := m.Read(0, m.Size())
	if !ok {
		t.Fatal("cannot view guest memory")
	}
	return b
}
