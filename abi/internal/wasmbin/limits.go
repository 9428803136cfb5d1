package wasmbin

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
)

// maxTableEntries bounds the entries of all of a guest's tables together.
// wazero keeps a table as a slice of 8-byte references outside the guest's
// linear memory, so --mem does not bound it: without this a guest could
// grow a table that declares no maximum to 2^32 entries (32 GiB of the
// host's memory) with one table.grow. 4,194,304 entries (32 MiB) is far
// more than compilers emit for function tables.
const maxTableEntries = 1 << 22

// LimitError is a module that may be valid WebAssembly but asks for more
// than sandboxd gives a guest; the message names the limit.
type LimitError struct{ What string }

func (e *LimitError) Error() string { return e.What }

// Table element types of WebAssembly 2.0.
const (
	refFunc   = 0x70
	refExtern = 0x6f
)

// BoundTables gives every table a maximum, so that the module's tables
// together can never hold more than maxTableEntries (4,194,304) entries:
// what the minimums leave is shared out equally, and a declared maximum
// below a table's share stays as it is. A module whose minimums alone
// exceed the bound is refused (a *LimitError). changed reports whether any
// maximum was set; out is then a copy of secs, which is left as it was.
//
// A module whose code holds no table.grow keeps its tables at their
// minimums whatever their maximums say, so it is left as it is (after the
// check of its minimums): Go's wasip1 programs declare a table without a
// maximum and never grow it, and rewriting them would copy every such
// module at every start.
func (secs Sections) BoundTables() (out Sections, changed bool, err error) {
	table := slices.IndexFunc(secs, func(s Section) bool { return s.ID == secTable })
	if table < 0 {
		return secs, false, nil
	}
	body, changed, err := boundTableSection(secs[table].Body)
	if err != nil || !changed {
		return secs, false, err
	}
	if code := slices.IndexFunc(secs, func(s Section) bool { return s.ID == secCode }); code < 0 || !mayGrowTable(secs[code].Body) {
		return secs, false, nil
	}
	out = slices.Clone(secs)
	out[table].Body = body
	return out, true, nil
}

// mayGrowTable reports whether a code section may hold a table.grow
// instruction: 0xfc, then 15 as an unsigned LEB128 (of any length). It
// tries every 0xfc byte, so an immediate that looks like one counts too,
// which costs only a rewrite.
func mayGrowTable(code []byte) bool {
	for i := 0; ; {
		j := bytes.IndexByte(code[i:], 0xfc)
		if j < 0 {
			return false
		}
		i += j + 1
		r := wasmReader{b: code[i:], ok: true}
		if r.u32() == 15 && r.ok {
			return true
		}
	}
}

type tableType struct {
	elem     byte
	min, max uint32
	hasMax   bool
}

// tableTypes reads a table section.
func tableTypes(body []byte) ([]tableType, error) {
	r := wasmReader{b: body, ok: true}
	n := r.count()
	if !r.ok {
		return nil, errors.New("malformed table section")
	}
	tables := make([]tableType, 0, min(n, uint32(len(r.b)/3))) // a table takes 3 bytes at least
	for i := range n {
		t := tableType{elem: r.byte()}
		if r.ok && t.elem != refFunc && t.elem != refExtern {
			return nil, fmt.Errorf("table %d holds element type %#x: sandboxd runs WebAssembly 2.0 modules", i, t.elem)
		}
		flags := r.byte()
		if r.ok && flags > 1 {
			return nil, fmt.Errorf("table %d has limits flags %#x: sandboxd runs WebAssembly 2.0 modules", i, flags)
		}
		t.min = r.u32()
		if flags == 1 {
			t.max, t.hasMax = r.u32(), true
		}
		if !r.ok {
			return nil, errors.New("malformed table section")
		}
		tables = append(tables, t)
	}
	if len(r.b) != 0 {
		return nil, fmt.Errorf("malformed table section: %d bytes after its last table", len(r.b))
	}
	return tables, nil
}

// encodeTables writes a table section of ts.
func encodeTables(ts []tableType) []byte {
	out := uleb(nil, uint64(len(ts)))
	for _, t := range ts {
		flags := byte(0)
		if t.hasMax {
			flags = 1
		}
		out = append(out, t.elem, flags)
		out = uleb(out, uint64(t.min))
		if t.hasMax {
			out = uleb(out, uint64(t.max))
		}
	}
	return out
}

// boundTableSection is BoundTables for the table section body.
func boundTableSection(body []byte) ([]byte, bool, error) {
	tables, err := tableTypes(body)
	if err != nil {
		return nil, false, err
	}
	var sum uint64
	for _, t := range tables {
		sum += uint64(t.min)
	}
	if sum > maxTableEntries {
		return nil, false, &LimitError{fmt.Sprintf("its tables declare %d entries, more than the %d sandboxd allows a guest's tables in all", sum, maxTableEntries)}
	}
	if len(tables) == 0 {
		return body, false, nil
	}
	share := (maxTableEntries - sum) / uint64(len(tables))
	changed := false
	for i, t := range tables {
		if limit := uint64(t.min) + share; !t.hasMax || uint64(t.max) > limit {
			tables[i].max, tables[i].hasMax, changed = uint32(limit), true, true
		}
	}
	if !changed {
		return body, false, nil
	}
	return encodeTables(tables), true, nil
}

// MemoryMin returns the bytes of linear memory the module's own memory
// section asks for at instantiation (0 if it defines none).
func (secs Sections) MemoryMin() uint64 {
	for _, s := range secs {
		if s.ID != secMemory {
			continue
		}
		r := wasmReader{b: s.Body, ok: true}
		if n := r.u32(); n == 0 {
			return 0
		}
		r.byte() // limits flags
		pages := r.u32()
		if !r.ok {
			return 0 // malformed: the decoder says so
		}
		return uint64(pages) << 16
	}
	return 0
}
