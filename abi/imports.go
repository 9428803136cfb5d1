package abi

import (
	"errors"
	"fmt"
)

// External kinds of the WebAssembly binary format.
const (
	externFunc   = 0x00
	externTable  = 0x01
	externMemory = 0x02
	externGlobal = 0x03
	externTag    = 0x04
)

// moduleShape is what a module imports and exports, read from its import
// and export sections without decoding the rest, and how many functions
// it defines.
type moduleShape struct {
	imports   []importEntry
	exports   []exportEntry
	functions uint64
}

type importEntry struct {
	module, name string
	kind         byte
}

type exportEntry struct {
	name string
	kind byte
}

// section is one section of a module: its id and its bytes.
type section struct {
	id   byte
	body []byte
}

// sections are a module's sections, in order.
type sections []section

// splitSections checks wasm's header and splits the rest into sections.
// Compile splits a module once; its checks, its shape and the loop-check
// rewrite all read these.
func splitSections(wasm []byte) (sections, error) {
	if len(wasm) < 8 || string(wasm[:4]) != "\x00asm" {
		return nil, errors.New("no WebAssembly magic number: not a .wasm file")
	}
	if string(wasm[4:8]) != "\x01\x00\x00\x00" {
		return nil, errors.New("not WebAssembly binary format version 1")
	}
	var secs sections
	r := wasmReader{b: wasm[8:], ok: true}
	for len(r.b) > 0 {
		id := r.byte()
		body := r.sized()
		if !r.ok {
			return nil, fmt.Errorf("section %d runs past the end of the module", id)
		}
		secs = append(secs, section{id, body.b})
	}
	return secs, nil
}

// shape reads the import and export sections, and refuses them if they
// are malformed: a name longer than the bytes left, an unknown kind,
// bytes after the last entry.
func (secs sections) shape() (s moduleShape, err error) {
	for _, sec := range secs {
		body := wasmReader{b: sec.body, ok: true}
		switch sec.id {
		case secImport:
			s.imports = body.imports()
		case secExport:
			s.exports = body.exports()
		default:
			continue
		}
		if !body.ok || len(body.b) != 0 {
			return s, errPastEnd(sec.id)
		}
	}
	return s, nil
}

// moduleNames returns the distinct module names of the imports.
func (s moduleShape) moduleNames() []string {
	var names []string
	for _, im := range s.imports {
		seen := false
		for _, n := range names {
			seen = seen || n == im.module
		}
		if !seen {
			names = append(names, im.module)
		}
	}
	return names
}

func (r *wasmReader) imports() []importEntry {
	n := r.u32()
	var l []importEntry
	for i := uint32(0); i < n && r.ok; i++ {
		e := importEntry{module: r.name(), name: r.name(), kind: r.byte()}
		switch e.kind {
		case externFunc:
			r.u32() // type index
		case externTable:
			r.byte() // reference type
			r.limits()
		case externMemory:
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

func (r *wasmReader) exports() []exportEntry {
	n := r.u32()
	var l []exportEntry
	for i := uint32(0); i < n && r.ok; i++ {
		e := exportEntry{name: r.name(), kind: r.byte()}
		r.u32() // index
		if e.kind > externTag {
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

// maxFunctions bounds the functions a module defines, as browsers do
// (V8: 1,000,000): each costs the compiler time and memory however small
// it is. BenchmarkCompileMostFunctions compiles a million empty ones (a
// 4 MB module) in about 5 s, allocating about 300 MB and keeping about
// 140 MB (docs/BENCHMARKS.md).
const maxFunctions = 1000000

// vectorSections are the sections whose body begins with an entry count.
var vectorSections = [secTag + 1]bool{
	secType: true, secImport: true, secFunction: true, secTable: true, secMemory: true, secGlobal: true,
	secExport: true, secElement: true, secCode: true, secData: true, secTag: true,
}

// precheck refuses a module whose declared counts cannot be right, before
// wazero's decoder sizes anything by them: a 13-byte module declaring 268
// million exports would otherwise cost over a minute and gigabytes to
// reject. Every count must fit in the bytes that follow it (each entry
// takes at least one); a module may define at most maxFunctions
// functions, and declare at most maxLocals locals in one function and
// maxModuleLocals in all. It returns the module's shape, read in the same
// pass.
func (secs sections) precheck() (moduleShape, error) {
	var functions uint32
	for _, sec := range secs {
		if int(sec.id) >= len(vectorSections) || !vectorSections[sec.id] {
			continue
		}
		body := wasmReader{b: sec.body, ok: true}
		n := body.u32()
		if !body.ok {
			return moduleShape{}, fmt.Errorf("section %d has a malformed entry count", sec.id)
		}
		if uint64(n) > uint64(len(body.b)) {
			return moduleShape{}, fmt.Errorf("section %d declares %d entries in %d bytes", sec.id, n, len(body.b))
		}
		if (sec.id == secFunction || sec.id == secCode) && n > maxFunctions {
			return moduleShape{}, &LimitError{fmt.Sprintf("it defines %d functions, more than the %d sandboxd allows", n, maxFunctions)}
		}
		if sec.id == secFunction {
			functions = n
		}
		if sec.id == secCode {
			if err := body.precheckCode(n); err != nil {
				return moduleShape{}, err
			}
		}
	}
	if err := secs.precheckNested(); err != nil {
		return moduleShape{}, err
	}
	shape, err := secs.shape()
	shape.functions = uint64(functions)
	return shape, err
}

func (r *wasmReader) precheckCode(n uint32) error {
	var total uint64
	for i := uint32(0); i < n; i++ {
		fn := r.sized()
		if !r.ok {
			return fmt.Errorf("function body %d runs past the end of the code section", i)
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
// segments, data segments and the name section are checked here, import
// and export names by shape; what else a module holds is sized by the
// bytes present. Element segments and the name section are read by the
// walkers that give them loop checks, which stop where the bytes end
// whatever a count says; whether or not the module gets loop checks, the
// same modules pass.
func (secs sections) precheckNested() error {
	var walk instrumenter // renumbers nothing that is kept
	for _, sec := range secs {
		r := wasmReader{b: sec.body, ok: true}
		switch sec.id {
		case secType:
			for n := r.count(); n > 0 && r.ok; n-- {
				r.byte() // 0x60
				r.skip(int(r.count()))
				r.skip(int(r.count()))
			}
		case secElement:
			if _, err := walk.elements(sec.body); err != nil {
				r.ok = false
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
			if customName(sec.body) == "name" {
				if _, err := walk.names(sec.body); err != nil {
					r.ok = false
				}
			}
		default:
			continue
		}
		if !r.ok {
			return errPastEnd(sec.id)
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
