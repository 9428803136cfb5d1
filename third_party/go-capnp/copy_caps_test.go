package capnp

import "testing"

// pointAtOneCap returns a struct whose one pointer is a list of n
// interface pointers, all naming one capability of its message.
func pointAtOneCap(t *testing.T, n int32) Struct {
	t.Helper()
	_, seg, err := NewMessage(SingleSegment(nil))
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewRootStruct(seg, ObjectSize{PointerCount: 1})
	if err != nil {
		t.Fatal(err)
	}
	id := seg.Message().CapTable().Add(ErrorClient(Unimplemented("a capability")))
	l, err := NewPointerList(seg, n)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < int(n); i++ {
		if err := l.Set(i, NewInterface(seg, id).ToPtr()); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SetPtr(0, l.ToPtr()); err != nil {
		t.Fatal(err)
	}
	return s
}

// copyAllocs is the allocations of one copy of src into a new message,
// after checking that the copy's cap table has one entry.
func copyAllocs(t *testing.T, src Struct) float64 {
	t.Helper()
	return testing.AllocsPerRun(5, func() {
		msg, seg, err := NewMessage(SingleSegment(nil))
		if err != nil {
			t.Fatal(err)
		}
		dst, err := NewRootStruct(seg, ObjectSize{PointerCount: 1})
		if err != nil {
			t.Fatal(err)
		}
		if err := dst.CopyFrom(src); err != nil {
			t.Fatal(err)
		}
		if n := msg.CapTable().Len(); n != 1 {
			t.Fatalf("the copy of a message naming one capability by many pointers has %d entries in its cap table; want 1", n)
		}
		msg.Release()
	})
}

// A message may name one capability by any number of interface pointers
// (a proxy copying a hostile peer's 1 MiB message: 130,000 of them).
// CopyFrom gives the capability one entry of the copy's cap table, one
// reference, whatever the pointers: copying 10,000 pointers to it costs
// the allocations of copying 10.
func TestCopyFromTakesOneReferenceForACapabilityNamedManyTimes(t *testing.T) {
	few, many := copyAllocs(t, pointAtOneCap(t, 10)), copyAllocs(t, pointAtOneCap(t, 10000))
	t.Logf("allocations of a copy: %v with 10 pointers, %v with 10,000", few, many)
	if many > few+8 {
		t.Fatalf("copying 10,000 pointers to one capability made %v allocations, 10 made %v", many, few)
	}
}
