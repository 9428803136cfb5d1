package abi

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/abi/abitest"
	"github.com/sandboxd/sandboxd/caps"
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

// tableGrowWAT grows a table that declares no maximum: by 2^28 entries
// (2 GiB of the host's memory, outside --mem) the grow fails as the
// specification allows, returning -1; by 1000 it succeeds. The exit code
// says which step went wrong.
const tableGrowWAT = `(module
  (import "sandboxd" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (table $t 1 funcref)
  (func (export "_start")
    (if (i32.ne (table.grow $t (ref.null func) (i32.const 0x10000000)) (i32.const -1))
      (then (call $exit (i32.const 1))))
    (if (i32.ne (table.grow $t (ref.null func) (i32.const 1000)) (i32.const 1))
      (then (call $exit (i32.const 2))))
    (if (i32.ne (table.size $t) (i32.const 1001))
      (then (call $exit (i32.const 3))))
    (call $exit (i32.const 0))))`

func TestTableGrowthIsBoundedWithAndWithoutLoopChecks(t *testing.T) {
	wasm := wat2wasm(t, tableGrowWAT)
	for _, cfg := range []Config{{NoLoopChecks: true}, {}} {
		if st := runOnRuntime(t, cfg, wasm); st.Err() != nil || st.Code != 0 {
			t.Errorf("loop checks %v: %+v, want exit 0", !cfg.NoLoopChecks, st)
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
		secs, err := splitSections(wasm)
		if err != nil {
			return
		}
		if _, err := secs.precheck(); err != nil {
			return // never reaches wazero
		}
		bounded, changed, err := secs.boundTables()
		cm, cerr := r.CompileModule(ctx, wasm)
		if cerr != nil {
			return // not valid: nothing to keep
		}
		cm.Close(ctx)
		if err != nil || !changed {
			return // refused or left alone: the module as it was
		}
		cm, err = r.CompileModule(ctx, bounded.encode())
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
	unbounded := section{secTable, tableSection(tableType{elem: refFunc, min: 1})}
	for _, c := range []struct {
		name string
		code []byte
		want bool
	}{
		{"no table.grow", []byte{1, 4, 0, 0xfc, 0x0b, 0x0b}, false}, // memory.fill is 0xfc 11
		{"table.grow", []byte{1, 5, 0, 0xfc, 0x0f, 0, 0x0b}, true},
		{"table.grow, long opcode", []byte{1, 7, 0, 0xfc, 0x8f, 0x80, 0x00, 0, 0x0b}, true},
	} {
		_, changed, err := sections{unbounded, {secCode, c.code}}.boundTables()
		if err != nil || changed != c.want {
			t.Errorf("%s: changed %v, err %v; want changed %v", c.name, changed, err, c.want)
		}
	}
	_, _, err := sections{{secTable, tableSection(tableType{elem: refFunc, min: maxTableEntries + 1})}}.boundTables()
	if !errors.As(err, new(*LimitError)) {
		t.Errorf("minimums over the bound in a module that never grows its tables: %v, want a LimitError", err)
	}
}

// A module whose memory starts above the guest's limit ends as a trap
// naming both, and does not take the process down: wazero panics when its
// allocator refuses the initial memory.
func TestMemoryMinimumAboveTheLimitTrapsWithoutAPanic(t *testing.T) {
	ctx := context.Background()
	rt, err := NewRuntime(ctx, Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close(ctx) })
	m, err := rt.Compile(ctx, "big", wat2wasm(t, `(module (memory (export "memory") 100) (func (export "_start")))`))
	if err != nil {
		t.Fatal(err)
	}
	if m.MemoryMin() != 100<<16 {
		t.Fatalf("MemoryMin %d, want %d", m.MemoryMin(), 100<<16)
	}
	k := caps.NewKernel(nil)
	run := func() ExitStatus {
		return rt.NewGuest(m, GuestConfig{ID: "g", Table: caps.NewTable(k, &caps.Holder{ID: "g"}, 0), MemoryLimit: 1 << 16}).Run(ctx)
	}
	if st := run(); st.Code != 134 || st.Trap == nil || !strings.Contains(st.Trap.Error(), "needs 6553600 bytes of memory to start, more than the guest's limit of 65536") {
		t.Fatalf("status %+v", st)
	}
	// Without that check, wazero's panic ends the guest alone.
	m.memoryMin = 0
	if st := run(); st.Code != 134 || st.Trap == nil || !strings.Contains(st.Trap.Error(), "runtime failure") {
		t.Fatalf("status when wazero panics: %+v", st)
	}
}

// fuzzModuleSeeds are modules FuzzRunModule starts from: one that calls
// the host, one that spins, one that grows a table, one whose memory is
// larger than the fuzz guests' limit, one that recurses without end.
var fuzzModuleSeeds = []string{
	`(module
  (import "sandboxd" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "sandboxd" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "hello\n")
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const 6))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
    (call $proc_exit (i32.const 7))))`,
	`(module (func (export "_start") (loop $l (br $l))))`,
	tableGrowWAT,
	`(module (memory (export "memory") 100) (func (export "_start")))`,
	`(module (func $r (call $r)) (func (export "_start") (call $r)))`,
}

// Any module, run as a guest with a small memory limit and a short
// timeout, ends with a status: never a panic of the process, and never
// the "runtime failure" that a panic escaping wazero is turned into.
func FuzzRunModule(f *testing.F) {
	for _, src := range fuzzModuleSeeds {
		f.Add(wat2wasm(f, src))
	}
	ctx := context.Background()
	rt, err := NewRuntime(ctx, Config{NoDebugInfo: true, MaxIdleModules: 4})
	if err != nil {
		f.Fatal(err)
	}
	defer rt.Close(ctx)
	k := caps.NewKernel(nil)
	f.Fuzz(func(t *testing.T, wasm []byte) {
		m, err := rt.Compile(ctx, "fuzz", wasm)
		if err != nil {
			return
		}
		defer m.Release()
		tctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		defer cancel()
		g := rt.NewGuest(m, GuestConfig{ID: "g", Table: caps.NewTable(k, &caps.Holder{ID: "g"}, 0), MemoryLimit: 1 << 20})
		if st := g.Run(tctx); st.Trap != nil && strings.Contains(st.Trap.Error(), "runtime failure") {
			t.Fatalf("status %+v", st)
		}
	})
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

// BenchmarkCompileMostFunctions compiles a module of maxFunctions empty
// functions, the most precheck lets through, with loop checks as the
// daemon compiles: what one such module costs the host in time, in bytes
// allocated (B/op), and in resident memory that the compiled module keeps
// (MB-kept, the growth of the process's RSS while it is held).
func BenchmarkCompileMostFunctions(b *testing.B) {
	secs, err := splitSections(abitest.Functions(maxFunctions, "\x00\x0b"))
	if err != nil {
		b.Fatal(err)
	}
	wasm := insertSection(secs, section{secExport, []byte("\x01\x06_start\x00\x00")}).encode()
	ctx := context.Background()
	b.ReportAllocs()
	var kept uint64
	for b.Loop() {
		rt, err := NewRuntime(ctx, Config{NoDebugInfo: true})
		if err != nil {
			b.Fatal(err)
		}
		debug.FreeOSMemory()
		before := rss(b)
		m, err := rt.Compile(ctx, "functions", wasm)
		if err != nil {
			b.Fatal(err)
		}
		debug.FreeOSMemory()
		if after := rss(b); after > before {
			kept += after - before
		}
		m.Release()
		rt.Close(ctx)
	}
	b.ReportMetric(float64(kept)/float64(b.N)/(1<<20), "MB-kept")
}

// rss is the process's resident memory in bytes.
func rss(b *testing.B) uint64 {
	data, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		b.Fatal(err)
	}
	var size, resident uint64
	if _, err := fmt.Sscan(string(data), &size, &resident); err != nil {
		b.Fatal(err)
	}
	return resident * uint64(os.Getpagesize())
}
