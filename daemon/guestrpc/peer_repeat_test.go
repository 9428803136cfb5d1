package guestrpc

import (
	"context"
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
// not once per pointer, and named by more pointers than the caller may
// export objects, it still passes, as one.
func TestACapabilityNamedManyTimesInACallIsDerivedOnce(t *testing.T) {
	const exports = 8
	h := newHarness(t, Limits{MaxExports: exports})
	a, b := h.peer(t, "chan:jobs"), h.peer(t, "chan:jobs")
	held := make(chan []caps.Info, 2)
	srv := capnpserver.New([]capnpserver.Method{{Method: storePut, Impl: func(ctx context.Context, call *capnpserver.Call) error {
		held <- h.held(a.g.ID(), caps.KindService)
		return nil
	}}}, nil, nil)
	s := pipelineapi.Store(publishAndObtain(t, a, b, "store", capnp.NewClient(srv)))
	// b holds one export (its copy of the store): as many pointers as
	// its limit would pass it, were each a capability.
	if err := repeatedPut(t, s, exports); err != nil {
		t.Fatalf("a call naming one capability %d times (the caller may export %d objects): %v", exports, exports, err)
	}
	// The store's root, and one copy of b's object.
	if got := <-held; len(got) != 2 {
		t.Fatalf("the serving guest held %d service capabilities during the call; want 2 (its store, one copy of the capability passed)", len(got))
	}
	if err := repeatedPut(t, s, 4*exports); err != nil {
		t.Fatalf("a call naming one capability %d times (the caller may export %d objects): %v", 4*exports, exports, err)
	}
	if got := <-held; len(got) != 2 {
		t.Fatalf("the serving guest held %d service capabilities during the call; want 2 (its store, one copy of the capability passed)", len(got))
	}
}

// What copying a call for the serving guest costs the daemon follows the
// capabilities it carries, not the pointers that name them: a call of
// under 1 MiB naming one capability 120,000 times made the daemon take
// 120,000 references (and allocate 21 MiB) only to refuse it. It is one
// capability passed, at the cost of a call of the same size that carries
// none.
func TestACapabilityNamedByEveryPointerOfACallCostsOneCopy(t *testing.T) {
	const pointers = 120000
	h := newHarness(t, Limits{})
	a, b := h.peer(t, "chan:jobs"), h.peer(t, "chan:jobs")
	held := make(chan []caps.Info, 1)
	srv := capnpserver.New([]capnpserver.Method{{Method: storePut, Impl: func(ctx context.Context, call *capnpserver.Call) error {
		held <- h.held(a.g.ID(), caps.KindService)
		return nil
	}}}, nil, nil)
	s := pipelineapi.Store(publishAndObtain(t, a, b, "store", capnp.NewClient(srv)))
	before := allocated()
	err := repeatedPut(t, s, pointers)
	grown := allocated() - before
	t.Logf("a call naming one capability %d times: %v; %d KiB allocated", pointers, err, grown>>10)
	if err != nil {
		t.Fatalf("a call naming one capability %d times: %v", pointers, err)
	}
	if got := <-held; len(got) != 2 {
		t.Fatalf("the serving guest held %d service capabilities during the call; want 2 (its store, one copy of the capability passed)", len(got))
	}
	// The message is 8 bytes a pointer: the caller builds it, each side
	// frames and reads it, the daemon copies it once for the peer.
	if sent := uint64(8 * pointers); grown > 16*sent {
		t.Fatalf("a call of %d KiB naming one capability %d times made the process allocate %d MiB; want at most %d MiB", sent>>10, pointers, grown>>20, 16*sent>>20)
	}
}
