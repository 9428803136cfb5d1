// Package argdata encodes and decodes CloudABI argdata, the typed argument
// tree a sandboxd guest receives at startup (argdata_get), describes
// handles with (fd_describe) and passes to children (proc_spawn). It uses
// only the standard library, so guests built with GOOS=wasip1 import it too.
//
// Format (NuxiNL/argdata): a value is a type tag then a body. Null is zero
// bytes. Map and seq entries are each prefixed by their length as a
// big-endian base-128 number whose last byte has its high bit set. An fd is
// always 4 bytes, big-endian, so fd leaves can be renumbered in place.
package argdata

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sort"
)

// Type is an argdata type tag.
type Type uint8

const (
	TypeNull      Type = 0
	TypeBinary    Type = 1
	TypeBool      Type = 2
	TypeFd        Type = 3
	TypeFloat     Type = 4
	TypeInt       Type = 5
	TypeMap       Type = 6
	TypeSeq       Type = 7
	TypeString    Type = 8
	TypeTimestamp Type = 9
)

var typeNames = [...]string{"null", "binary", "bool", "fd", "float", "int", "map", "seq", "string", "timestamp"}

func (t Type) String() string {
	if int(t) < len(typeNames) {
		return typeNames[t]
	}
	return fmt.Sprintf("type(%d)", uint8(t))
}

// Value is one decoded or to-be-encoded argdata value.
type Value struct {
	t     Type
	b     []byte // binary, string (without NUL)
	i     int64  // int, timestamp, bool (0/1), fd
	f     float64
	items []Value // seq elements, or map keys and values alternating
}

// Constructors.
func Null() Value              { return Value{} }
func Binary(b []byte) Value    { return Value{t: TypeBinary, b: b} }
func Bool(v bool) Value        { return Value{t: TypeBool, i: b2i(v)} }
func Fd(fd uint32) Value       { return Value{t: TypeFd, i: int64(fd)} }
func Float(f float64) Value    { return Value{t: TypeFloat, f: f} }
func Int(i int64) Value        { return Value{t: TypeInt, i: i} }
func String(s string) Value    { return Value{t: TypeString, b: []byte(s)} }
func Timestamp(ns int64) Value { return Value{t: TypeTimestamp, i: ns} }
func Seq(items ...Value) Value { return Value{t: TypeSeq, items: items} }
func MapOf(kv ...Value) Value  { return Value{t: TypeMap, items: kv} }
func (v Value) Type() Type     { return v.t }
func (v Value) IsNull() bool   { return v.t == TypeNull }
func b2i(v bool) int64 {
	if v {
		return 1
	}
	return 0
}

// StringMap builds a map with string keys, in sorted key order so that
// encodings are deterministic.
func StringMap(m map[string]Value) Value {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	kv := make([]Value, 0, 2*len(m))
	for _, k := range keys {
		kv = append(kv, String(k), m[k])
	}
	return MapOf(kv...)
}

// Accessors report ok=false when the value has another type.
func (v Value) Str() (string, bool)    { return string(v.b), v.t == TypeString }
func (v Value) Bytes() ([]byte, bool)  { return v.b, v.t == TypeBinary }
func (v Value) Int() (int64, bool)     { return v.i, v.t == TypeInt }
func (v Value) Fd() (uint32, bool)     { return uint32(v.i), v.t == TypeFd }
func (v Value) Bool() (bool, bool)     { return v.i != 0, v.t == TypeBool }
func (v Value) Float() (float64, bool) { return v.f, v.t == TypeFloat }
func (v Value) Time() (int64, bool)    { return v.i, v.t == TypeTimestamp }

// Items returns a seq's elements.
func (v Value) Items() []Value {
	if v.t != TypeSeq {
		return nil
	}
	return v.items
}

// Pairs calls fn for each key and value of a map, in order, until fn
// returns false.
func (v Value) Pairs(fn func(k, val Value) bool) {
	if v.t != TypeMap {
		return
	}
	for i := 0; i+1 < len(v.items); i += 2 {
		if !fn(v.items[i], v.items[i+1]) {
			return
		}
	}
}

// Get returns the value under a string key of a map.
func (v Value) Get(key string) (Value, bool) {
	var out Value
	found := false
	v.Pairs(func(k, val Value) bool {
		if s, ok := k.Str(); ok && s == key {
			out, found = val, true
			return false
		}
		return true
	})
	return out, found
}

// Encode returns the binary form of v.
func (v Value) Encode() []byte { return v.appendTo(nil) }

func (v Value) appendTo(b []byte) []byte {
	switch v.t {
	case TypeNull:
		return b
	case TypeBinary:
		return append(append(b, byte(TypeBinary)), v.b...)
	case TypeBool:
		b = append(b, byte(TypeBool))
		if v.i != 0 {
			b = append(b, 1)
		}
		return b
	case TypeFd:
		return binary.BigEndian.AppendUint32(append(b, byte(TypeFd)), uint32(v.i))
	case TypeFloat:
		return binary.BigEndian.AppendUint64(append(b, byte(TypeFloat)), math.Float64bits(v.f))
	case TypeInt, TypeTimestamp:
		return appendSigned(append(b, byte(v.t)), v.i)
	case TypeString:
		b = append(append(b, byte(TypeString)), v.b...)
		return append(b, 0)
	case TypeMap, TypeSeq:
		b = append(b, byte(v.t))
		for _, it := range v.items {
			enc := it.Encode()
			b = appendLen(b, len(enc))
			b = append(b, enc...)
		}
		return b
	}
	return b
}

// appendSigned writes i in the fewest big-endian two's-complement bytes.
func appendSigned(b []byte, i int64) []byte {
	if i == 0 {
		return b
	}
	var buf [8]byte
	binary.BigEndian.PutUint64(buf[:], uint64(i))
	n := 0
	for n < 7 {
		// Drop a leading byte while the next byte's top bit still carries
		// the sign.
		if (buf[n] == 0 && buf[n+1]&0x80 == 0) || (buf[n] == 0xff && buf[n+1]&0x80 != 0) {
			n++
			continue
		}
		break
	}
	return append(b, buf[n:]...)
}

func appendLen(b []byte, n int) []byte {
	var tmp [10]byte
	i := len(tmp) - 1
	tmp[i] = byte(n&0x7f) | 0x80
	n >>= 7
	for n > 0 {
		i--
		tmp[i] = byte(n & 0x7f)
		n >>= 7
	}
	return append(b, tmp[i:]...)
}

// MaxDepth bounds nesting when decoding.
const MaxDepth = 64

var (
	errTruncated = errors.New("argdata: truncated")
	errBadValue  = errors.New("argdata: malformed value")
	errTooDeep   = errors.New("argdata: nested too deeply")
)

// Decode parses a complete value. It never panics on any input.
func Decode(b []byte) (Value, error) { return decode(b, 0) }

// decode parses the value b at nesting depth depth; an empty b is null.
// Every error it returns is errTooDeep, errTruncated, errBadValue or an
// unknown-tag error, and it never panics. Binary and string values share
// b's memory rather than copying it.
func decode(b []byte, depth int) (Value, error) {
	if depth > MaxDepth {
		return Value{}, errTooDeep
	}
	if len(b) == 0 {
		return Value{}, nil
	}
	t, body := Type(b[0]), b[1:]
	if t == TypeMap || t == TypeSeq {
		return decodeItems(t, body, depth)
	}
	return decodeLeaf(t, body)
}

// decodeLeaf parses the body of a value of type t that holds no other
// values. Fixed-size bodies (fd, float) must have exactly their size, a
// bool is empty or one byte 1, and a string ends in its NUL, which the
// result does not keep; anything else is errBadValue.
func decodeLeaf(t Type, body []byte) (Value, error) {
	switch t {
	case TypeBinary:
		return Value{t: t, b: body}, nil
	case TypeBool:
		return decodeBool(body)
	case TypeFd:
		if len(body) != 4 {
			return Value{}, errBadValue
		}
		return Fd(binary.BigEndian.Uint32(body)), nil
	case TypeFloat:
		if len(body) != 8 {
			return Value{}, errBadValue
		}
		return Float(math.Float64frombits(binary.BigEndian.Uint64(body))), nil
	case TypeInt, TypeTimestamp:
		return decodeSigned(t, body)
	case TypeString:
		if len(body) == 0 || body[len(body)-1] != 0 {
			return Value{}, errBadValue
		}
		return Value{t: t, b: body[:len(body)-1]}, nil
	}
	return Value{}, fmt.Errorf("argdata: unknown type tag %d", uint8(t))
}

// decodeBool parses a bool body: empty is false, the one byte 1 is true,
// anything else is errBadValue.
func decodeBool(body []byte) (Value, error) {
	switch {
	case len(body) == 0:
		return Bool(false), nil
	case len(body) == 1 && body[0] == 1:
		return Bool(true), nil
	}
	return Value{}, errBadValue
}

// decodeSigned parses an int or timestamp body: at most 8 big-endian
// two's-complement bytes, sign-extended (empty is 0). A longer body is
// errBadValue.
func decodeSigned(t Type, body []byte) (Value, error) {
	if len(body) > 8 {
		return Value{}, errBadValue
	}
	var i int64
	if len(body) > 0 && body[0]&0x80 != 0 {
		i = -1
	}
	for _, c := range body {
		i = i<<8 | int64(c)
	}
	return Value{t: t, i: i}, nil
}

// decodeItems parses the body of a map or seq at nesting depth depth: a
// run of length-prefixed values, each decoded one level deeper. An entry
// longer than what remains is errTruncated, and a map with an odd number of
// entries (a key without a value) is errBadValue.
func decodeItems(t Type, body []byte, depth int) (Value, error) {
	var items []Value
	err := eachEntry(body, func(entry []byte) error {
		it, err := decode(entry, depth+1)
		items = append(items, it)
		return err
	})
	if err != nil {
		return Value{}, err
	}
	if t == TypeMap && len(items)%2 != 0 {
		return Value{}, errBadValue
	}
	return Value{t: t, items: items}, nil
}

// Valid reports whether Decode would decode b, without building its
// value: it allocates nothing, whatever b holds. (Decoded, a value takes
// many times its encoding: a seq of nulls, a byte each, some 370 times.)
func Valid(b []byte) bool { return validate(b, 0) == nil }

// validate is decode building nothing.
func validate(b []byte, depth int) error {
	if depth > MaxDepth {
		return errTooDeep
	}
	if len(b) == 0 {
		return nil
	}
	t, body := Type(b[0]), b[1:]
	if t != TypeMap && t != TypeSeq {
		_, err := decodeLeaf(t, body)
		return err
	}
	entries := 0
	err := eachEntry(body, func(entry []byte) error {
		entries++
		return validate(entry, depth+1)
	})
	if err == nil && t == TypeMap && entries%2 != 0 {
		return errBadValue
	}
	return err
}

// Entries calls fn with the encoding of each entry of b, a map or a seq
// that is Valid, in order (a map's keys and values alternate), until fn
// returns false. It decodes nothing: a reader of a few entries of a large
// value pays nothing for the others. It does nothing if b is neither a map
// nor a seq.
func Entries(b []byte, fn func(entry []byte) bool) {
	if len(b) == 0 || (Type(b[0]) != TypeMap && Type(b[0]) != TypeSeq) {
		return
	}
	_ = eachEntry(b[1:], func(entry []byte) error {
		if !fn(entry) {
			return errStop
		}
		return nil
	})
}

// errStop ends eachEntry's walk for Entries when its caller has read enough.
var errStop = errors.New("argdata: stop")

// eachEntry calls fn with each entry of body, the body of a map or a seq (a
// run of length-prefixed values), in order. It stops at the first error,
// fn's or the body's own (a malformed length, or an entry longer than what
// remains, errTruncated), and returns it.
func eachEntry(body []byte, fn func(entry []byte) error) error {
	for len(body) > 0 {
		n, rest, err := readLen(body)
		if err != nil {
			return err
		}
		if n > len(rest) {
			return errTruncated
		}
		if err := fn(rest[:n]); err != nil {
			return err
		}
		body = rest[n:]
	}
	return nil
}

func readLen(b []byte) (int, []byte, error) {
	n := 0
	for i, c := range b {
		if i >= 5 {
			return 0, nil, errBadValue
		}
		n = n<<7 | int(c&0x7f)
		if c&0x80 != 0 {
			return n, b[i+1:], nil
		}
	}
	return 0, nil, errTruncated
}
