package wasmbin

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/tetratelabs/wazero"
)

// seg is an active data segment of memory 0 at an i32.const offset.
type seg struct {
	off  int32
	data string
}

// dataBody encodes segments, in the order given, as a data section body.
func dataBody(segs ...seg) []byte {
	w := uleb(nil, uint64(len(segs)))
	for _, s := range segs {
		w = append(w, 0, dataI32Const)
		w = sleb32(w, s.off)
		w = append(w, dataEnd)
		w = name(w, s.data)
	}
	return w
}

// memoryModule is a module of one exported memory of pages 64 KiB pages
// and a data section of body; extra sections go between them.
func memoryModule(pages uint64, body []byte, extra ...Section) Sections {
	secs := Sections{
		{ID: secMemory, Body: uleb([]byte{1, 0}, pages)},
		{ID: secExport, Body: append(name([]byte{1}, "memory"), ExternMemory, 0)},
	}
	secs = append(secs, extra...)
	return append(secs, Section{ID: secData, Body: body})
}

// initialMemory instantiates wasm with wazero and returns its memory.
func initialMemory(t *testing.T, wasm []byte) []byte {
	t.Helper()
	ctx := context.Background()
	r := wazero.NewRuntime(ctx)
	defer r.Close(ctx)
	m, err := r.Instantiate(ctx, wasm)
	if err != nil {
		t.Fatalf("instantiate: %v", err)
	}
	mem, _ := m.Memory().Read(0, m.Memory().Size())
	return bytes.Clone(mem)
}

func segmentCount(t *testing.T, secs Sections) int {
	t.Helper()
	for _, s := range secs {
		if s.ID == secData {
			r := wasmReader{b: s.Body, ok: true}
			return int(r.u32())
		}
	}
	t.Fatal("no data section")
	return 0
}

// Segments out of order, with gaps short of a page, become one segment;
// a gap of a page or more keeps segments apart; the memory the module
// starts with is the same.
func TestMergeDataKeepsTheInitialMemory(t *testing.T) {
	big := strings.Repeat("z", 2*mergeGap) // bytes enough to fill the gaps
	secs := memoryModule(2, dataBody(
		seg{20000, big},
		seg{16, "hello"},
		seg{21, "world"}, // adjacent
		seg{100, "x"},
		seg{100 + 1 + mergeGap - 1, "y"}, // a gap just short of a page
		seg{20000 + int32(len(big)) + mergeGap, "far"}, // a page away: stays apart
		seg{70000, "second page"},
	))
	out, changed := secs.MergeData()
	if !changed {
		t.Fatal("not merged")
	}
	if n := segmentCount(t, out); n != 4 {
		t.Errorf("%d segments after merging, want 4", n)
	}
	if n := segmentCount(t, secs); n != 7 {
		t.Errorf("the input was changed: %d segments", n)
	}
	if want, got := initialMemory(t, secs.Encode()), initialMemory(t, out.Encode()); !bytes.Equal(want, got) {
		t.Error("merged module starts with other memory")
	}
}

// Modules where merging could change what instantiation does, or whose
// segments are not all active at constant offsets, are left as they are.
func TestMergeDataLeavesOtherModules(t *testing.T) {
	two := dataBody(seg{0, "ab"}, seg{4, "cd"})
	passive := append(uleb(nil, 2), append(append([]byte{1}, name(nil, "ab")...), dataBody(seg{4, "cd"})[1:]...)...)
	for _, c := range []struct {
		name string
		secs Sections
	}{
		{"overlapping", memoryModule(1, dataBody(seg{0, "abcd"}, seg{2, "xy"}))},
		{"data count section", memoryModule(1, two, Section{ID: secDataCount, Body: []byte{2}})},
		{"imported memory", Sections{
			{ID: secImport, Body: append(name(name([]byte{1}, "env"), "memory"), ExternMemory, 0, 1)},
			{ID: secData, Body: two},
		}},
		{"passive segment", memoryModule(1, passive)},
		{"global offset", memoryModule(1, []byte{1, 0, 0x23, 0, dataEnd, 1, 'a'})},
		{"one segment", memoryModule(1, dataBody(seg{0, "abcd"}))},
		{"far apart", memoryModule(1, dataBody(seg{0, "a"}, seg{1 + mergeGap, "b"}))},
		{"truncated", memoryModule(1, two[:len(two)-1])},
		{"trailing bytes", memoryModule(1, append(two, 0))},
		{"no data", Sections{{ID: secMemory, Body: []byte{1, 0, 1}}}},
	} {
		if out, changed := c.secs.MergeData(); changed || !bytes.Equal(out.Encode(), c.secs.Encode()) {
			t.Errorf("%s: changed", c.name)
		}
	}
}

// Offsets at and past 2 GiB, negative as i32s, read and write back as the
// same addresses.
func TestMergeDataHighOffsets(t *testing.T) {
	secs := memoryModule(1, dataBody(seg{-4, "ab"}, seg{-2, "cd"}, seg{1 << 30, "e"}))
	out, changed := secs.MergeData()
	if !changed {
		t.Fatal("not merged")
	}
	segs, ok := dataSegments(out[len(out)-1].Body)
	if !ok || len(segs) != 2 || segs[0].offset != 1<<30 || segs[1].offset != 1<<32-4 || string(segs[1].init) != "abcd" {
		t.Fatalf("segments %+v, ok %v", segs, ok)
	}
}

// FuzzMergeData holds MergeData to its promise on any data section: a
// module it changes starts with the same memory, and fails to instantiate
// exactly when the original does.
func FuzzMergeData(f *testing.F) {
	f.Add(dataBody(seg{16, "hello"}, seg{21, "world"}, seg{0, "x"}))
	f.Add(dataBody(seg{70000, "a"}, seg{65530, "bcdef"}, seg{65536 + 4000, "g"}))
	f.Add(dataBody(seg{131070, "toolong"}, seg{131060, "x"}))
	f.Fuzz(func(t *testing.T, body []byte) {
		secs := memoryModule(2, body)
		out, changed := secs.MergeData()
		if !changed {
			return
		}
		ctx := context.Background()
		r := wazero.NewRuntime(ctx)
		defer r.Close(ctx)
		want, werr := instantiateMemory(ctx, r, "before", secs.Encode())
		got, gerr := instantiateMemory(ctx, r, "after", out.Encode())
		if (werr == nil) != (gerr == nil) {
			t.Fatalf("instantiation before: %v, after: %v", werr, gerr)
		}
		if werr == nil && !bytes.Equal(want, got) {
			t.Fatal("merged module starts with other memory")
		}
	})
}

func instantiateMemory(ctx context.Context, r wazero.Runtime, name string, wasm []byte) ([]byte, error) {
	m, err := r.InstantiateWithConfig(ctx, wasm, wazero.NewModuleConfig().WithName(name))
	if err != nil {
		return nil, err
	}
	mem, _ := m.Memory().Read(0, m.Memory().Size())
	return bytes.Clone(mem), nil
}

// Empty segments a page apart do not become a merged segment larger than
// the data they carry: the zeros that fill gaps are bounded by the bytes.
func TestMergeDataFillsNoMoreZerosThanItHasBytes(t *testing.T) {
	var segs []seg
	for i := range 1000 {
		segs = append(segs, seg{int32(i * (mergeGap - 1)), ""})
	}
	segs = append(segs, seg{1000 * (mergeGap - 1), "0123456789"})
	secs := memoryModule(64, dataBody(segs...))
	out, _ := secs.MergeData()
	data, _ := dataSegments(out[len(out)-1].Body)
	total := 0
	for _, s := range data {
		total += len(s.init)
	}
	if total > 2*10 {
		t.Errorf("merged segments hold %d bytes for 10 bytes of data", total)
	}
	if want, got := initialMemory(t, secs.Encode()), initialMemory(t, out.Encode()); !bytes.Equal(want, got) {
		t.Error("merged module starts with other memory")
	}
}
