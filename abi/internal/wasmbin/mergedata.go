package wasmbin

import (
	"cmp"
	"slices"
)

// mergeGap is the longest run of bytes between two data segments that
// MergeData fills with zeros to join them: shorter than an OS page, so the
// zeros lie in pages that the two segments' own bytes already touch, and
// the merged segment dirties no page of the guest's memory that the two
// did not.
const mergeGap = 4096

// The opcodes of a data segment's offset expression.
const (
	dataI32Const = 0x41
	dataEnd      = 0x0b
)

// dataSegment is an active data segment of memory 0 at a constant offset.
type dataSegment struct {
	offset uint32
	init   []byte
}

// MergeData joins the module's active data segments into as few as it
// can: in offset order, segments whose gaps are shorter than mergeGap
// become one segment, the gaps filled with zeros (at most as many zeros in
// all as the segments have bytes). As no two segments
// overlap, the order in which instantiation writes them does not matter,
// and the memory the module starts with is the same byte for byte.
//
// Go's wasip1 programs carry tens of thousands of small segments (its
// linker splits the data at every run of zeros), and wazero keeps a slice
// for every segment of every instance (24 bytes each, for memory.init):
// some 700 KB of Go heap for every instance of every Go guest, which
// merging takes down to a few hundred bytes.
//
// The module is left as it is (changed false) unless every segment is
// active on memory 0 at an i32.const offset, no two overlap, and the
// module defines its memory rather than importing
// it (the zeros would overwrite what the importer put there) and has no
// data count section (memory.init and data.drop name segments by index,
// and need one). out is then a copy of secs, which is left as it was.
func (secs Sections) MergeData() (out Sections, changed bool) {
	data := slices.IndexFunc(secs, func(s Section) bool { return s.ID == secData })
	if data < 0 || slices.ContainsFunc(secs, func(s Section) bool { return s.ID == secDataCount }) || importsMemory(secs) {
		return secs, false
	}
	segs, ok := dataSegments(secs[data].Body)
	if !ok {
		return secs, false
	}
	merged := mergeSegments(segs)
	if len(merged) == len(segs) {
		return secs, false
	}
	out = slices.Clone(secs)
	out[data].Body = encodeData(merged)
	return out, true
}

// importsMemory reports whether the module imports a memory. A malformed
// import section counts as one: Precheck refuses it first.
func importsMemory(secs Sections) bool {
	for _, s := range secs {
		if s.ID != secImport {
			continue
		}
		r := wasmReader{b: s.Body, ok: true}
		for _, im := range r.imports() {
			if im.Kind == ExternMemory {
				return true
			}
		}
		return !r.ok
	}
	return false
}

// dataSegments reads a data section whose segments MergeData may merge,
// sorted by offset; ok is false for any other.
func dataSegments(body []byte) (segs []dataSegment, ok bool) {
	r := wasmReader{b: body, ok: true}
	n := r.u32()
	if !r.ok || uint64(n) > uint64(len(r.b)) {
		return nil, false
	}
	segs = make([]dataSegment, 0, n)
	for range n {
		// Flag 0: active on memory 0, an offset expression, the bytes.
		if r.byte() != 0 || r.byte() != dataI32Const {
			return nil, false
		}
		off := uint32(r.readSleb32())
		if r.byte() != dataEnd {
			return nil, false
		}
		init := r.sized()
		if !r.ok {
			return nil, false
		}
		segs = append(segs, dataSegment{off, init.b})
	}
	if !r.ok || len(r.b) != 0 {
		return nil, false
	}
	slices.SortStableFunc(segs, func(a, b dataSegment) int { return cmp.Compare(a.offset, b.offset) })
	for i := 1; i < len(segs); i++ {
		if uint64(segs[i-1].offset)+uint64(len(segs[i-1].init)) > uint64(segs[i].offset) {
			return nil, false
		}
	}
	return segs, true
}

// mergeSegments joins segments (sorted by offset, none overlapping) whose
// gap is shorter than mergeGap, as long as the zeros it fills gaps with
// come to no more than the segments' own bytes: a module of many empty
// segments a page apart would otherwise make a few megabytes of wasm into
// gigabytes of merged data.
func mergeSegments(segs []dataSegment) []dataSegment {
	fill := uint64(0) // zeros left to fill gaps with
	for _, s := range segs {
		fill += uint64(len(s.init))
	}
	var out []dataSegment
	for i := 0; i < len(segs); {
		j, end := i+1, uint64(segs[i].offset)+uint64(len(segs[i].init))
		for j < len(segs) && uint64(segs[j].offset)-end < mergeGap && uint64(segs[j].offset)-end <= fill {
			fill -= uint64(segs[j].offset) - end
			end = uint64(segs[j].offset) + uint64(len(segs[j].init))
			j++
		}
		if j == i+1 {
			out = append(out, segs[i])
			i = j
			continue
		}
		buf := make([]byte, end-uint64(segs[i].offset))
		for _, s := range segs[i:j] {
			copy(buf[s.offset-segs[i].offset:], s.init)
		}
		out = append(out, dataSegment{segs[i].offset, buf})
		i = j
	}
	return out
}

// encodeData writes segments as a data section's body.
func encodeData(segs []dataSegment) []byte {
	n := 5
	for _, s := range segs {
		n += 13 + len(s.init)
	}
	w := uleb(make([]byte, 0, n), uint64(len(segs)))
	for _, s := range segs {
		w = append(w, 0, dataI32Const)
		w = sleb32(w, int32(s.offset))
		w = append(w, dataEnd)
		w = uleb(w, uint64(len(s.init)))
		w = append(w, s.init...)
	}
	return w
}

// readSleb32 reads a signed LEB128 value of at most 5 bytes. In a fifth
// byte only the low four bits are the value's; the three above them must
// repeat its sign, as the runtime's decoder insists: a module it would
// refuse is not read as one it accepts.
func (r *wasmReader) readSleb32() int32 {
	var v int32
	for shift := 0; shift < 35; shift += 7 {
		c := r.byte()
		if shift == 28 && c&0x78 != 0 && c&0x78 != 0x78 {
			r.ok = false
			return 0
		}
		v |= int32(c&0x7f) << shift
		if c&0x80 == 0 {
			if shift < 25 && c&0x40 != 0 {
				v |= -1 << (shift + 7)
			}
			return v
		}
	}
	r.ok = false
	return 0
}
