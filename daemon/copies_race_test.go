package daemon

import (
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/caps"
)

// Delegations of one grant made at the same time must not together exceed
// max_copies: each is decided against the copies linked before it, not
// against a count taken before any of them is linked. Each round starts
// its delegations at once from 16 goroutines, and the gate yields the
// processor after each decision (yieldingGate), so that without that
// guarantee the others decide before the first is linked in nearly every
// round. The check holds whatever the interleaving.
func TestConcurrentDelegationsKeepMaxCopies(t *testing.T) {
	s := newSupervisor(t)
	s.Kernel().SetGate(yieldingGate{gate{s}})
	dir := t.TempDir()
	s.SetPolicy(oneCopyPolicy(t, dir))
	a, err := launchSpin(t, s, nil, "dir:"+dir+"=data")
	if err != nil {
		t.Fatal(err)
	}
	granted := a.Handles()[3].Cap
	k := s.Kernel()
	const rounds, senders = 200, 16
	for round := range rounds {
		got := delegateAtOnce(t, k, granted, senders)
		if live := k.LiveCopies(granted); len(got) > 1 || live > 1 {
			t.Fatalf("round %d: %d of %d delegations succeeded, %d live copies; the policy allows 1", round, len(got), senders, live)
		}
		for _, c := range got {
			k.Revoke(c, "next round")
		}
	}
}

// delegateAtOnce passes granted on to n holders from n goroutines released
// together, and returns the copies that were made. A refusal other than the
// policy's fails the test.
func delegateAtOnce(t *testing.T, k *caps.Kernel, granted *caps.Cap, n int) []*caps.Cap {
	t.Helper()
	b, i := granted.Rights()
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		got   []*caps.Cap
		start = make(chan struct{})
	)
	for j := range n {
		wg.Go(func() {
			to := &caps.Holder{ID: fmt.Sprintf("r-%d", j)}
			<-start
			c, err := k.Derive(granted, caps.Derivation{Holder: to, Edge: caps.EdgeDelegate, Name: "data", Base: b, Inheriting: i})
			if err != nil {
				if !IsPolicyDenial(err) {
					t.Errorf("delegation to %s: %v, want success or a policy denial", to.ID, err)
				}
				return
			}
			mu.Lock()
			got = append(got, c)
			mu.Unlock()
		})
	}
	close(start)
	wg.Wait()
	return got
}

// yieldingGate is a gate that yields the processor after each decision,
// as the supervisor's may be descheduled there while it records it.
type yieldingGate struct{ caps.Gate }

func (g yieldingGate) Delegate(parent *caps.Cap, d *caps.Derivation) (time.Duration, error) {
	lease, err := g.Gate.Delegate(parent, d)
	runtime.Gosched()
	return lease, err
}
