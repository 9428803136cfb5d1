package guestrpc

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"runtime"
	"sync"
	"testing"

	capnp "capnproto.org/go/capnp/v3"
	"capnproto.org/go/capnp/v3/rpc"
	"capnproto.org/go/capnp/v3/rpc/transport"
	capnpserver "capnproto.org/go/capnp/v3/server"
	"github.com/sandboxd/sandboxd/examples/pipeline/pipelineapi"
	"github.com/sandboxd/sandboxd/schemas/guest"
)

// A message may point at one object many times, and copying it for the
// guest it goes to copies the object each time: a call of half a MiB
// whose parameters point 120 times at the same 512 KiB would be built
// into a message of 60 MiB for the serving guest, and kept while that
// guest does not read. What the daemon makes of a guest's message must
// stay within a small multiple of it, as the messages a guest has in
// flight are bounded in number and size (MaxCallsInFlight,
// MaxMessageSize).
func TestSharedPointersInACallCannotMultiplyTheDaemonsMemory(t *testing.T) {
	h := newHarness(t, Limits{})
	a, held := h.heldPeer(t, "chan:jobs")
	b := h.peer(t, "chan:jobs")
	s := servedStore(t, a, b, newStore())
	before := allocated()
	errc := make(chan error, 1)
	go func() { errc <- sharedPut(testCtx(t), s, sharedPointers, sharedBlob) }()
	select {
	case <-held.waiting: // the daemon made a large message for the store
	case err := <-errc: // the daemon refused the call
		t.Logf("the call was refused: %v", err)
	}
	checkGrowth(t, before, held, "a call")
}

// The same of a return: results of half a MiB that point 120 times at
// the same 512 KiB must not become 60 MiB kept for a caller that does
// not read.
func TestSharedPointersInResultsCannotMultiplyTheDaemonsMemory(t *testing.T) {
	h := newHarness(t, Limits{})
	a := h.peer(t, "chan:jobs")
	b, held := h.heldPeer(t, "chan:jobs")
	srv := capnpserver.New([]capnpserver.Method{{Method: storePut, Impl: func(ctx context.Context, call *capnpserver.Call) error {
		r, err := call.AllocResults(capnp.ObjectSize{PointerCount: sharedPointers})
		if err != nil {
			return err
		}
		return pointAtOneBlob(r, sharedPointers, sharedBlob)
	}}}, nil, nil)
	s := pipelineapi.Store(publishAndObtain(t, a, b, "store", capnp.NewClient(srv)))
	before := allocated()
	errc := make(chan error, 1)
	go func() { errc <- put(testCtx(t), s, "k", "v") }()
	select {
	case <-held.waiting: // the daemon made a large message for the caller
	case err := <-errc: // the results never made one
		t.Logf("the call ended: %v", err)
	}
	checkGrowth(t, before, held, "results")
}

// A message of sharedBlob bytes and sharedPointers pointers to them is
// 60 MiB copied pointer by pointer: under go-capnp's default traversal
// limit of 64 MiB, from a message of half a MiB.
const sharedPointers, sharedBlob = 120, 512 << 10

// checkGrowth fails the test if the process allocated, since before, more
// than 16 times what the guest sent: the daemon decodes the message it
// receives and may copy up to twice its size before the copy is refused,
// and the test's own peers, in this process too, make theirs (some 6
// times in all, and 130 times when the copy was not bounded). The
// largest message the daemon made for the guest that does not read is
// logged: copied pointer by pointer, 60 MiB.
func checkGrowth(t *testing.T, before uint64, held *heldConn, what string) {
	t.Helper()
	grown := int64(allocated() - before)
	sent := int64(sharedBlob + 8*sharedPointers)
	t.Logf("allocated %d KiB; the largest message the daemon made for the guest that does not read has %d KiB", grown>>10, held.largest()>>10)
	if grown > 16*sent {
		t.Fatalf("%s of %d KiB that points %d times at the same %d KiB made the daemon allocate %d MiB", what, sent>>10, sharedPointers, sharedBlob>>10, grown>>20)
	}
}

// storePut is pipeline.capnp's Store.put.
var storePut = capnp.Method{InterfaceID: pipelineapi.Store_TypeID, MethodID: 0, InterfaceName: "pipeline.capnp:Store", MethodName: "put"}

// heldConn is the daemon's end of a guest's connection that takes every
// message smaller than sharedBlob and holds the first larger one, as a
// guest that stopped reading just then: its write waits (waiting is
// closed) until the daemon closes the connection. So what the daemon made
// for the guest stays made.
type heldConn struct {
	net.Conn
	waiting, closed     chan struct{}
	waitOnce, closeOnce sync.Once

	mu   sync.Mutex
	rest int64 // bytes of the message being written still to come
	big  int64 // the size of the message held
}

// Write parses each message's segment table, which capnp.Encoder writes
// first and alone (a net.Pipe takes no vectored writes).
func (c *heldConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	if c.rest > 0 || len(p) < 8 {
		c.rest -= int64(len(p))
		c.mu.Unlock()
		return c.Conn.Write(p)
	}
	size := int64(0)
	for i, n := 0, int(binary.LittleEndian.Uint32(p))+1; i < n && 8+4*i <= len(p); i++ {
		size += 8 * int64(binary.LittleEndian.Uint32(p[4+4*i:]))
	}
	if size < sharedBlob {
		c.rest = size
		c.mu.Unlock()
		return c.Conn.Write(p)
	}
	c.big = size
	c.mu.Unlock()
	c.waitOnce.Do(func() { close(c.waiting) })
	<-c.closed
	return 0, io.ErrClosedPipe
}

func (c *heldConn) largest() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.big
}

func (c *heldConn) Close() error {
	c.closeOnce.Do(func() { close(c.closed) })
	return c.Conn.Close()
}

// heldPeer is peer whose connection is a heldConn.
func (h *harness) heldPeer(t testing.TB, grants ...string) (*testPeer, *heldConn) {
	t.Helper()
	g := h.launch(t, grants...)
	mine, theirs := net.Pipe()
	hc := &heldConn{Conn: theirs, waiting: make(chan struct{}), closed: make(chan struct{})}
	h.srv.Serve(g, hc)
	conn := rpc.NewConn(transport.NewStream(mine), nil)
	t.Cleanup(func() { _ = conn.Close() })
	return &testPeer{g: g, conn: conn, sup: guest.GuestSupervisor(conn.Bootstrap(context.Background()))}, hc
}

// sharedPut calls s's put with parameters of pointers pointers, all to
// one blob of size bytes (a valid message: nothing says an object has
// one pointer to it).
func sharedPut(ctx context.Context, s pipelineapi.Store, pointers uint16, size int) error {
	f, rel := capnp.Client(s).SendCall(ctx, capnp.Send{
		Method:    storePut,
		ArgsSize:  capnp.ObjectSize{PointerCount: pointers},
		PlaceArgs: func(p capnp.Struct) error { return pointAtOneBlob(p, pointers, size) },
	})
	defer rel()
	_, err := f.Struct()
	return err
}

// pointAtOneBlob makes each of p's first n pointers point at one new
// blob of size bytes.
func pointAtOneBlob(p capnp.Struct, n uint16, size int) error {
	d, err := capnp.NewData(p.Segment(), make([]byte, size))
	if err != nil {
		return err
	}
	for i := range n {
		if err := p.SetPtr(i, d.ToPtr()); err != nil {
			return err
		}
	}
	return nil
}

// allocated is the bytes the process has allocated so far
// (runtime.MemStats.TotalAlloc): it only grows, so that what other tests
// free meanwhile does not hide what this one makes.
func allocated() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.TotalAlloc
}
