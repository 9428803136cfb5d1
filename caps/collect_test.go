package caps

import "testing"

// collect looks only at the channel ends that capabilities refer to but
// no holder holds, which the kernel indexes as they come and go: the index
// holds nothing else, and nothing once they are gone.
func TestCollectsIndexHoldsOnlyEndsWithoutAHolder(t *testing.T) {
	k := NewKernel(nil)
	for range 100 {
		k.Close(k.Mint(alice, NewByteObject(), RightsByteObjectBase, 0, "", "test"))
	}
	dir, _ := mintDir(t, k)
	a, b, ca, cb := newEnds(k, false)
	if n := k.orphanCount(); n != 0 {
		t.Fatalf("%d orphans with every end held", n)
	}
	x := inflight(t, k, ca)
	if _, err := a.Send(iov("a"), []*Cap{x}); err != nil {
		t.Fatal(err)
	}
	if n := k.orphanCount(); n != 0 {
		t.Fatalf("%d orphans with a copy of a held end in flight", n)
	}
	k.Close(ca)
	if n := k.orphanCount(); n != 1 {
		t.Fatalf("%d orphans once end a is held only in b's queue, want 1", n)
	}
	if _, cs, _ := recvString(t, b, 8, 4, false); len(cs) != 1 {
		t.Fatal("the end in flight was collected while b's holder could still receive it")
	}
	k.Adopt(x, bob)
	if n := k.orphanCount(); n != 0 {
		t.Fatalf("%d orphans after the end was adopted", n)
	}
	for _, c := range []*Cap{x, cb, dir} {
		k.Close(c)
	}
	if n := k.orphanCount(); n != 0 {
		t.Fatalf("%d orphans after every capability closed", n)
	}
}

// orphanCount is how many channel ends k keeps as orphans.
func (k *Kernel) orphanCount() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.orphans)
}

// The collection benchmarks' chain is as long as a user's default bound on
// handles in flight allows (collect_bench_test.go writes it out).
func TestTheBenchmarkChainIsAUsersDefaultBound(t *testing.T) {
	if chainLength != DefaultMaxInFlight {
		t.Fatalf("chainLength %d, DefaultMaxInFlight %d", chainLength, DefaultMaxInFlight)
	}
}
