package caps

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

func mintN(k *Kernel, h *Holder, n int) []*Cap {
	out := make([]*Cap, n)
	for i := range out {
		out[i] = k.Mint(h, newTestRes(KindByteObject), RightsByteObjectBase, 0, "", "test")
	}
	return out
}

func TestTableInsertUsesLowestFreeFD(t *testing.T) {
	k := NewKernel(nil)
	tb := NewTable(k, alice, 8)
	cs := mintN(k, alice, 4)
	for i, c := range cs {
		if fd, err := tb.Insert(c); err != nil || fd != uint32(i) {
			t.Fatalf("insert %d: fd %d, %v", i, fd, err)
		}
	}
	if err := tb.Remove(1); err != nil {
		t.Fatal(err)
	}
	if err := tb.Remove(3); err != nil {
		t.Fatal(err)
	}
	more := mintN(k, alice, 2)
	if fd, _ := tb.Insert(more[0]); fd != 1 {
		t.Fatalf("after freeing 1 and 3: fd %d, want 1", fd)
	}
	if fd, _ := tb.Insert(more[1]); fd != 3 {
		t.Fatalf("next: fd %d, want 3", fd)
	}
	if !cs[1].Info().Closed {
		t.Fatal("Remove did not close the capability")
	}
}

func TestTableFullGivesEMFILE(t *testing.T) {
	k := NewKernel(nil)
	tb := NewTable(k, alice, 3)
	for _, c := range mintN(k, alice, 3) {
		if _, err := tb.Insert(c); err != nil {
			t.Fatal(err)
		}
	}
	extra := mintN(k, alice, 1)[0]
	if _, err := tb.Insert(extra); !errors.Is(err, EMFILE) {
		t.Fatalf("insert into a full table: err = %v, want EMFILE", err)
	}
	if extra.Info().Closed {
		t.Fatal("a refused capability must stay with the caller, not be closed")
	}
	if NewTable(k, alice, 0).Max() != DefaultMaxFDs {
		t.Fatal("default size")
	}
}

func TestTableCountsHeldHandlesAndThePeak(t *testing.T) {
	k := NewKernel(nil)
	tb := NewTable(k, alice, 4)
	check := func(when string, held, peak int) {
		t.Helper()
		if h, p := tb.Counts(); h != held || p != peak {
			t.Fatalf("%s: held %d, peak %d; want %d, %d", when, h, p, held, peak)
		}
	}
	check("empty", 0, 0)
	for _, c := range mintN(k, alice, 4) {
		if _, err := tb.Insert(c); err != nil {
			t.Fatal(err)
		}
	}
	check("full", 4, 4)
	if _, err := tb.Insert(mintN(k, alice, 1)[0]); !errors.Is(err, EMFILE) {
		t.Fatalf("insert into a full table: %v", err)
	}
	check("after a refused insert", 4, 4)
	if err := tb.Remove(1); err != nil {
		t.Fatal(err)
	}
	if _, err := tb.Take(3); err != nil {
		t.Fatal(err)
	}
	check("after Remove and Take", 2, 4)
	if err := tb.Replace(0, mintN(k, alice, 1)[0]); err != nil {
		t.Fatal(err)
	}
	check("after Replace", 2, 4)
	if fd, err := tb.Insert(mintN(k, alice, 1)[0]); err != nil || fd != 1 {
		t.Fatalf("insert into a hole: fd %d, %v", fd, err)
	}
	check("after filling a hole", 3, 4)
	tb.CloseAll()
	check("after CloseAll", 0, 4)
}

func TestTableGrowsToItsMaxKeepingEveryHandle(t *testing.T) {
	k := NewKernel(nil)
	tb := NewTable(k, alice, 100) // grows 8, 16, 32, 64, then 100: not a power of two
	cs := mintN(k, alice, 100)
	for i, c := range cs {
		if fd, err := tb.Insert(c); err != nil || fd != uint32(i) {
			t.Fatalf("insert %d: fd %d, %v", i, fd, err)
		}
	}
	if _, err := tb.Insert(mintN(k, alice, 1)[0]); !errors.Is(err, EMFILE) {
		t.Fatalf("insert 101 into a table of 100: %v", err)
	}
	for i, c := range cs {
		if got, err := tb.Get(uint32(i)); err != nil || got != c {
			t.Fatalf("fd %d after growing: %v, %v", i, got, err)
		}
	}
	for _, fd := range []uint32{50, 7} {
		if _, err := tb.Take(fd); err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range []uint32{7, 50} {
		if fd, err := tb.Insert(cs[want]); err != nil || fd != want {
			t.Fatalf("refill: fd %d, %v; want %d", fd, err, want)
		}
	}
	es := tb.Entries()
	if len(es) != 100 {
		t.Fatalf("%d entries, want 100", len(es))
	}
	for i, e := range es {
		if e.FD != uint32(i) || e.Cap != cs[i] {
			t.Fatalf("entry %d: fd %d", i, e.FD)
		}
	}
}

// Opening and closing a handle must not cost more in a table that holds
// many: once the table has grown, a change allocates nothing.
func TestTableChangesAllocateNothingOnceGrown(t *testing.T) {
	k := NewKernel(nil)
	tb := NewTable(k, alice, 2048)
	for _, c := range mintN(k, alice, 1024) {
		if _, err := tb.Insert(c); err != nil {
			t.Fatal(err)
		}
	}
	c := mintN(k, alice, 1)[0]
	allocs := testing.AllocsPerRun(100, func() {
		fd, err := tb.Insert(c)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tb.Take(fd); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("Insert and Take with 1024 handles held: %v allocations, want 0", allocs)
	}
}

// A handle that stays open is found by every lookup, while other handles
// are opened and closed and the table grows under the lookups.
func TestTableLookupsSeeAnOpenHandleWhileTheTableChanges(t *testing.T) {
	k := NewKernel(nil)
	tb := NewTable(k, alice, 512)
	kept := mintN(k, alice, 1)[0]
	if _, err := tb.Insert(kept); err != nil {
		t.Fatal(err)
	}
	others := mintN(k, alice, 511)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 4 {
			for _, c := range others {
				if _, err := tb.Insert(c); err != nil {
					panic(err)
				}
			}
			for fd := uint32(1); fd < 512; fd++ {
				if _, err := tb.Take(fd); err != nil {
					panic(err)
				}
			}
		}
	}()
	for {
		select {
		case <-done:
			return
		default:
		}
		c, err := tb.Acquire(0, 0, 0)
		if err != nil || c != kept {
			t.Fatalf("fd 0 while the table changes: %v, %v", c, err)
		}
		c.Release()
	}
}

func TestTableAcquireChecksHandleAndRights(t *testing.T) {
	k := NewKernel(nil)
	tb := NewTable(k, alice, 0)
	c := k.Mint(alice, newTestRes(KindByteObject), RightFDRead, 0, "", "test")
	fd, _ := tb.Insert(c)
	if _, err := tb.Acquire(fd+1, 0, 0); !errors.Is(err, EBADF) {
		t.Fatalf("empty slot: %v", err)
	}
	if _, err := tb.Acquire(1<<31, 0, 0); !errors.Is(err, EBADF) {
		t.Fatalf("huge fd: %v", err)
	}
	if _, err := tb.Acquire(fd, RightFDWrite, 0); !errors.Is(err, ENOTCAPABLE) {
		t.Fatalf("missing right: %v", err)
	}
	got, err := tb.Acquire(fd, RightFDRead, 0)
	if err != nil || got != c {
		t.Fatalf("acquire: %v", err)
	}
	got.Release()
	k.Revoke(c, "test")
	if _, err := tb.Acquire(fd, 0, 0); !errors.Is(err, ENOTCAPABLE) {
		t.Fatalf("revoked: %v", err)
	}
}

func TestTableReplaceClosesPreviousHandle(t *testing.T) {
	k := NewKernel(nil)
	tb := NewTable(k, alice, 0)
	cs := mintN(k, alice, 2)
	fd, _ := tb.Insert(cs[0])
	if err := tb.Replace(fd+1, cs[1]); !errors.Is(err, EBADF) {
		t.Fatalf("replace of an empty slot: %v", err)
	}
	if err := tb.Replace(fd, cs[1]); err != nil {
		t.Fatal(err)
	}
	if !cs[0].Info().Closed {
		t.Fatal("replaced capability not closed")
	}
	if err := tb.Replace(fd, cs[1]); err != nil || cs[1].Info().Closed {
		t.Fatalf("replacing a handle with itself closed it (err %v)", err)
	}
}

func TestTableCloseAllClosesEverythingAndRefusesNewHandles(t *testing.T) {
	k := NewKernel(nil)
	tb := NewTable(k, alice, 0)
	cs := mintN(k, alice, 3)
	for _, c := range cs {
		tb.Insert(c)
	}
	tb.CloseAll()
	for _, c := range cs {
		if !c.Info().Closed {
			t.Fatal("CloseAll left a capability open")
		}
	}
	late := mintN(k, alice, 1)[0]
	if _, err := tb.Insert(late); !errors.Is(err, EBADF) {
		t.Fatalf("insert after CloseAll: err = %v, want EBADF", err)
	}
	if len(tb.Entries()) != 0 {
		t.Fatal("entries after CloseAll")
	}
}

func TestTableTakeMovesWithoutClosing(t *testing.T) {
	k := NewKernel(nil)
	tb := NewTable(k, alice, 0)
	c := mintN(k, alice, 1)[0]
	fd, _ := tb.Insert(c)
	got, err := tb.Take(fd)
	if err != nil || got != c || c.Info().Closed {
		t.Fatalf("take: %v, closed=%v", err, c.Info().Closed)
	}
	if _, err := tb.Get(fd); !errors.Is(err, EBADF) {
		t.Fatal("slot still occupied after Take")
	}
}

// BenchmarkAcquire is the check every host call makes first, on a handle
// in a table. "table" is Table.Acquire with its Release; "via-cap" looks
// the handle up and calls Cap.Acquire, the call Table.Acquire writes out;
// "uncounted" looks it up and checks it without the in-flight count that
// lets Revoke wait for running calls.
func BenchmarkAcquire(b *testing.B) {
	k := NewKernel(nil)
	h := &Holder{ID: "b"}
	tb := NewTable(k, h, 0)
	fd, err := tb.Insert(k.Mint(h, NewStdout("stdout", io.Discard), RightsTTYBase, 0, "stdout", "bench"))
	if err != nil {
		b.Fatal(err)
	}
	b.Run("table", func(b *testing.B) {
		for b.Loop() {
			c, err := tb.Acquire(fd, RightFDWrite, 0)
			if err != nil {
				b.Fatal(err)
			}
			c.Release()
		}
	})
	b.Run("via-cap", func(b *testing.B) {
		for b.Loop() {
			c, err := tb.Get(fd)
			if err == nil {
				err = c.Acquire(RightFDWrite, 0)
			}
			if err != nil {
				b.Fatal(err)
			}
			c.Release()
		}
	})
	b.Run("uncounted", func(b *testing.B) {
		for b.Loop() {
			c, err := tb.Get(fd)
			if err == nil {
				err = c.Check(RightFDWrite, 0)
			}
			if err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkHeldHandle measures what one open handle costs the host's Go
// heap: each iteration opens heldHandles files (or directories) beneath a
// directory capability, as path_open does (Dir.Open, Kernel.Derive,
// Table.Insert), and reports the heap they keep per handle (heap-B/handle;
// the host descriptor's kernel memory is not in it) and the time of one
// open (ns/open). Each handle also holds one host descriptor.
func BenchmarkHeldHandle(b *testing.B) {
	const heldHandles = 1024
	dir := b.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "f"), []byte("x"), 0o600); err != nil {
		b.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "d"), 0o700); err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct {
		kind, path string
		base       Rights
	}{{"file", "f", RightFDRead}, {"dir", "d", RightFileOpen}} {
		b.Run(tc.kind, func(b *testing.B) {
			k := NewKernel(nil)
			h := &Holder{ID: "b"}
			d, err := OpenDir(dir)
			if err != nil {
				b.Fatal(err)
			}
			root := k.Mint(h, d, RightsDirectoryBase, RightsDirectoryInheriting, "root", "bench")
			var perHandle float64
			var opening time.Duration
			for b.Loop() {
				tb := NewTable(k, h, heldHandles)
				before := heapInUse()
				start := time.Now()
				for range heldHandles {
					res, err := d.Open(tc.path, OpenFlags{Read: true})
					if err != nil {
						b.Fatal(err)
					}
					c, err := k.Derive(root, Derivation{Holder: h, Edge: EdgeOpen, Name: tc.path, Base: tc.base, Resource: res})
					if err != nil {
						b.Fatal(err)
					}
					if _, err := tb.Insert(c); err != nil {
						b.Fatal(err)
					}
				}
				opening += time.Since(start)
				perHandle = float64(heapInUse()-before) / heldHandles
				tb.CloseAll()
			}
			b.ReportMetric(perHandle, "heap-B/handle")
			b.ReportMetric(float64(opening.Nanoseconds())/float64(b.N*heldHandles), "ns/open")
			k.Close(root)
		})
	}
}

// heapInUse returns the live heap after a collection.
func heapInUse() int64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}

// BenchmarkInsertTake is one handle opened and closed (Table.Insert and
// Table.Take) in a table that already holds held handles: what the table
// adds to every open and close, which must not grow with what it holds.
func BenchmarkInsertTake(b *testing.B) {
	for _, held := range []int{3, 64, 1024, 4096} {
		b.Run(fmt.Sprintf("held=%d", held), func(b *testing.B) {
			k := NewKernel(nil)
			tb := NewTable(k, alice, held+1)
			for _, c := range mintN(k, alice, held) {
				if _, err := tb.Insert(c); err != nil {
					b.Fatal(err)
				}
			}
			c := mintN(k, alice, 1)[0]
			for b.Loop() {
				fd, err := tb.Insert(c)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := tb.Take(fd); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
