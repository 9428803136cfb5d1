package abi_test

import (
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/abi"
)

// hangGuard is abi.HangGuard: the bound of a wait only a hang could reach.
const hangGuard = abi.HangGuard

// awaitBlocked waits until g is waiting in a host call it entered after
// its first `after` waits, and returns how many waits it has entered; a
// guest that ends first fails the test at once. A
// test acts on a blocked guest once this returns instead of sleeping.
func awaitBlocked(t testing.TB, g *abi.Guest, after int64) int64 {
	t.Helper()
	guard := time.After(hangGuard)
	for {
		if n, waiting := g.Blocked(); waiting && n > after {
			return n
		}
		select {
		case <-g.Done():
			t.Fatalf("guest %s ended instead of blocking in a host call: %+v", g.ID, g.Status())
		case <-guard:
			t.Fatalf("guest %s did not block in a host call within %v", g.ID, hangGuard)
		case <-time.After(time.Millisecond):
		}
	}
}

// killAndAwait kills g and waits for it to end, failing the test if it
// outlives hangGuard (what names what the guest was doing) or does not
// report the kill as its end.
func killAndAwait(t testing.TB, g *abi.Guest, what string) {
	t.Helper()
	g.Kill("test kill")
	select {
	case <-g.Done():
	case <-time.After(hangGuard):
		t.Fatalf("%s still running %v after Kill", what, hangGuard)
	}
	if st := g.Status(); st.Killed != "test kill" {
		t.Fatalf("status %+v", st)
	}
}
