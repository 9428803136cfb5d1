package wasmbin

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// blocksModule is a module of funcs functions () -> (), the first
// exported as _start, each a sequence of blocks empty blocks.
func blocksModule(funcs, blocks int) []byte {
	section := func(id byte, body []byte) []byte {
		return append(uleb([]byte{id}, uint64(len(body))), body...)
	}
	m := []byte("\x00asm\x01\x00\x00\x00")
	m = append(m, section(secType, []byte{1, 0x60, 0, 0})...)
	fns := uleb(nil, uint64(funcs))
	for range funcs {
		fns = append(fns, 0)
	}
	m = append(m, section(secFunction, fns)...)
	m = append(m, section(secExport, append([]byte{1, 6}, append([]byte("_start"), 0, 0)...))...)
	body := append([]byte{0}, bytes.Repeat([]byte{0x02, 0x40, 0x0b}, blocks)...)
	body = append(body, 0x0b)
	code := uleb(nil, uint64(funcs))
	for range funcs {
		code = append(uleb(code, uint64(len(body))), body...)
	}
	return append(m, section(secCode, code)...)
}

// A function of more blocks, loops and ifs than the compiler gets
// through in reasonable time, or a module whose functions together are,
// is refused before it is compiled: 20,000 sequential ifs took wazero
// 12.5 s to compile, 170,000 would take hours, and neither a kill nor a
// timeout stops a compile within a function.
func TestAModuleOfTooManyBlocksIsRefused(t *testing.T) {
	for _, c := range []struct {
		name          string
		funcs, blocks int
		want          string // "" for a module that is rewritten
	}{
		{"one function at the bound", 1, MaxFunctionBlocks, ""},
		{"one function past the bound", 1, MaxFunctionBlocks + 1, "more than the 20000 sandboxd allows in one function"},
		{"functions that together stay within", 10, 10000, ""},
		{"functions that together pass it", 11, 10000, "the sum of each function's count squared passes"},
		{"many small functions", 10000, 300, ""},
	} {
		secs, err := Split(blocksModule(c.funcs, c.blocks))
		if err != nil {
			t.Fatal(err)
		}
		_, _, err = secs.Instrument(Checks{Loops: true, Stack: true})
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.want != "" && (!errors.As(err, new(*LimitError)) || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: %v, want a *LimitError saying %q", c.name, err, c.want)
		}
	}
}
