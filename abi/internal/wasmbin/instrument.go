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
//   - so does every function body: a guest need not loop to run for ever
//     (functions that each call the next twice make 2^n calls with a stack
//     n deep);
//   - and so does every return (and the function's end) that lies more
//     than maxUncheckedRest instructions past the function's first call:
//     as calls return, a guest runs the rest of every body on its stack,
//     and a rest need define no value the stack checks count (stores), so
//     that the stack does not bound it (60,000 frames of 140,000 stores
//     each, within the default --max-stack, ran 84 seconds). Between two
//     checks a guest then runs straight-line code only: a function body
//     up to its next call, loop or return, and, as calls return, at most
//     maxUncheckedRest instructions of each body on the stack. A check
//     after every call measured 13 % of the time of a Go guest that does
//     little but call functions (against 2 % for the checks at entry);
//     these are made only where a rest may be long. (Without the stack
//     checks' block, a branch to a function's own label leaves it without
//     its check at the end.)
//   - so does every bulk memory and table operation, each of which may
//     take long (isBulk);
//   - a start function is not left to run inside instantiation, where
//     nothing could stop it: the start section is removed and the function
//     exported as StartExport, which the runtime runs first;
//   - DWARF sections are dropped: their code offsets no longer hold (the
//     name section, renumbered, still names functions in traps).
//
// What yield does, and how the runtime stops a guest through the budget,
// is package abi's (abi/instrument.go).
//
// Stack checks.
//
// wazero grows a guest's call stack, outside its linear memory, up to a
// fixed ceiling of some hundred megabytes. With Checks.Stack the rewrite
// bounds it instead:
//
//   - a mutable i32 global, the stack allowance (bytes of call stack the
//     guest may still use), is appended and exported as StackExport; it
//     starts at DefaultMaxStack and the runtime sets it per guest;
//   - every function begins by subtracting its frame estimate (FrameBytes)
//     from the allowance, keeping the allowance it found in a local it is
//     given, and runs `unreachable` if the allowance went below zero;
//   - the function's body is wrapped in a block of its results, so that a
//     branch to the function's own label lands before its end; there, and
//     before every return, return_call and return_call_indirect, the
//     allowance is set back to what the function found.
//
// So the allowance is below zero only when a guest trapped at a call that
// would have taken it past its bound, which is how the runtime tells that
// trap from others.
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
	// StackExport is the export name of the stack allowance global.
	StackExport = "sandboxd.stack"
	// DefaultMaxStack is the allowance a module starts with, in bytes.
	DefaultMaxStack = 8 << 20
	// MaxStackAllowance is the largest allowance the global can hold.
	MaxStackAllowance = 1<<31 - 1
)

// FrameBytes is the stack a call of a function is counted to take: 32
// bytes, and 16 for each parameter, local and instruction of its body
// that may define a value (see defines). wazero's compiler gives every
// value it spills a slot of its own for the whole function, 8 bytes (16
// for a v128), and any value an instruction defines may be spilled, so a
// frame holds at most a slot per parameter, local and such instruction,
// beside the return address and frame pointer and the arguments passed on
// the stack (each a value counted already); 16 bytes a value covers both.
// A function that makes calls of several results is counted, besides,
// the results but one of the widest such call, as locals: the callee
// writes those beyond the registers into the caller's frame (the call
// instruction counts one). It is a bound, not a measure: a small
// recursive function measures 24 bytes a frame on amd64 and is counted
// over a hundred (docs/CLI.md, Call stack).
func FrameBytes(params, locals, instructions uint64) uint64 {
	return min(32+16*(params+locals+instructions), 1<<30)
}

// RewriteVersion names what the runtime compiles for a module (the
// sections MergeData and BoundTables may change, as Instrument rewrites
// them): a runtime that keeps rewritten modules between processes keys
// them by it, so a change to that output must change it.
const RewriteVersion = 9

// maxUncheckedRest is how far past a function's first call a return may
// lie without a loop check: at most that many instructions of each frame
// on the stack run unchecked as calls return, some 45 million for the
// 175,000 frames (of 48 bytes, the least a function that calls counts) of
// the default --max-stack. A short rest after a call, as most have, costs
// nothing: checks at the returns further than 64 instructions measured
// some 3 % of gofib's time, those further than 256 too little to tell
// from the noise of the machine measured on.
const maxUncheckedRest = 256

// Checks selects what Instrument adds.
type Checks struct {
	Loops bool // the loop checks: yield, the budget global
	Stack bool // the stack checks: the allowance global
}

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
// and globals land, and the functions' types.
type instrumenter struct {
	Checks
	importedFuncs uint32 // functions imported before yield; defined ones move up by one with loop checks
	yield         uint32 // yield's function index
	budget        uint32 // the budget global's index
	stack         uint32 // the allowance global's index
	types         []funcType
	importTypes   []uint32 // the type index of each imported function
	funcTypes     []uint32 // the type index of each defined function
	// blockTypes are the type indices of the types () -> results the
	// rewrite appends for the blocks that wrap functions of more than one
	// result, by their results' encoding; newTypes encodes them.
	blockTypes map[string]uint32
	newTypes   []byte
	// elementEntries counts the entries of the element segments read
	// (Precheck's bound, MaxElementEntries).
	elementEntries uint64
	// blockWork sums the squares of the functions' block counts
	// (MaxBlockWork).
	blockWork uint64
}

// countBlocks adds function index's blocks to the module's and refuses a
// function or a module past MaxFunctionBlocks or MaxBlockWork.
func (in *instrumenter) countBlocks(index uint32, blocks uint64) error {
	if blocks > MaxFunctionBlocks {
		return &LimitError{fmt.Sprintf("function %d has %d blocks, loops and ifs, more than the %d sandboxd allows in one function (the compiler's time grows with their square)", index, blocks, MaxFunctionBlocks)}
	}
	if in.blockWork += blocks * blocks; in.blockWork > MaxBlockWork {
		return &LimitError{fmt.Sprintf("its functions have too many blocks, loops and ifs for one module: the sum of each function's count squared passes the %d sandboxd allows (the compiler's time grows with it)", uint64(MaxBlockWork))}
	}
	return nil
}

// funcType is what the stack checks need of a function type.
type funcType struct {
	params  uint32
	results []byte // value types
}

func (in *instrumenter) fn(x uint32) uint32 {
	if in.Loops && x >= in.importedFuncs {
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

// Instrument returns the module with the checks c selects (see above),
// and whether it moved a start function to StartExport. It fails on
// anything it cannot read; the caller then lets wazero judge the original.
func (secs Sections) Instrument(c Checks) (code []byte, startMoved bool, err error) {
	in, types, start, err := secs.layout(c)
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
// that already exports BudgetExport, StackExport or StartExport.
func (secs Sections) layout(c Checks) (in instrumenter, types uint32, start []byte, err error) {
	in.Checks = c
	for _, s := range secs {
		if _, known := sectionOrder[s.ID]; !known && s.ID != secCustom {
			return in, 0, nil, fmt.Errorf("unknown section id %d", s.ID)
		}
	}
	var n counts
	for _, s := range secs {
		if err := in.read(s, &n); err != nil {
			return in, 0, nil, err
		}
	}
	in.yield = in.importedFuncs
	in.budget = n.importedGlobals + n.definedGlobals
	in.stack = in.budget
	if c.Loops {
		in.stack++
	}
	if c.Stack {
		if err := in.wrapperTypes(n.types); err != nil {
			return in, 0, nil, err
		}
	}
	return in, n.types, n.start, nil
}

// counts are what layout reads besides the instrumenter's own fields.
type counts struct {
	types, importedGlobals, definedGlobals uint32
	start                                  []byte // the start section's body
}

// read reads what the rewrite needs of section s into in and n.
func (in *instrumenter) read(s Section, n *counts) error {
	b := wasmReader{b: s.Body, ok: true}
	switch s.ID {
	case secType:
		n.types = b.u32()
		if in.Stack {
			in.types = b.funcTypes(n.types)
		}
	case secFunction:
		if in.Stack {
			in.funcTypes = b.u32s()
		}
	case secImport:
		for _, im := range b.imports() {
			switch im.Kind {
			case ExternFunc:
				in.importedFuncs++
				in.importTypes = append(in.importTypes, im.Type)
			case externGlobal:
				n.importedGlobals++
			}
		}
	case secGlobal:
		n.definedGlobals = b.u32()
	case secStart:
		n.start = s.Body
	case secExport:
		for _, ex := range b.exports() {
			if ex.Name == BudgetExport || ex.Name == StackExport || ex.Name == StartExport {
				return fmt.Errorf("the module already exports %q", ex.Name)
			}
		}
	}
	if !b.ok {
		return fmt.Errorf("malformed section %d", s.ID)
	}
	return nil
}

// wrapperTypes finds the types () -> results the blocks that wrap the
// functions of more than one result need, to be appended after the
// module's types (and yield's), of which there are types.
func (in *instrumenter) wrapperTypes(types uint32) error {
	next := types
	if in.Loops {
		next++ // yield's type comes first
	}
	for _, ti := range in.funcTypes {
		if ti >= uint32(len(in.types)) {
			return fmt.Errorf("function type %d out of range", ti)
		}
		res := in.types[ti].results
		if len(res) < 2 {
			continue
		}
		if in.blockTypes == nil {
			in.blockTypes = map[string]uint32{}
		}
		if _, ok := in.blockTypes[string(res)]; !ok {
			in.blockTypes[string(res)] = next
			next++
			in.newTypes = append(uleb(append(in.newTypes, 0x60, 0x00), uint64(len(res))), res...)
		}
	}
	return nil
}

// u32s reads a vector of u32 values.
func (r *wasmReader) u32s() []uint32 {
	n := r.u32()
	var v []uint32
	for i := uint32(0); i < n && r.ok; i++ {
		v = append(v, r.u32())
	}
	return v
}

// funcTypes reads n function types.
func (r *wasmReader) funcTypes(n uint32) []funcType {
	var ts []funcType
	for i := uint32(0); i < n && r.ok; i++ {
		if r.byte() != 0x60 {
			r.ok = false
			break
		}
		var t funcType
		t.params = r.u32()
		for j := uint32(0); j < t.params && r.ok; j++ {
			r.byte()
		}
		nres := r.u32()
		if uint64(nres) > uint64(len(r.b)) {
			r.ok = false
			break
		}
		t.results = r.b[:nres]
		r.b = r.b[nres:]
		ts = append(ts, t)
	}
	return ts
}

// additions encodes what the rewrite appends, in section order: yield's
// type, its import, the budget global, and the exports of the budget and
// of the start function when start (the start section's body) is not nil.
func (in *instrumenter) additions(types uint32, start []byte) ([]addition, error) {
	var adds []addition
	var newTypes, newGlobals, newExports []byte
	var nTypes, nGlobals, nExports uint32
	if in.Loops {
		newTypes = append(newTypes, 0x60, 0x00, 0x01, 0x7f) // func () -> i32
		nTypes++
		newImport := append(name(name(nil, LoopModule), "yield"), ExternFunc)
		newImport = uleb(newImport, uint64(types))
		adds = append(adds, addition{secImport, 1, newImport})
		newGlobals = append(sleb32(append(newGlobals, 0x7f, 0x01, 0x41), LoopBudget), 0x0b) // mut i32 = i32.const LoopBudget
		nGlobals++
		newExports = uleb(append(name(newExports, BudgetExport), externGlobal), uint64(in.budget))
		nExports++
	}
	if in.Stack {
		newTypes = append(newTypes, in.newTypes...)
		nTypes += uint32(len(in.blockTypes))
		newGlobals = append(sleb32(append(newGlobals, 0x7f, 0x01, 0x41), DefaultMaxStack), 0x0b) // mut i32 = i32.const DefaultMaxStack
		nGlobals++
		newExports = uleb(append(name(newExports, StackExport), externGlobal), uint64(in.stack))
		nExports++
	}
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
	if nTypes > 0 {
		adds = append(adds, addition{secType, nTypes, newTypes})
	}
	if nGlobals > 0 {
		adds = append(adds, addition{secGlobal, nGlobals, newGlobals})
	}
	if nExports > 0 {
		adds = append(adds, addition{secExport, nExports, newExports})
	}
	return adds, nil
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
		in.elementEntries += uint64(count)
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

// code rewrites the code section: the checks, and calls and function
// references renumbered.
func (in *instrumenter) code(body []byte) ([]byte, error) {
	return rewriteVector(body, "code", func(i uint32, r *wasmReader, out []byte) ([]byte, error) {
		body := r.sized()
		if !r.ok {
			return nil, fmt.Errorf("function %d: truncated body", i)
		}
		fn, err := in.function(i, body.b)
		if err != nil {
			return nil, fmt.Errorf("function %d: %w", i, err)
		}
		return append(uleb(out, uint64(len(fn))), fn...), nil
	})
}

func (in *instrumenter) function(index uint32, body []byte) ([]byte, error) {
	r := wasmReader{b: body, ok: true}
	f, ft, locals, weightAt, err := in.head(index, &r)
	if err != nil {
		return nil, err
	}
	for len(r.b) > 0 {
		at := len(body) - len(r.b)
		if err := f.step(&r); err != nil {
			return nil, fmt.Errorf("at byte %d: %w", at, err)
		}
	}
	if err := in.countBlocks(index, f.blocks); err != nil {
		return nil, err
	}
	if in.Stack {
		// The results of a call are each a value in the caller's frame
		// (beyond the registers, where the callee writes them), as a
		// local is; the call instruction counts one of them already.
		w := FrameBytes(uint64(ft.params), locals+uint64(f.results), f.instructions)
		for _, at := range weightAt {
			putLEB5(f.out[at:at+5], uint32(w))
		}
	}
	return f.out, nil
}

// head reads the locals of a function body from r and starts its rewrite:
// with the stack checks, one more local and the prologue, whose two frame
// estimates, at weightAt, are filled in once the body is read; with the
// loop checks, the check at its entry.
func (in *instrumenter) head(index uint32, r *wasmReader) (f *bodyRewrite, ft funcType, locals uint64, weightAt [2]int, err error) {
	body := r.b
	groups := r.u32()
	groupsAt := len(body) - len(r.b)
	for i := uint32(0); i < groups && r.ok; i++ {
		locals += uint64(r.u32()) // count
		r.byte()                  // value type
	}
	if !r.ok {
		return nil, ft, 0, weightAt, errors.New("malformed locals")
	}
	f = &bodyRewrite{in: in, out: make([]byte, 0, len(body)+len(body)/8+48), firstCall: -1}
	if in.Stack {
		if index >= uint32(len(in.funcTypes)) {
			return nil, ft, 0, weightAt, errors.New("more bodies than functions")
		}
		ft = in.types[in.funcTypes[index]]
		f.saved = ft.params + uint32(locals)
		f.out = uleb(f.out, uint64(groups)+1)
		f.out = append(f.out, body[groupsAt:len(body)-len(r.b)]...)
		f.out = append(f.out, 0x01, 0x7f) // one more i32 local
		f.out, weightAt = in.prologue(f.out, f.saved, ft.results)
	} else {
		f.out = append(f.out, body[:len(body)-len(r.b)]...)
	}
	if in.Loops { // the function's entry is checked as a loop's is
		f.out = in.check(f.out)
	}
	return f, ft, locals, weightAt, nil
}

// bodyRewrite is the rewrite of one function body under way.
type bodyRewrite struct {
	in    *instrumenter
	out   []byte
	saved uint32 // the local that keeps the allowance the function found
	// instructions counts those that may define a value (FrameBytes), and
	// results is the most results of a call the function makes, but one.
	instructions uint64
	results      int
	// n counts the instructions read, and firstCall is n at the first call
	// or call_indirect (-1: none yet): a return further from it than
	// maxUncheckedRest is checked, since the rest after a call, which
	// every frame on the stack runs as calls return, may be that long.
	n, firstCall int
	// blocks counts the block, loop and if instructions read
	// (MaxFunctionBlocks).
	blocks uint64
}

// step rewrites the instruction r begins and advances r past it.
func (f *bodyRewrite) step(r *wasmReader) error {
	f.before(*r)
	out, op, err := f.in.instruction(r, f.out)
	if err != nil {
		return err
	}
	f.out = out
	if op == 0x02 || op == 0x03 || op == 0x04 {
		f.blocks++
	}
	if op == 0x03 && f.in.Loops { // loop: the check opens its body
		f.out = f.in.check(f.out)
	}
	if (op == 0x10 || op == 0x11) && f.firstCall < 0 {
		f.firstCall = f.n
	}
	f.n++
	return nil
}

// before adds what goes before the instruction r begins: a check before a
// return far from the first call, or a bulk memory operation; with the
// stack checks, the allowance restored before every way out of the
// function, and the instruction counted.
func (f *bodyRewrite) before(r wasmReader) {
	in := f.in
	end := r.b[0] == 0x0b && len(r.b) == 1
	exit := in.Loops && f.firstCall >= 0 && f.n-f.firstCall > maxUncheckedRest && (end || r.b[0] == 0x0f)
	if (exit && !in.Stack) || (in.Loops && isBulk(r)) {
		f.out = in.check(f.out)
	}
	if !in.Stack {
		return
	}
	switch op := r.b[0]; {
	case end: // the function's end: the block's, then its own
		f.out = append(f.out, 0x0b)
		f.exit(exit)
	case op == 0x0f: // return
		f.exit(exit)
	case op == 0x12 || op == 0x13: // return_call, return_call_indirect
		f.exit(false)
	}
	if defines(r.b[0]) {
		f.instructions++
	}
	f.results = max(f.results, in.callResults(r)-1)
}

// exit adds, with the stack checks, what a way out of the function runs:
// the check, if check, then the allowance restored (local.get saved;
// global.set stack).
func (f *bodyRewrite) exit(check bool) {
	if check {
		f.out = f.in.check(f.out)
	}
	f.out = uleb(append(uleb(append(f.out, 0x20), uint64(f.saved)), 0x24), uint64(f.in.stack))
}

// callResults returns the number of results of the function that the
// instruction r begins calls (call, call_indirect and their return_
// forms), or 0 for any other instruction. r is not advanced.
func (in *instrumenter) callResults(r wasmReader) int {
	var ti uint32
	switch op := r.byte(); op {
	case 0x10, 0x12: // call, return_call: a function index
		x := r.u32()
		switch {
		case !r.ok:
			return 0
		case x < uint32(len(in.importTypes)):
			ti = in.importTypes[x]
		case x-uint32(len(in.importTypes)) < uint32(len(in.funcTypes)):
			ti = in.funcTypes[x-uint32(len(in.importTypes))]
		default:
			return 0
		}
	case 0x11, 0x13: // call_indirect, return_call_indirect: a type index
		ti = r.u32()
	default:
		return 0
	}
	if !r.ok || ti >= uint32(len(in.types)) {
		return 0
	}
	return len(in.types[ti].results)
}

// defines reports whether an instruction of opcode op may define a value
// the compiler keeps in a slot of its own: not local.get, local.set,
// local.tee and global.set (which move values), constants (rematerialised),
// drop, nop, unreachable, stores, else, end and branches.
func defines(op byte) bool {
	switch {
	case op <= 0x01, op == 0x05, op >= 0x0b && op <= 0x0f, op == 0x1a, op >= 0x20 && op <= 0x22, op == 0x24, op >= 0x36 && op <= 0x3e, op >= 0x41 && op <= 0x44:
		return false
	}
	return true
}

// prologue appends the stack check that opens a function whose results
// are results, keeping the allowance it found in local saved, and returns
// where its two frame estimates go (five-byte placeholders): global.get
// stack; local.tee saved; i32.const w; i32.sub; global.set stack;
// local.get saved; i32.const w; i32.lt_s; if unreachable end; block
// (results).
func (in *instrumenter) prologue(out []byte, saved uint32, results []byte) ([]byte, [2]int) {
	var weightAt [2]int
	out = uleb(append(out, 0x23), uint64(in.stack))
	out = uleb(append(out, 0x22), uint64(saved))
	weightAt[0] = len(out) + 1
	out = append(out, 0x41, 0x80, 0x80, 0x80, 0x80, 0x00, 0x6b)
	out = uleb(append(out, 0x24), uint64(in.stack))
	out = uleb(append(out, 0x20), uint64(saved))
	weightAt[1] = len(out) + 1
	out = append(out, 0x41, 0x80, 0x80, 0x80, 0x80, 0x00, 0x48)
	out = append(out, 0x04, 0x40, 0x00, 0x0b, 0x02)
	switch len(results) {
	case 0:
		out = append(out, 0x40)
	case 1:
		out = append(out, results[0])
	default:
		out = sleb32(out, int32(in.blockTypes[string(results)]))
	}
	return out, weightAt
}

// putLEB5 writes v into b as a signed LEB128 of exactly five bytes (v
// below 2^31).
func putLEB5(b []byte, v uint32) {
	for i := 0; i < 4; i++ {
		b[i] = byte(v&0x7f) | 0x80
		v >>= 7
	}
	b[4] = byte(v & 0x7f)
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

// isBulk reports whether the next instruction r holds is a bulk memory
// or table operation (memory.init, memory.copy, memory.fill, table.init,
// table.copy, table.fill), each of which may take long: up to the whole
// memory, gigabytes, or table in one instruction. Each is preceded by a
// check, so that a body of nothing but bulk operations does not run for
// minutes between two checks.
func isBulk(r wasmReader) bool {
	if r.byte() != 0xfc {
		return false
	}
	switch sub := r.u32(); {
	case !r.ok:
		return false
	case sub == 8 || sub == 10 || sub == 11: // memory.init, memory.copy, memory.fill
		return true
	default:
		return sub == 12 || sub == 14 || sub == 17 // table.init, table.copy, table.fill
	}
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
