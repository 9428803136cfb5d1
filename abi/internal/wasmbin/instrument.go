package wasmbin

import (
	"errors"
	"fmt"
	"strings"
)

// Loop checks.
//
// A guest must stop when it is killed, times out or loses its parent, even
// in a loop that makes no host call, and such a loop must not keep Go from
// pausing the guest's goroutine (a garbage collection pauses every
// goroutine, and waits for machine code to return to Go). wazero can do
// both itself (WithCloseOnContextDone), but by leaving the machine code for
// Go and back at every loop iteration, which makes CPU-bound guests several
// times slower. Sections.Instrument rewrites the module before it is
// compiled so that the same happens every LoopBudget iterations instead:
//
//   - a mutable i32 global, the budget, is appended and exported as
//     BudgetExport;
//   - a function `LoopModule.yield: () -> i32` is imported, after the
//     module's own imports;
//   - every loop body begins with: if the budget is below 1, call yield and
//     store what it returns as the budget; then decrement the budget;
//   - a start function is not left to run inside instantiation, where
//     nothing could stop it: the start section is removed and the function
//     exported as StartExport, which the runtime runs first;
//   - DWARF sections are dropped: their code offsets no longer hold (the
//     name section, renumbered, still names functions in traps).
//
// What yield does, and how the runtime stops a guest through the budget,
// is package abi's (abi/instrument.go).
const (
	// LoopModule is the import module of yield.
	LoopModule = "sandboxd_loop"
	// BudgetExport is the export name of the budget global.
	BudgetExport = "sandboxd.budget"
	// StartExport is the export name of a start function Instrument moved.
	StartExport = "sandboxd.start"
	// LoopBudget is the budget a module starts with: loop iterations
	// between two calls of yield.
	LoopBudget = 1 << 16
)

// Section ids.
const (
	secCustom    = 0
	secType      = 1
	secImport    = 2
	secFunction  = 3
	secTable     = 4
	secMemory    = 5
	secGlobal    = 6
	secExport    = 7
	secStart     = 8
	secElement   = 9
	secCode      = 10
	secData      = 11
	secDataCount = 12
	secTag       = 13
)

// sectionOrder is the required order of the known non-custom sections.
var sectionOrder = map[byte]int{
	secType: 1, secImport: 2, secFunction: 3, secTable: 4, secMemory: 5, secTag: 6, secGlobal: 7,
	secExport: 8, secStart: 9, secElement: 10, secDataCount: 11, secCode: 12, secData: 13,
}

// instrumenter holds what rewriting a module needs: where the new import
// and global land.
type instrumenter struct {
	importedFuncs uint32 // functions imported before yield; defined ones move up by one
	yield         uint32 // yield's function index
	budget        uint32 // the budget global's index
}

func (in *instrumenter) fn(x uint32) uint32 {
	if x >= in.importedFuncs {
		return x + 1
	}
	return x
}

// addition is what Instrument appends to one vector section: n entries,
// encoded in body.
type addition struct {
	id   byte
	n    uint32
	body []byte
}

// Instrument returns the module with loop checks (see above), and whether
// it moved a start function to StartExport. It fails on anything it cannot
// read; the caller then lets wazero judge the original.
func (secs Sections) Instrument() (code []byte, startMoved bool, err error) {
	in, types, start, err := secs.layout()
	if err != nil {
		return nil, false, err
	}
	adds, err := in.additions(types, start)
	if err != nil {
		return nil, false, err
	}
	var out Sections
	have := map[byte]bool{}
	for _, s := range secs {
		have[s.ID] = true
		s, keep, err := in.rewrite(s, adds)
		if err != nil {
			return nil, false, err
		}
		if keep {
			out = append(out, s)
		}
	}
	for _, add := range adds {
		if !have[add.id] {
			out = insertSection(out, Section{add.id, appendToVector([]byte{0}, add.n, add.body)})
		}
	}
	return out.Encode(), start != nil, nil
}

// layout reads where the rewrite's additions land: the instrumenter's
// indices, the number of types, and the start section's body (nil
// without one). It refuses unknown sections, malformed ones, and a module
// that already exports BudgetExport or StartExport.
func (secs Sections) layout() (in instrumenter, types uint32, start []byte, err error) {
	var importedGlobals, definedGlobals uint32
	for _, s := range secs {
		if _, known := sectionOrder[s.ID]; !known && s.ID != secCustom {
			return in, 0, nil, fmt.Errorf("unknown section id %d", s.ID)
		}
	}
	for _, s := range secs {
		b := wasmReader{b: s.Body, ok: true}
		switch s.ID {
		case secType:
			types = b.u32()
		case secImport:
			for _, im := range b.imports() {
				switch im.Kind {
				case ExternFunc:
					in.importedFuncs++
				case externGlobal:
					importedGlobals++
				}
			}
		case secGlobal:
			definedGlobals = b.u32()
		case secStart:
			start = s.Body
		case secExport:
			for _, ex := range b.exports() {
				if ex.Name == BudgetExport || ex.Name == StartExport {
					return in, 0, nil, fmt.Errorf("the module already exports %q", ex.Name)
				}
			}
		}
		if !b.ok {
			return in, 0, nil, fmt.Errorf("malformed section %d", s.ID)
		}
	}
	in.yield = in.importedFuncs
	in.budget = importedGlobals + definedGlobals
	return in, types, start, nil
}

// additions encodes what the rewrite appends, in section order: yield's
// type, its import, the budget global, and the exports of the budget and
// of the start function when start (the start section's body) is not nil.
func (in *instrumenter) additions(types uint32, start []byte) ([]addition, error) {
	newType := []byte{0x60, 0x00, 0x01, 0x7f} // func () -> i32
	newImport := append(name(name(nil, LoopModule), "yield"), ExternFunc)
	newImport = uleb(newImport, uint64(types))
	newGlobal := append(sleb32([]byte{0x7f, 0x01, 0x41}, LoopBudget), 0x0b) // mut i32 = i32.const LoopBudget
	newExports := append(name(nil, BudgetExport), externGlobal)
	newExports = uleb(newExports, uint64(in.budget))
	nExports := uint32(1)
	if start != nil {
		sr := wasmReader{b: start, ok: true}
		fn := sr.u32()
		if !sr.ok {
			return nil, errors.New("malformed start section")
		}
		newExports = append(name(newExports, StartExport), ExternFunc)
		newExports = uleb(newExports, uint64(in.fn(fn)))
		nExports++
	}
	return []addition{{secType, 1, newType}, {secImport, 1, newImport}, {secGlobal, 1, newGlobal}, {secExport, nExports, newExports}}, nil
}

// rewrite returns s as the instrumented module holds it, with adds
// appended where its id is one of theirs; keep is false for a section
// the rewrite drops (start, DWARF).
func (in *instrumenter) rewrite(s Section, adds []addition) (out Section, keep bool, err error) {
	switch s.ID {
	case secCustom:
		switch n := customName(s.Body); {
		case strings.HasPrefix(n, ".debug_"):
			return s, false, nil
		case n == "name":
			s.Body, err = in.names(s.Body)
		}
	case secStart:
		return s, false, nil
	case secGlobal:
		s.Body, err = in.globals(s.Body)
	case secExport:
		s.Body, err = in.exports(s.Body)
	case secElement:
		s.Body, err = in.elements(s.Body)
	case secCode:
		s.Body, err = in.code(s.Body)
	}
	if err != nil {
		return s, false, err
	}
	for _, add := range adds {
		if add.id == s.ID {
			s.Body = appendToVector(s.Body, add.n, add.body)
		}
	}
	return s, true, nil
}

// Encode writes the sections out as a module.
func (secs Sections) Encode() []byte {
	n := 8
	for _, s := range secs {
		n += 6 + len(s.Body)
	}
	w := append(make([]byte, 0, n), "\x00asm\x01\x00\x00\x00"...)
	for _, s := range secs {
		w = append(w, s.ID)
		w = uleb(w, uint64(len(s.Body)))
		w = append(w, s.Body...)
	}
	return w
}

// insertSection puts s before the first non-custom section that must
// follow it.
func insertSection(secs Sections, s Section) Sections {
	for i, o := range secs {
		if o.ID != secCustom && sectionOrder[o.ID] > sectionOrder[s.ID] {
			return append(secs[:i], append(Sections{s}, secs[i:]...)...)
		}
	}
	return append(secs, s)
}

// appendToVector returns a vector body (a count, then its elements) with n
// more elements, encoded in add, at its end.
func appendToVector(body []byte, n uint32, add []byte) []byte {
	r := wasmReader{b: body, ok: true}
	count := r.u32()
	out := uleb(nil, uint64(count+n))
	out = append(out, r.b...)
	return append(out, add...)
}

func customName(body []byte) string {
	r := wasmReader{b: body, ok: true}
	return r.name()
}

// rewriteVector copies the body of a vector section (a count, then its
// entries), passing each entry through entry, which reads it from r and
// appends its rewrite to out.
func rewriteVector(body []byte, what string, entry func(i uint32, r *wasmReader, out []byte) ([]byte, error)) ([]byte, error) {
	r := wasmReader{b: body, ok: true}
	n := r.u32()
	out := uleb(nil, uint64(n))
	for i := uint32(0); i < n && r.ok; i++ {
		var err error
		if out, err = entry(i, &r, out); err != nil {
			return nil, err
		}
	}
	if !r.ok || len(r.b) != 0 {
		return nil, fmt.Errorf("malformed %s section", what)
	}
	return out, nil
}

// exports renumbers function exports.
func (in *instrumenter) exports(body []byte) ([]byte, error) {
	return rewriteVector(body, "export", func(_ uint32, r *wasmReader, out []byte) ([]byte, error) {
		nm := r.name()
		kind := r.byte()
		idx := r.u32()
		if kind == ExternFunc {
			idx = in.fn(idx)
		}
		return uleb(append(name(out, nm), kind), uint64(idx)), nil
	})
}

// globals renumbers ref.func in global initialisers.
func (in *instrumenter) globals(body []byte) ([]byte, error) {
	return rewriteVector(body, "global", func(_ uint32, r *wasmReader, out []byte) ([]byte, error) {
		out = append(out, r.byte(), r.byte()) // value type, mutability
		return in.expr(r, out)
	})
}

// elements renumbers the functions of element segments.
func (in *instrumenter) elements(body []byte) ([]byte, error) {
	return rewriteVector(body, "element", func(_ uint32, r *wasmReader, out []byte) ([]byte, error) {
		flags := r.u32()
		if flags > 7 {
			return nil, fmt.Errorf("element segment flags %d", flags)
		}
		out = uleb(out, uint64(flags))
		if flags&2 != 0 && flags&1 == 0 { // an explicit table index
			out = uleb(out, uint64(r.u32()))
		}
		var err error
		if flags&1 == 0 { // active: an offset expression
			if out, err = in.expr(r, out); err != nil {
				return nil, err
			}
		}
		if flags&3 != 0 { // an element kind or reference type
			out = append(out, r.byte())
		}
		count := r.u32()
		out = uleb(out, uint64(count))
		for j := uint32(0); j < count && r.ok; j++ {
			if flags&4 != 0 {
				if out, err = in.expr(r, out); err != nil {
					return nil, err
				}
				continue
			}
			out = uleb(out, uint64(in.fn(r.u32())))
		}
		return out, nil
	})
}

// expr copies a constant expression up to its end, renumbering ref.func.
func (in *instrumenter) expr(r *wasmReader, out []byte) ([]byte, error) {
	for r.ok && len(r.b) > 0 {
		var op byte
		var err error
		if out, op, err = in.instruction(r, out); err != nil {
			return nil, err
		}
		if op == 0x0b {
			return out, nil
		}
	}
	return nil, errors.New("unterminated constant expression")
}

// names renumbers the function indices of the name section's function,
// local and label name maps.
func (in *instrumenter) names(body []byte) ([]byte, error) {
	r := wasmReader{b: body, ok: true}
	out := name(nil, r.name())
	for len(r.b) > 0 && r.ok {
		id := r.byte()
		sub := r.sized()
		if !r.ok {
			return nil, errors.New("malformed name section")
		}
		var b []byte
		switch id {
		case 1: // function names: vec(index, name)
			n := sub.u32()
			b = uleb(nil, uint64(n))
			for i := uint32(0); i < n && sub.ok; i++ {
				b = uleb(b, uint64(in.fn(sub.u32())))
				b = name(b, sub.name())
			}
		case 2, 3: // local and label names: vec(function index, vec(index, name))
			n := sub.u32()
			b = uleb(nil, uint64(n))
			for i := uint32(0); i < n && sub.ok; i++ {
				b = uleb(b, uint64(in.fn(sub.u32())))
				m := sub.u32()
				b = uleb(b, uint64(m))
				for j := uint32(0); j < m && sub.ok; j++ {
					b = uleb(b, uint64(sub.u32()))
					b = name(b, sub.name())
				}
			}
		default:
			b = sub.b
			sub.b = nil
		}
		if !sub.ok || len(sub.b) != 0 {
			return nil, fmt.Errorf("malformed name subsection %d", id)
		}
		out = append(out, id)
		out = uleb(out, uint64(len(b)))
		out = append(out, b...)
	}
	if !r.ok {
		return nil, errors.New("malformed name section")
	}
	return out, nil
}

// code rewrites the code section: the check at every loop, and calls and
// function references renumbered.
func (in *instrumenter) code(body []byte) ([]byte, error) {
	return rewriteVector(body, "code", func(i uint32, r *wasmReader, out []byte) ([]byte, error) {
		body := r.sized()
		if !r.ok {
			return nil, fmt.Errorf("function %d: truncated body", i)
		}
		fn, err := in.function(body.b)
		if err != nil {
			return nil, fmt.Errorf("function %d: %w", i, err)
		}
		return append(uleb(out, uint64(len(fn))), fn...), nil
	})
}

func (in *instrumenter) function(body []byte) ([]byte, error) {
	r := wasmReader{b: body, ok: true}
	groups := r.u32()
	for i := uint32(0); i < groups && r.ok; i++ {
		r.u32()  // count
		r.byte() // value type
	}
	if !r.ok {
		return nil, errors.New("malformed locals")
	}
	out := make([]byte, 0, len(body)+len(body)/8+16)
	out = append(out, body[:len(body)-len(r.b)]...)
	for len(r.b) > 0 {
		at := len(body) - len(r.b)
		var op byte
		var err error
		if out, op, err = in.instruction(&r, out); err != nil {
			return nil, fmt.Errorf("at byte %d: %w", at, err)
		}
		if op == 0x03 { // loop: the check opens its body
			out = in.check(out)
		}
	}
	return out, nil
}

// check appends: if (budget < 1) budget = yield(); budget--.
//
// The comparison is signed, and that matters: the budget is read twice, and
// a kill that sets it to 0 between the two reads makes the decrement store
// -1. Compared unsigned (i32.eqz) that is 2^32-1 iterations to go, seconds
// of a guest that will not die; compared signed it yields on the next
// iteration. A kill whose store the guest overwrites with its own
// decrement is lost only for one budget: the yield it then reaches sees
// the ended context.
func (in *instrumenter) check(out []byte) []byte {
	out = uleb(append(out, 0x23), uint64(in.budget)) // global.get budget
	out = append(out, 0x41, 0x01, 0x48, 0x04, 0x40)  // i32.const 1; i32.lt_s; if
	out = uleb(append(out, 0x10), uint64(in.yield))  // call yield
	out = uleb(append(out, 0x24), uint64(in.budget)) // global.set budget
	out = append(out, 0x0b)                          // end
	out = uleb(append(out, 0x23), uint64(in.budget)) // global.get budget
	out = append(out, 0x41, 0x01, 0x6b)              // i32.const 1; i32.sub
	return uleb(append(out, 0x24), uint64(in.budget))
}

// instruction copies one instruction to out, renumbering a function index
// it names, and returns its opcode. It knows the instructions of
// WebAssembly 2.0 (what the runtime is configured to accept) and tail calls.
func (in *instrumenter) instruction(r *wasmReader, out []byte) ([]byte, byte, error) {
	start := r.b
	op := r.byte()
	switch {
	case op == 0x10 || op == 0x12 || op == 0xd2: // call, return_call, ref.func
		x := r.u32()
		if !r.ok {
			return nil, op, fmt.Errorf("truncated instruction 0x%02x", op)
		}
		return uleb(append(out, op), uint64(in.fn(x))), op, nil
	case op == 0x02 || op == 0x03 || op == 0x04: // block, loop, if
		r.blockType()
	case op <= 0x01 || op == 0x05 || op == 0x0b || op == 0x0f || op == 0x1a || op == 0x1b || op == 0xd1 || (op >= 0x45 && op <= 0xc4):
		// no immediates
	case op == 0x0c || op == 0x0d || (op >= 0x20 && op <= 0x26) || op == 0x3f || op == 0x40:
		r.u32()
	case op == 0x0e: // br_table
		n := r.u32()
		for i := uint32(0); i <= n && r.ok; i++ {
			r.u32()
		}
	case op == 0x11 || op == 0x13: // call_indirect, return_call_indirect
		r.u32()
		r.u32()
	case op == 0x1c: // select t*
		n := r.u32()
		for i := uint32(0); i < n && r.ok; i++ {
			r.byte()
		}
	case op >= 0x28 && op <= 0x3e:
		r.memarg()
	case op == 0x41 || op == 0x42: // i32.const, i64.const
		r.u64()
	case op == 0x43:
		r.skip(4)
	case op == 0x44:
		r.skip(8)
	case op == 0xd0: // ref.null
		r.u64()
	case op == 0xfc:
		switch sub := r.u32(); {
		case sub <= 7:
		case sub == 8 || sub == 10 || sub == 12 || sub == 14:
			r.u32()
			r.u32()
		case sub <= 17:
			r.u32()
		default:
			return nil, op, fmt.Errorf("unknown instruction 0xfc %d", sub)
		}
	case op == 0xfd:
		switch sub := r.u32(); {
		case sub <= 11 || sub == 92 || sub == 93:
			r.memarg()
		case sub == 12 || sub == 13:
			r.skip(16)
		case sub >= 21 && sub <= 34:
			r.byte()
		case sub >= 84 && sub <= 91:
			r.memarg()
			r.byte()
		case sub <= 255:
		default:
			return nil, op, fmt.Errorf("unknown instruction 0xfd %d", sub)
		}
	default:
		return nil, op, fmt.Errorf("unknown instruction 0x%02x", op)
	}
	if !r.ok {
		return nil, op, fmt.Errorf("truncated instruction 0x%02x", op)
	}
	return append(out, start[:len(start)-len(r.b)]...), op, nil
}

func (r *wasmReader) blockType() {
	if len(r.b) > 0 {
		switch r.b[0] {
		case 0x40, 0x7f, 0x7e, 0x7d, 0x7c, 0x7b, 0x70, 0x6f:
			r.byte()
			return
		}
	}
	r.u64() // a type index, as a signed 33-bit value
}

func (r *wasmReader) memarg() {
	if align := r.u32(); align&0x40 != 0 {
		r.u32() // memory index
	}
	r.u64() // offset
}

func (r *wasmReader) skip(n int) {
	if len(r.b) < n {
		r.ok = false
		return
	}
	r.b = r.b[n:]
}

// uleb appends v as unsigned LEB128.
func uleb(b []byte, v uint64) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v == 0 {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

// sleb32 appends v as signed LEB128.
func sleb32(b []byte, v int32) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if (v == 0 && c&0x40 == 0) || (v == -1 && c&0x40 != 0) {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

// name appends a length-prefixed name.
func name(b []byte, s string) []byte {
	return append(uleb(b, uint64(len(s))), s...)
}
