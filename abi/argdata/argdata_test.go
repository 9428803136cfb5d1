package argdata

import (
	"bytes"
	"math"
	"testing"
)

func TestEncodingMatchesCloudABIExample(t *testing.T) {
	// seq[0, true, "A"] from the argdata README.
	got := Seq(Int(0), Bool(true), String("A")).Encode()
	want := []byte{0x07, 0x81, 0x05, 0x82, 0x02, 0x01, 0x83, 0x08, 0x41, 0x00}
	if !bytes.Equal(got, want) {
		t.Fatalf("got % x, want % x", got, want)
	}
}

func TestIntsUseMinimalSignedBigEndian(t *testing.T) {
	cases := map[int64][]byte{
		0: {0x05}, 1: {0x05, 0x01}, 127: {0x05, 0x7f}, 128: {0x05, 0x00, 0x80},
		-1: {0x05, 0xff}, -128: {0x05, 0x80}, -129: {0x05, 0xff, 0x7f},
		math.MaxInt64: {0x05, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
		math.MinInt64: {0x05, 0x80, 0, 0, 0, 0, 0, 0, 0},
	}
	for v, want := range cases {
		got := Int(v).Encode()
		if !bytes.Equal(got, want) {
			t.Errorf("Int(%d) = % x, want % x", v, got, want)
		}
		d, err := Decode(got)
		if err != nil {
			t.Fatalf("decode %d: %v", v, err)
		}
		if i, ok := d.Int(); !ok || i != v {
			t.Errorf("round trip %d = %d (%v)", v, i, ok)
		}
	}
}

func TestLengthsAboveOneByte(t *testing.T) {
	long := string(bytes.Repeat([]byte("x"), 300))
	v := Seq(String(long))
	d, err := Decode(v.Encode())
	if err != nil {
		t.Fatal(err)
	}
	if s, ok := d.Items()[0].Str(); !ok || s != long {
		t.Fatal("long string did not round-trip")
	}
}

func TestStartupShapeRoundTrips(t *testing.T) {
	v := StringMap(map[string]Value{
		"args":    Seq(String("prog"), String("a")),
		"env":     StringMap(map[string]Value{"K": String("V")}),
		"handles": StringMap(map[string]Value{"stdout": Fd(1), "data": Fd(3)}),
		"misc":    Seq(Null(), Bool(false), Float(1.5), Timestamp(-5), Binary([]byte{0, 1})),
	})
	d, err := Decode(v.Encode())
	if err != nil {
		t.Fatal(err)
	}
	h, ok := d.Get("handles")
	if !ok {
		t.Fatal("no handles")
	}
	fd, _ := h.Get("data")
	if n, ok := fd.Fd(); !ok || n != 3 {
		t.Fatalf("data fd = %d %v", n, ok)
	}
	misc, _ := d.Get("misc")
	it := misc.Items()
	if len(it) != 5 || !it[0].IsNull() {
		t.Fatalf("misc = %+v", it)
	}
	if f, _ := it[2].Float(); f != 1.5 {
		t.Fatalf("float = %v", f)
	}
	if ts, _ := it[3].Time(); ts != -5 {
		t.Fatalf("timestamp = %v", ts)
	}
	if !bytes.Equal(d.Encode(), v.Encode()) {
		t.Fatal("re-encoding differs")
	}
}

func TestDecodeRejectsMalformed(t *testing.T) {
	for _, c := range []struct {
		b    []byte
		want string
	}{
		{[]byte{0x03, 0, 0}, errBadValue.Error()},                        // short fd
		{[]byte{0x04, 0, 0, 0}, errBadValue.Error()},                     // short float
		{[]byte{0x08, 'a'}, errBadValue.Error()},                         // string without NUL
		{[]byte{0x07, 0x05}, errTruncated.Error()},                       // unterminated length
		{[]byte{0x07, 0x85, 0x08}, errTruncated.Error()},                 // length past the end
		{[]byte{0x07, 1, 1, 1, 1, 1, 1}, errBadValue.Error()},            // length over 5 bytes
		{[]byte{0x06, 0x81, 0x05}, errBadValue.Error()},                  // map with a key and no value
		{[]byte{0x02, 0x02}, errBadValue.Error()},                        // bool with a bad body
		{[]byte{0x05, 1, 2, 3, 4, 5, 6, 7, 8, 9}, errBadValue.Error()},   // int wider than 64 bits
		{[]byte{0x42}, "argdata: unknown type tag 66"},                   // unknown tag
		{[]byte{0x07, 0x82, 0x42, 0x00}, "argdata: unknown type tag 66"}, // inner error passed up
	} {
		if _, err := Decode(c.b); err == nil || err.Error() != c.want {
			t.Errorf("Decode(% x): err = %v, want %s", c.b, err, c.want)
		}
	}
}

func TestDecodeBoundsNesting(t *testing.T) {
	v := Null()
	for range MaxDepth + 2 {
		v = Seq(v)
	}
	if _, err := Decode(v.Encode()); err != errTooDeep {
		t.Fatalf("nesting deeper than MaxDepth: err = %v, want %v", err, errTooDeep)
	}
}

// FuzzDecode: Decode never panics, and what it accepts re-encodes to a
// value that decodes to the same encoding.
func FuzzDecode(f *testing.F) {
	f.Add(Seq(Int(0), Bool(true), String("A")).Encode())
	f.Add(StringMap(map[string]Value{"k": Fd(3)}).Encode())
	f.Add([]byte{0x07, 0x85})
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := Decode(b)
		if Valid(b) != (err == nil) {
			t.Fatalf("Valid says %v, Decode %v", Valid(b), err)
		}
		if err != nil {
			return
		}
		enc := v.Encode()
		v2, err := Decode(enc)
		if err != nil {
			t.Fatalf("re-encoding of accepted input does not decode: %v", err)
		}
		if !bytes.Equal(v2.Encode(), enc) {
			t.Fatal("encoding is not stable")
		}
	})
}

// Valid and Entries walk a value's encoding where it lies: whatever its
// size and nesting, they allocate nothing.
func TestValidAndEntriesAllocateNothing(t *testing.T) {
	nested := Seq(Null(), String("x"))
	for i := 0; i < MaxDepth-1; i++ {
		nested = Seq(nested, MapOf(String("k"), Int(int64(i))))
	}
	b := nested.Encode()
	if !Valid(b) {
		t.Fatal("a value Encode made is not Valid")
	}
	if n := testing.AllocsPerRun(100, func() { Valid(b) }); n != 0 {
		t.Errorf("Valid allocated %v times a call", n)
	}
	count := 0
	if n := testing.AllocsPerRun(100, func() { Entries(b, func([]byte) bool { count++; return true }) }); n != 0 {
		t.Errorf("Entries allocated %v times a call", n)
	}
	if count != 2*101 {
		t.Errorf("Entries saw %d entries in 101 calls, want 2 a call", count)
	}
}
