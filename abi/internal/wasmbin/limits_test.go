package wasmbin

import (
	"bytes"
	"context"
	"errors"
	"runtime"
	"strings"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// tableSection encodes a table section of the given tables.
func tableSection(ts ...tableType) []byte { return encodeTables(ts) }

func readTables(t *testing.T, body []byte) []tableType {
	t.Helper()
	ts, err := tableTypes(body)
	if err != nil {
		t.Fatalf("rewritten table section is malformed: %v: % x", err, body)
	}
	return ts
}

func TestBoundTablesSharesWhatTheMinimumsLeave(t *testing.T) {
	const share = (maxTableEntries - 10 - 4) / 3
	body, changed, err := boundTableSection(tableSection(
		tableType{elem: refFunc, min: 10},                        // no maximum: gets its share
		tableType{elem: refExtern, min: 4, max: 8, hasMax: true}, // below its share: stays
		tableType{elem: refFunc, max: 1 << 30, hasMax: true},     // above its share: lowered
	))
	if err != nil || !changed {
		t.Fatalf("changed %v, err %v", changed, err)
	}
	got := readTables(t, body)
	want := []tableType{
		{elem: refFunc, min: 10, max: 10 + share, hasMax: true},
		{elem: refExtern, min: 4, max: 8, hasMax: true},
		{elem: refFunc, min: 0, max: share, hasMax: true},
	}
	var total uint64
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("table %d: %+v, want %+v", i, got[i], want[i])
		}
		total += uint64(got[i].max)
	}
	if total > maxTableEntries {
		t.Errorf("the maximums add up to %d entries, more than %d", total, maxTableEntries)
	}
}

func TestBoundTablesLeavesBoundedTablesAlone(t *testing.T) {
	in := tableSection(tableType{elem: refFunc, min: 300, max: 300, hasMax: true})
	body, changed, err := boundTableSection(in)
	if err != nil || changed || string(body) != string(in) {
		t.Fatalf("changed %v, err %v, body % x", changed, err, body)
	}
}

func TestBoundTablesRefusesWhatCannotBeBounded(t *testing.T) {
	for _, c := range []struct {
		name  string
		body  []byte
		says  string
		limit bool
	}{
		{"minimums over the bound", tableSection(tableType{elem: refFunc, min: maxTableEntries}, tableType{elem: refFunc, min: 1}),
			"tables declare 4194305 entries, more than the 4194304", true},
		{"element type", tableSection(tableType{elem: 0x63}), "element type 0x63", false},
		{"limits flags", []byte{1, refFunc, 4, 0}, "limits flags 0x4", false},
		{"truncated", []byte{1, refFunc, 1, 5}, "malformed table section", false},
		{"trailing bytes", append(tableSection(tableType{elem: refFunc}), 0), "after its last table", false},
		{"count over the bytes", []byte{9, refFunc, 0, 0}, "malformed table section", false},
	} {
		_, _, err := boundTableSection(c.body)
		if err == nil || !strings.Contains(err.Error(), c.says) {
			t.Errorf("%s: %v, want an error saying %q", c.name, err, c.says)
			continue
		}
		if limit := errors.As(err, new(*LimitError)); limit != c.limit {
			t.Errorf("%s: a LimitError: %v, want %v", c.name, limit, c.limit)
		}
	}
}

// A valid module stays valid once its tables are bounded.
func FuzzBoundTables(f *testing.F) {
	f.Add([]byte("\x00asm\x01\x00\x00\x00\x04\x04\x01\x70\x00\x05"))
	f.Add([]byte("\x00asm\x01\x00\x00\x00\x04\x09\x02\x70\x01\x01\x80\x80\x04\x6f\x00\x00"))
	// (module (table 1 funcref) (func (drop (table.grow 0 (ref.null func) (i32.const 1)))))
	f.Add([]byte("\x00asm\x01\x00\x00\x00\x01\x04\x01\x60\x00\x00\x03\x02\x01\x00\x04\x04\x01\x70\x00\x01\x0a\x0c\x01\x0a\x00\xd0\x70\x41\x01\xfc\x0f\x00\x1a\x0b"))
	ctx := context.Background()
	r := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().WithCoreFeatures(api.CoreFeaturesV2))
	defer r.Close(ctx)
	f.Fuzz(func(t *testing.T, wasm []byte) {
		secs, err := Split(wasm)
		if err != nil {
			return
		}
		if _, err := secs.Precheck(); err != nil {
			return // never reaches wazero
		}
		bounded, changed, err := secs.BoundTables()
		cm, cerr := r.CompileModule(ctx, wasm)
		if cerr != nil {
			return // not valid: nothing to keep
		}
		cm.Close(ctx)
		if err != nil || !changed {
			return // refused or left alone: the module as it was
		}
		cm, err = r.CompileModule(ctx, bounded.Encode())
		if err != nil {
			t.Fatalf("a valid module became invalid: %v", err)
		}
		cm.Close(ctx)
	})
}

// Only a module whose code may grow a table is rewritten: without
// table.grow its tables stay at their minimums. table.grow is found in any
// LEB128 spelling of its opcode.
func TestBoundTablesRewritesOnlyModulesThatGrowTables(t *testing.T) {
	unbounded := Section{secTable, tableSection(tableType{elem: refFunc, min: 1})}
	for _, c := range []struct {
		name string
		code []byte
		want bool
	}{
		{"no table.grow", []byte{1, 4, 0, 0xfc, 0x0b, 0x0b}, false}, // memory.fill is 0xfc 11
		{"table.grow", []byte{1, 5, 0, 0xfc, 0x0f, 0, 0x0b}, true},
		{"table.grow, long opcode", []byte{1, 7, 0, 0xfc, 0x8f, 0x80, 0x00, 0, 0x0b}, true},
	} {
		_, changed, err := Sections{unbounded, {secCode, c.code}}.BoundTables()
		if err != nil || changed != c.want {
			t.Errorf("%s: changed %v, err %v; want changed %v", c.name, changed, err, c.want)
		}
	}
	_, _, err := Sections{{secTable, tableSection(tableType{elem: refFunc, min: maxTableEntries + 1})}}.BoundTables()
	if !errors.As(err, new(*LimitError)) {
		t.Errorf("minimums over the bound in a module that never grows its tables: %v, want a LimitError", err)
	}
}

// Modules that declare, inside a section's entries, a vector far longer
// than the bytes that follow. wazero's decoder allocates by such a count
// before it reads: the first three, found by FuzzRunModule, made it
// allocate gigabytes each. precheck refuses them first.
func TestNestedCountBombsAreRefusedBeforeTheDecoderAllocates(t *testing.T) {
	header := "\x00asm\x01\x00\x00\x00"
	for _, c := range []struct{ name, wasm string }{
		{"element indices", header + "\x09\x0a\x04\x01\x00\xd8\xd8\xd8\x5a\x30\x30\x30"},
		{"element expressions", header + "\x09\x0a\x04\x07\x70\xff\xff\xff\x7f\x30\x30\x30"},
		{"element segments", header + "\x09\x0a\x09\x04\x0b\xca\xca\xca\xca\x03\xe8\x30"},
		{"function type parameters", header + "\x01\x07\x01\x60\xff\xff\xff\xff\x0f"},
		{"import name", header + "\x02\x07\x01\xff\xff\xff\xff\x0f\x00"},
		{"export name", header + "\x07\x07\x01\xff\xff\xff\xff\x0f\x00"},
		{"data bytes", header + "\x0b\x07\x01\x01\xff\xff\xff\xff\x0f"},
		{"function names", header + "\x00\x0c\x04name\x01\x05\xff\xff\xff\xff\x0f"},
		// Found by FuzzInstrumentLoops: wazero allocated 2 GB for it.
		{"custom section name", header + "\x00\x07\xf8\xff\xff\xff\x07\xff\xff"},
	} {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		err := precheck([]byte(c.wasm))
		runtime.ReadMemStats(&after)
		if err == nil || !strings.Contains(err.Error(), "runs past its end") {
			t.Errorf("%s: precheck: %v, want a count that runs past its section's end", c.name, err)
		}
		if d := after.TotalAlloc - before.TotalAlloc; d > 1<<20 {
			t.Errorf("%s: precheck allocated %d bytes", c.name, d)
		}
	}
}

// oneFunction is a module of one function whose body takes size bytes:
// i32.const 0, then i32.eqz until drop and end close it, an instruction a
// byte.
func oneFunction(size int) []byte {
	body := append([]byte{0x00, 0x41, 0x00}, bytes.Repeat([]byte{0x45}, size-5)...)
	body = append(body, 0x1a, 0x0b)
	code := uleb([]byte{1}, uint64(len(body)))
	m := []byte("\x00asm\x01\x00\x00\x00\x01\x04\x01\x60\x00\x00\x03\x02\x01\x00")
	m = append(uleb(append(m, secCode), uint64(len(code)+len(body))), code...)
	return append(m, body...)
}

// wazero's compiler takes some 340 bytes of memory for each instruction of
// the function it compiles: one function of 4 million instructions (a
// 12 MB module, well under a launch's 32 MiB) took 1.4 GB to compile, and
// proc_spawn reads modules up to 128 MiB. precheck refuses a function
// body over MaxFunctionBytes, which holds at most a million.
func TestFunctionBodiesAreBounded(t *testing.T) {
	if err := precheck(oneFunction(MaxFunctionBytes)); err != nil {
		t.Fatalf("a body of %d bytes: %v", MaxFunctionBytes, err)
	}
	err := precheck(oneFunction(MaxFunctionBytes + 1))
	if !errors.As(err, new(*LimitError)) {
		t.Fatalf("a body of %d bytes: %v, want a *LimitError", MaxFunctionBytes+1, err)
	}
}
