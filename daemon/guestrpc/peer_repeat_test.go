package guestrpc

import (
	"context"
	"strings"
	"testing"

	capnp "capnproto.org/go/capnp/v3"
	capnpserver "capnproto.org/go/capnp/v3/server"
	"github.com/sandboxd/sandboxd/caps"
	"github.com/sandboxd/sandboxd/examples/pipeline/pipelineapi"
)

// repeatedPut calls s's put with parameters that point pointers times at
// one capability the caller serves (one entry of the cap table).
func repeatedPut(t *testing.T, s pipelineapi.Store, pointers int) error {
	t.Helper()
	mine := capnp.Client(pipelineapi.Store_ServerToClient(newStore()))
	defer mine.Release()
	f, rel := capnp.Client(s).SendCall(testCtx(t), capnp.Send{
		Method:   storePut,
		ArgsSize: capnp.ObjectSize{PointerCount: 1},
		PlaceArgs: func(p capnp.Struct) error {
			id := p.Message().CapTable().Add(mine.AddRef())
			l, err := capnp.NewPointerList(p.Segment(), int32(pointers))
			if err != nil {
				return err
			}
			for i := 0; i < pointers; i++ {
				if err := l.Set(i, capnp.NewInterface(p.Segment(), id).ToPtr()); err != nil {
					return err
				}
			}
			return p.SetPtr(0, l.ToPtr())
		},
	})
	defer rel()
	_, err := f.Struct()
	return err
}

// A message may point at one capability many times (its cap table has it
// once; any number of interface pointers may name that entry). Each
// capability that crosses costs the daemon a derivation, with its audit
// record, and an object counted against the caller's exports: one
// capability named many times is one capability passed, derived once,
// not once per pointer. Named more times than a message may carry
// capabilities, the call is refused, and reaches nobody: the recipient
// would import each.
func TestACapabilityNamedManyTimesInACallIsDerivedOnce(t *testing.T) {
	const exports = 8
	h := newHarness(t, Limits{MaxExports: exports})
	a, b := h.peer(t, "chan:jobs"), h.peer(t, "chan:jobs")
	held := make(chan []caps.Info, 2)
	srv := capnpserver.New([]capnpserver.Method{{Method: storePut, Impl: func(ctx context.Context, call *capnpserver.Call) error {
		held <- h.held(a.g.ID(), caps.KindService)
		return nil
	}}}, nil, nil)
	if err := publishingClient(t, a, "jobs", "store", capnp.NewClient(srv)); err != nil {
		t.Fatal(err)
	}
	s, err := obtainStore(t, b, "jobs", "store")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Release()
	// b holds one export (its copy of the store): as many pointers as
	// its limit would pass it, were each a capability.
	if err := repeatedPut(t, s, exports); err != nil {
		t.Fatalf("a call naming one capability %d times (the caller may export %d objects): %v", exports, exports, err)
	}
	// The store's root, and one copy of b's object.
	if got := <-held; len(got) != 2 {
		t.Fatalf("the serving guest held %d service capabilities during the call; want 2 (its store, one copy of the capability passed)", len(got))
	}
	err = repeatedPut(t, s, exports+1)
	if err == nil || !strings.Contains(err.Error(), "names capabilities 9 times") {
		t.Fatalf("a call naming one capability %d times, more than a message may carry (%d): %v", exports+1, exports, err)
	}
	select {
	case <-held:
		t.Fatal("the refused call reached the serving guest")
	default:
	}
	if err := put(testCtx(t), s, "k", "v"); err != nil {
		t.Fatalf("a call after the refused one: %v", err)
	}
}
