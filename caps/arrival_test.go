package caps

import (
	"errors"
	"testing"
)

func TestOnArrivalRunsForEachMessageQueuedAtThatEndOnly(t *testing.T) {
	a, b := NewChannelPair(true, "t")
	var atB, atA []string
	b.OnArrival(func() {
		// What the daemon's hook does: take the message from its end.
		buf := make([]byte, 16)
		n, _, _, err := b.Recv([][]byte{buf}, 0, false)
		if err != nil {
			t.Errorf("Recv in the hook: %v", err)
		}
		atB = append(atB, string(buf[:n]))
	})
	a.OnArrival(func() { atA = append(atA, "?") })
	for _, s := range []string{"one", "two"} {
		if _, err := a.Send(iov(s), nil); err != nil {
			t.Fatal(err)
		}
	}
	if len(atB) != 2 || atB[0] != "one" || atB[1] != "two" || len(atA) != 0 {
		t.Fatalf("hook at b saw %q, hook at a ran %d times: want [one two] and 0", atB, len(atA))
	}
	b.OnArrival(nil)
	if _, err := a.Send(iov("three"), nil); err != nil {
		t.Fatal(err)
	}
	if len(atB) != 2 {
		t.Fatalf("a removed hook still ran: %q", atB)
	}
	// A send that fails queues nothing and calls nothing.
	b.OnArrival(func() { t.Error("hook ran for a refused send") })
	_ = b.Close()
	if _, err := a.Send(iov("x"), nil); !errors.Is(err, EPIPE) {
		t.Fatalf("send to a closed end: %v", err)
	}
}

func TestDerivationOriginIsTheChildsProvenance(t *testing.T) {
	k := NewKernel(nil)
	dir, _ := mintDir(t, k)
	b, i := dir.Rights()
	c := mustDerive(t, k, dir, Derivation{Edge: EdgeDelegate, Base: b, Inheriting: i, Origin: "in a call to service store"})
	if c.Origin() != "in a call to service store" || c.Info().Origin != c.Origin() {
		t.Fatalf("origin %q (info %q)", c.Origin(), c.Info().Origin)
	}
	if d := mustDerive(t, k, dir, Derivation{Edge: EdgeDup, Base: b, Inheriting: i}); d.Origin() != "" {
		t.Fatalf("a derivation without origin has %q", d.Origin())
	}
}
