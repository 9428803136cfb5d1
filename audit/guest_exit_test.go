package audit

import (
	"fmt"
	"testing"
	"time"
)

// A guest's exit marks it, and the children it spawned, ended without a
// walk over every guest the log has named: replaying 200,000 guests that
// each spawned a child, one after another, takes seconds. Each exit
// walked all the holders seen so far (40 billion steps for these), which
// took many minutes; the guard is far past what the replay takes on a
// busy machine.
func TestReplayOfManyGuestExitsIsNotQuadratic(t *testing.T) {
	const n = 200000
	done := make(chan *Graph)
	go func() {
		g := NewGraph()
		for i := range n {
			id := fmt.Sprintf("g-%012x", i)
			g.Apply(Record{Seq: uint64(3*i + 1), Type: TypeGuestStart, Guest: &GuestRecord{ID: id}})
			g.Apply(Record{Seq: uint64(3*i + 2), Type: TypeGuestSpawn, Guest: &GuestRecord{ID: id + ".1", Parent: id}})
			g.Apply(Record{Seq: uint64(3*i + 3), Type: TypeGuestExit, Guest: &GuestRecord{ID: id}})
		}
		done <- g
	}()
	select {
	case g := <-done:
		for _, id := range []string{"g-000000000000", fmt.Sprintf("g-%012x", n-1)} {
			if g.Holder(id).Running || g.Holder(id+".1").Running {
				t.Errorf("%s and its child should have ended with its exit: %+v %+v", id, g.Holder(id), g.Holder(id+".1"))
			}
		}
	case <-time.After(3 * time.Minute):
		t.Fatalf("replaying %d guests' exits took over 3 minutes: each exit walks every guest", n)
	}
}
