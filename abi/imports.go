package abi

// importModuleNames returns the distinct module names of wasm's imports,
// read from its import section without decoding the rest of the module.
// It is a hint for starting work early (prepareHosts), not a validator: on
// anything it does not understand it returns what it has read so far, and
// wazero's decoder reports the real error.
func importModuleNames(wasm []byte) []string {
	r := wasmReader{b: wasm, ok: true}
	if len(wasm) < 8 || string(wasm[:4]) != "\x00asm" {
		return nil
	}
	r.b = r.b[8:]
	for len(r.b) > 0 {
		id := r.byte()
		size := r.u32()
		if !r.ok || uint64(size) > uint64(len(r.b)) {
			return nil
		}
		body := wasmReader{b: r.b[:size], ok: true}
		r.b = r.b[size:]
		switch {
		case id == 2:
			return body.importModules()
		case id != 0 && id > 2:
			return nil // sections are ordered: no import section
		}
	}
	return nil
}

func (r *wasmReader) importModules() []string {
	var names []string
	n := r.u32()
	for i := uint32(0); i < n && r.ok; i++ {
		mod := r.name()
		r.name() // the field
		switch r.byte() {
		case 0x00: // function: type index
			r.u32()
		case 0x01: // table: reference type, limits
			r.byte()
			r.limits()
		case 0x02: // memory: limits
			r.limits()
		case 0x03: // global: value type, mutability
			r.byte()
			r.byte()
		case 0x04: // tag: attribute, type index
			r.byte()
			r.u32()
		default:
			r.ok = false
		}
		if !r.ok {
			break
		}
		seen := false
		for _, m := range names {
			seen = seen || m == mod
		}
		if !seen {
			names = append(names, mod)
		}
	}
	return names
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

// u64 reads an unsigned LEB128 value of at most 10 bytes (memory64 limits).
func (r *wasmReader) u64() {
	for i := 0; i < 10; i++ {
		if r.byte()&0x80 == 0 {
			return
		}
	}
	r.ok = false
}

func (r *wasmReader) name() string {
	n := r.u32()
	if !r.ok || uint64(n) > uint64(len(r.b)) {
		r.ok = false
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

// limits reads a limits flag byte, the minimum and, if flagged, the maximum.
func (r *wasmReader) limits() {
	flags := r.byte()
	r.u64()
	if flags&1 != 0 {
		r.u64()
	}
}
