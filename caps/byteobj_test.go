package caps

import (
	"bytes"
	"io"
	"testing"
)

func TestByteObjectSharesOffsetBetweenReadWriteAndSeek(t *testing.T) {
	b := NewByteObject()
	defer b.Close()
	if n, err := b.Write([]byte("hello world")); n != 11 || err != nil {
		t.Fatalf("write = %d, %v", n, err)
	}
	if pos, err := b.Seek(0, io.SeekCurrent); pos != 11 || err != nil {
		t.Fatalf("tell = %d, %v", pos, err)
	}
	if pos, _ := b.Seek(-5, io.SeekEnd); pos != 6 {
		t.Fatalf("seek end-5 = %d", pos)
	}
	buf := make([]byte, 16)
	if n, _ := b.Read(buf); string(buf[:n]) != "world" {
		t.Fatalf("read %q", buf[:n])
	}
	if n, err := b.Read(buf); n != 0 || err != nil {
		t.Fatalf("read at end = %d, %v", n, err)
	}
	if _, err := b.Seek(-1, io.SeekStart); ErrnoOf(err) != EINVAL {
		t.Fatalf("seek before start: %v", err)
	}
	if _, err := b.Seek(1, 99); ErrnoOf(err) != EINVAL {
		t.Fatalf("bad whence: %v", err)
	}
}

func TestByteObjectPositionalIOLeavesOffsetAndZeroFillsGaps(t *testing.T) {
	b := NewByteObject()
	defer b.Close()
	if _, err := b.WriteAt([]byte("xy"), 4); err != nil {
		t.Fatal(err)
	}
	if pos, _ := b.Seek(0, io.SeekCurrent); pos != 0 {
		t.Fatalf("WriteAt moved the offset to %d", pos)
	}
	buf := make([]byte, 8)
	n, _ := b.ReadAt(buf, 0)
	if !bytes.Equal(buf[:n], []byte{0, 0, 0, 0, 'x', 'y'}) {
		t.Fatalf("ReadAt = %q", buf[:n])
	}
	if _, err := b.ReadAt(buf, -1); ErrnoOf(err) != EINVAL {
		t.Fatalf("negative offset: %v", err)
	}
}

func TestByteObjectTruncateClearsWhatItCutOff(t *testing.T) {
	b := NewByteObject()
	defer b.Close()
	b.Write([]byte("secret data"))
	if err := b.Truncate(2); err != nil {
		t.Fatal(err)
	}
	if err := b.Truncate(11); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 11)
	n, _ := b.ReadAt(buf, 0)
	if !bytes.Equal(buf[:n], append([]byte("se"), make([]byte, 9)...)) {
		t.Fatalf("after shrink and grow: %q", buf[:n])
	}
	if st, _ := b.Stat(); st.Size != 11 || st.Type != TypeSharedMemory {
		t.Fatalf("stat %+v", st)
	}
	if ErrnoOf(b.Truncate(-1)) != EINVAL || ErrnoOf(b.Truncate(MaxByteObjectSize+1)) != EFBIG {
		t.Fatal("out-of-range sizes accepted")
	}
}

func TestByteObjectAppendModeWritesAtTheEnd(t *testing.T) {
	b := NewByteObject()
	defer b.Close()
	b.Write([]byte("abc"))
	b.Seek(0, io.SeekStart)
	b.SetAppend(true)
	if !b.Append() {
		t.Fatal("append not reported")
	}
	b.Write([]byte("de"))
	buf := make([]byte, 8)
	n, _ := b.ReadAt(buf, 0)
	if string(buf[:n]) != "abcde" {
		t.Fatalf("append wrote %q", buf[:n])
	}
}

func TestByteObjectRefusesGrowthPastItsLimits(t *testing.T) {
	b := NewByteObject()
	defer b.Close()
	if _, err := b.WriteAt([]byte("x"), MaxByteObjectSize); ErrnoOf(err) != EFBIG {
		t.Fatalf("write past the size limit: %v", err)
	}
	if _, err := b.WriteAt([]byte("x"), 1<<62); ErrnoOf(err) != EFBIG {
		t.Fatalf("write at a huge offset: %v", err)
	}
	// The process-wide budget: two objects that together exceed it.
	budget := &byteBudget{limit: 1 << 20}
	o1, o2 := newByteObject(budget), newByteObject(budget)
	if err := o1.Truncate(700 << 10); err != nil {
		t.Fatal(err)
	}
	if err := o2.Truncate(700 << 10); ErrnoOf(err) != ENOSPC {
		t.Fatalf("second object past the budget: %v", err)
	}
	if _, err := o2.WriteAt(make([]byte, 700<<10), 0); ErrnoOf(err) != ENOSPC {
		t.Fatalf("write past the budget: %v", err)
	}
	o1.Close()
	if budget.used.Load() != 0 {
		t.Fatalf("closing did not return the memory: %d in use", budget.used.Load())
	}
	if err := o2.Truncate(700 << 10); err != nil {
		t.Fatalf("after the first object closed: %v", err)
	}
	o2.Close()
}

func TestKernelCreateRecordsACreateEdge(t *testing.T) {
	var events []Event
	k := NewKernel(func(e Event) { events = append(events, e) })
	h := &Holder{ID: "g1"}
	c := k.Create(h, NewByteObject(), RightsAll, RightsAll, "", "fd_create1")
	b, i := c.Rights()
	if b != RightsByteObjectBase || i != 0 {
		t.Fatalf("rights %v / %v, want the byte object maximum", b, i)
	}
	if c.Edge() != EdgeCreate || c.Parent() != nil || c.Origin() != "fd_create1" || c.Holder() != h {
		t.Fatalf("cap %+v", c.Info())
	}
	if len(events) != 1 || events[0].Type != EventMint || events[0].Cap.Edge != EdgeCreate {
		t.Fatalf("events %+v", events)
	}
	if _, ok := k.Lookup(c.ID()); !ok {
		t.Fatal("created capability not tracked")
	}
}
