// Package wasmbin reads and rewrites the WebAssembly binary format, as far
// as sandboxd needs before wazero compiles a module: it splits a module
// into its sections, reads what it imports and exports, refuses declared
// counts that would make wazero's decoder allocate without bound, bounds
// its tables, and gives every loop a check that lets the runtime stop a
// guest that never calls the host (Sections.Instrument). It touches no
// guest, no runtime and no capability: package abi does that with what it
// returns.
package wasmbin

import (
	"errors"
	"fmt"
)

// External kinds of the WebAssembly binary format: what an import or
// export is.
const (
	ExternFunc   = 0x00
	externTable  = 0x01
	ExternMemory = 0x02
	externGlobal = 0x03
	externTag    = 0x04
)

// Shape is what a module imports and exports, read from its import and
// export sections without decoding the rest, and how many functions it
// defines.
type Shape struct {
	Imports   []Import
	Exports   []Export
	Functions uint64
}

// Import is one import: a module name, a name in it and an external kind.
type Import struct {
	Module, Name string
	Kind         byte
	Type         uint32 // a function's type index
}

// Export is one export: its name and external kind.
type Export struct {
	Name string
	Kind byte
}

// Section is one section of a module: its id and its bytes.
type Section struct {
	ID   byte
	Body []byte
}

// Sections are a module's sections, in order.
type Sections []Section

// Split checks wasm's header and splits the rest into sections. The
// runtime splits a module once; its checks, its shape and the loop-check
// rewrite all read these.
func Split(wasm []byte) (Sections, error) {
	if len(wasm) < 8 || string(wasm[:4]) != "\x00asm" {
		return nil, errors.New("no WebAssembly magic number: not a .wasm file")
	}
	if string(wasm[4:8]) != "\x01\x00\x00\x00" {
		return nil, errors.New("not WebAssembly binary format version 1")
	}
	var secs Sections
	r := wasmReader{b: wasm[8:], ok: true}
	for len(r.b) > 0 {
		id := r.byte()
		body := r.sized()
		if !r.ok {
			return nil, fmt.Errorf("section %d runs past the end of the module", id)
		}
		secs = append(secs, Section{id, body.b})
	}
	return secs, nil
}

// shape reads the import and export sections, and refuses them if they
// are malformed: a name longer than the bytes left, an unknown kind,
// bytes after the last entry.
func (secs Sections) shape() (s Shape, err error) {
	for _, sec := range secs {
		body := wasmReader{b: sec.Body, ok: true}
		switch sec.ID {
		case secImport:
			s.Imports = body.imports()
		case secExport:
			s.Exports = body.exports()
		default:
			continue
		}
		if !body.ok || len(body.b) != 0 {
			return s, errPastEnd(sec.ID)
		}
	}
	return s, nil
}

// ModuleNames returns the distinct module names of the imports, in the
// order they first appear.
func (s Shape) ModuleNames() []string {
	var names []string
	for _, im := range s.Imports {
		seen := false
		for _, n := range names {
			seen = seen || n == im.Module
		}
		if !seen {
			names = append(names, im.Module)
		}
	}
	return names
}

func (r *wasmReader) imports() []Import {
	n := r.u32()
	var l []Import
	for i := uint32(0); i < n && r.ok; i++ {
		e := Import{Module: r.name(), Name: r.name(), Kind: r.byte()}
		switch e.Kind {
		case ExternFunc:
			e.Type = r.u32()
		case externTable:
			r.byte() // reference type
			r.limits()
		case ExternMemory:
			r.limits()
		case externGlobal:
			r.byte() // value type
			r.byte() // mutability
		case externTag:
			r.byte() // attribute
			r.u32()  // type index
		default:
			r.ok = false
		}
		l = append(l, e)
	}
	return l
}

func (r *wasmReader) exports() []Export {
	n := r.u32()
	var l []Export
	for i := uint32(0); i < n && r.ok; i++ {
		e := Export{Name: r.name(), Kind: r.byte()}
		r.u32() // index
		if e.Kind > externTag {
			r.ok = false
		}
		l = append(l, e)
	}
	return l
}

// wasmReader reads the WebAssembly binary encoding; after the first
// malformed or truncated value ok is false and every read returns zero.
type wasmReader struct {
	b  []byte
	ok bool
}

func (r *wasmReader) byte() byte {
	if len(r.b) == 0 {
		r.ok = false
	}
	if !r.ok {
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

// u32 reads an unsigned LEB128 value of at most 5 bytes.
func (r *wasmReader) u32() uint32 {
	var v uint32
	for shift := 0; shift < 35; shift += 7 {
		c := r.byte()
		v |= uint32(c&0x7f) << shift
		if c&0x80 == 0 {
			return v
		}
	}
	r.ok = false
	return 0
}

// u64 skips an unsigned LEB128 value of at most 10 bytes (memory64 limits).
func (r *wasmReader) u64() {
	for i := 0; i < 10; i++ {
		if r.byte()&0x80 == 0 {
			return
		}
	}
	r.ok = false
}

// sized reads a byte length and returns a reader of that many bytes,
// which r skips; a length past r's end makes r not ok and the result
// empty.
func (r *wasmReader) sized() wasmReader {
	n := r.u32()
	if !r.ok || uint64(n) > uint64(len(r.b)) {
		r.ok = false
		return wasmReader{}
	}
	sub := wasmReader{b: r.b[:n], ok: true}
	r.b = r.b[n:]
	return sub
}

func (r *wasmReader) name() string { return string(r.sized().b) }

// limits skips a limits flag byte, the minimum and, if flagged, the maximum.
func (r *wasmReader) limits() {
	flags := r.byte()
	r.u64()
	if flags&1 != 0 {
		r.u64()
	}
}

// maxLocals bounds the locals one function may declare (as browsers do):
// the decoder sizes its tables by the declared counts.
const maxLocals = 50000

// maxModuleLocals bounds the locals of all of a module's functions: the
// decoder keeps about 8 bytes per declared local, so a 16 KB module of
// 2,000 functions declaring 50,000 locals each (100 million in all) would
// cost some 800 MB to refuse. Real programs declare a few per function.
const maxModuleLocals = 1 << 22

// MaxFunctions bounds the functions a module defines, as browsers do
// (V8: 1,000,000): each costs the compiler time and memory however small
// it is. abi's BenchmarkCompileMostFunctions compiles a million empty ones
// (a 4 MB module) in about 5 s, allocating about 300 MB and keeping about
// 140 MB (docs/BENCHMARKS.md).
const MaxFunctions = 1000000

// MaxFunctionBytes bounds the size of one function body. wazero's
// compiler takes some 340 bytes of memory for each instruction of the
// function it compiles (one of 4 million took 1.4 GB), so a function of
// 1 MiB, at most a million instructions, takes some 350 MB. The largest
// function of a 13 MB Go program has 50 KB.
const MaxFunctionBytes = 1 << 20

// MaxFunctionBlocks and MaxBlockWork bound the control flow the compiler
// is given. wazero's SSA passes (the loop nesting forest, dominance) take
// time that grows with the square of a function's blocks or faster, and
// check for cancellation only between functions, so neither a kill nor a
// timeout stops them: 10,000 nested blocks took 0.45 s, 20,000 took 2.0 s
// and 100,000 (300 KB) 77 s; 10,000 sequential ifs took 2.1 s and 20,000
// 12.5 s; the 170,000 that fit in one 1 MiB body would take hours, holding
// one of the daemon's compile turns. A function may have 20,000 blocks,
// loops and ifs, and the squares of the functions' counts may sum to
// 10^9 (ten functions of 10,000 ifs, at the bound, compiled in 20–23 s: abi.BenchmarkCompileBlocksAtTheBound). The Go programs of the tests
// have at most 984 in one function and sum to 2.3×10^7 (a 13 MB one).
const (
	MaxFunctionBlocks = 20000
	MaxBlockWork      = 1e9
)

// MaxElementEntries bounds the entries of all of a module's element
// segments together: wazero keeps each in the compiled module and makes a
// function reference of it in every instance, some 40 bytes in each,
// outside the guest's linear memory and so outside --mem. 1,048,576 (some
// 40 MB an instance) is more than the functions a module may define
// (MaxFunctions), each of which a table needs once.
const MaxElementEntries = 1 << 20

// MaxGlobals bounds the globals a module defines: wazero keeps each in
// every instance (some 80 bytes), outside the guest's linear memory.
// 262,144 (some 20 MB an instance) is far more than compilers emit.
const MaxGlobals = 1 << 18

// vectorSections are the sections whose body begins with an entry count.
var vectorSections = [secTag + 1]bool{
	secType: true, secImport: true, secFunction: true, secTable: true, secMemory: true, secGlobal: true,
	secExport: true, secElement: true, secCode: true, secData: true, secTag: true,
}

// Precheck refuses a module whose declared counts cannot be right, before
// wazero's decoder sizes anything by them: a 13-byte module declaring 268
// million exports would otherwise cost over a minute and gigabytes to
// reject. Every count must fit in the bytes that follow it (each entry
// takes at least one); a module may define at most MaxFunctions
// functions, of at most MaxFunctionBytes each, and declare at most
// maxLocals locals in one function and maxModuleLocals in all. It returns the module's shape, read in the same
// pass. A module may also define at most MaxGlobals globals and
// MaxElementEntries element entries. A count past a limit is a
// *LimitError.
func (secs Sections) Precheck() (Shape, error) {
	var functions uint32
	for _, sec := range secs {
		if int(sec.ID) >= len(vectorSections) || !vectorSections[sec.ID] {
			continue
		}
		body := wasmReader{b: sec.Body, ok: true}
		n := body.u32()
		if !body.ok {
			return Shape{}, fmt.Errorf("section %d has a malformed entry count", sec.ID)
		}
		if uint64(n) > uint64(len(body.b)) {
			return Shape{}, fmt.Errorf("section %d declares %d entries in %d bytes", sec.ID, n, len(body.b))
		}
		if (sec.ID == secFunction || sec.ID == secCode) && n > MaxFunctions {
			return Shape{}, &LimitError{fmt.Sprintf("it defines %d functions, more than the %d sandboxd allows", n, MaxFunctions)}
		}
		if sec.ID == secFunction {
			functions = n
		}
		if sec.ID == secGlobal && n > MaxGlobals {
			return Shape{}, &LimitError{fmt.Sprintf("it defines %d globals, more than the %d sandboxd allows", n, MaxGlobals)}
		}
		if sec.ID == secCode {
			if err := body.precheckCode(n); err != nil {
				return Shape{}, err
			}
		}
	}
	if err := secs.precheckNested(); err != nil {
		return Shape{}, err
	}
	shape, err := secs.shape()
	shape.Functions = uint64(functions)
	return shape, err
}

func (r *wasmReader) precheckCode(n uint32) error {
	var total uint64
	for i := uint32(0); i < n; i++ {
		fn := r.sized()
		if !r.ok {
			return fmt.Errorf("function body %d runs past the end of the code section", i)
		}
		if len(fn.b) > MaxFunctionBytes {
			return &LimitError{fmt.Sprintf("function body %d takes %d bytes, more than the %d sandboxd allows", i, len(fn.b), MaxFunctionBytes)}
		}
		groups := fn.u32()
		var locals uint64
		for j := uint32(0); j < groups && fn.ok; j++ {
			locals += uint64(fn.u32())
			fn.byte()
		}
		if locals > maxLocals {
			return &LimitError{fmt.Sprintf("function body %d declares %d locals, more than the %d sandboxd allows", i, locals, maxLocals)}
		}
		if total += locals; total > maxModuleLocals {
			return &LimitError{fmt.Sprintf("its functions declare more than the %d locals in all that sandboxd allows", maxModuleLocals)}
		}
	}
	return nil
}

// precheckNested applies precheck's rule to the vectors inside entries: a
// count or a byte length must fit in the bytes that follow it. wazero's
// decoder allocates by them before reading what they count, so that a
// 20-byte element section declaring 190 million function indices made it
// allocate gigabytes. Function types, import and export names, element
// segments, data segments, custom sections' names and the name section
// are checked here, import
// and export names by shape; what else a module holds is sized by the
// bytes present. Element segments and the name section are read by the
// walkers that give them loop checks, which stop where the bytes end
// whatever a count says; whether or not the module gets loop checks, the
// same modules pass.
func (secs Sections) precheckNested() error {
	var walk instrumenter // renumbers nothing that is kept
	for _, sec := range secs {
		r := wasmReader{b: sec.Body, ok: true}
		switch sec.ID {
		case secType:
			for n := r.count(); n > 0 && r.ok; n-- {
				r.byte() // 0x60
				r.skip(int(r.count()))
				r.skip(int(r.count()))
			}
		case secElement:
			if _, err := walk.elements(sec.Body); err != nil {
				r.ok = false
			} else if walk.elementEntries > MaxElementEntries {
				return &LimitError{fmt.Sprintf("its element segments hold %d entries, more than the %d sandboxd allows", walk.elementEntries, MaxElementEntries)}
			}
		case secData:
			for n := r.count(); n > 0 && r.ok; n-- {
				switch r.u32() {
				case 0:
					r.constExpr()
				case 1:
				case 2:
					r.u32() // memory index
					r.constExpr()
				default:
					r.ok = false
				}
				r.sized()
			}
		case secCustom:
			r.sized() // the section's own name
			if r.ok && customName(sec.Body) == "name" {
				if _, err := walk.names(sec.Body); err != nil {
					r.ok = false
				}
			}
		default:
			continue
		}
		if !r.ok {
			return errPastEnd(sec.ID)
		}
	}
	return nil
}

func errPastEnd(id byte) error {
	return fmt.Errorf("section %d holds a count or a length that runs past its end, or is malformed", id)
}

// count reads a vector's length, which must fit in the bytes that follow
// (every entry takes one at least).
func (r *wasmReader) count() uint32 {
	n := r.u32()
	if uint64(n) > uint64(len(r.b)) {
		r.ok = false
		return 0
	}
	return n
}

// constExpr passes a constant expression: instructions up to its end.
func (r *wasmReader) constExpr() {
	var in instrumenter
	var scratch [24]byte // the longest constant instruction, v128.const, takes 18
	for r.ok {
		_, op, err := in.instruction(r, scratch[:0])
		if err != nil {
			r.ok = false
		}
		if op == 0x0b {
			return
		}
	}
}
