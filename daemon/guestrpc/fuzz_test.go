package guestrpc

import (
	"context"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"capnproto.org/go/capnp/v3/rpc"
	"capnproto.org/go/capnp/v3/rpc/transport"
	"github.com/sandboxd/sandboxd/caps"
	"github.com/sandboxd/sandboxd/examples/pipeline/pipelineapi"
	"github.com/sandboxd/sandboxd/schemas/guest"
)

// FuzzGuestInput writes arbitrary bytes to the daemon's end of a guest's
// Cap'n Proto connection, as a hostile guest can write them to its
// supervisor channel. The guest holds chan:jobs, on which another guest
// serves a Store, so the calls an input reaches cross the mediator to a
// peer. The daemon must not crash, must hang up once the input has ended,
// and must go on serving the other guest.
func FuzzGuestInput(f *testing.F) {
	h := newHarness(f, Limits{MaxMessageSize: 1 << 16})
	pub := h.peer(f, "chan:jobs")
	publishStore(f, pub, "jobs", "store", sink{})
	for _, script := range guestSessions {
		f.Add(h.record(f, script))
	}
	f.Add([]byte{0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, in []byte) {
		raw, closed := h.rawPeer(t, "chan:jobs")
		go func() { _, _ = io.Copy(io.Discard, raw) }()
		go func() {
			_, _ = raw.Write(in)
			_ = raw.Close()
		}()
		select {
		case <-closed:
		case <-time.After(hangGuard):
			t.Fatalf("the daemon did not hang up after the end of input %x", in)
		}
		if err := handles(testCtx(t), pub); err != nil {
			t.Fatalf("another guest's call after input %x: %v", in, err)
		}
	})
}

// guestSessions are what a well-behaved guest holding chan:jobs says to
// the daemon; their bytes are FuzzGuestInput's seeds.
var guestSessions = []func(t testing.TB, p *testPeer){
	func(t testing.TB, p *testPeer) {
		if err := handles(testCtx(t), p); err != nil {
			t.Fatal(err)
		}
	},
	func(t testing.TB, p *testPeer) { // obtain, then call the result
		s, err := obtainStore(t, p, "jobs", "store")
		if err != nil {
			t.Fatal(err)
		}
		defer s.Release()
		if err := put(testCtx(t), s, "k", "v"); err != nil {
			t.Fatal(err)
		}
	},
	func(t testing.TB, p *testPeer) { // a call pipelined on obtain's answer
		f, rel := p.sup.Obtain(testCtx(t), func(a guest.GuestSupervisor_obtain_Params) error {
			_ = a.SetChannel("jobs")
			return a.SetName("store")
		})
		defer rel()
		s := pipelineapi.Store(f.Service())
		if err := put(testCtx(t), s, "k", "v"); err != nil {
			t.Fatal(err)
		}
	},
	func(t testing.TB, p *testPeer) { // hand a handle over and install it
		f, rel := p.sup.HandOver(testCtx(t), func(a guest.GuestSupervisor_handOver_Params) error {
			a.SetFd(p.fd(t, "jobs"))
			a.SetNarrow(true)
			a.SetBase(uint64(caps.RightFDRead))
			return nil
		})
		defer rel()
		res, err := f.Struct()
		if err != nil {
			t.Fatal(err)
		}
		g, rel2 := p.sup.Install(testCtx(t), func(a guest.GuestSupervisor_install_Params) error {
			return a.SetHandle(res.Handle().AddRef())
		})
		defer rel2()
		if _, err := g.Struct(); err != nil {
			t.Fatal(err)
		}
	},
	func(t testing.TB, p *testPeer) {
		publishStore(t, p, "jobs", "mine", sink{})
	},
}

// record launches a guest holding chan:jobs, plays script as it and
// returns the bytes the guest's side sent.
func (h *harness) record(t testing.TB, script func(testing.TB, *testPeer)) []byte {
	t.Helper()
	g := h.launch(t, "chan:jobs")
	mine, theirs := net.Pipe()
	h.srv.Serve(g, theirs)
	rec := &recorder{Conn: mine}
	conn := rpc.NewConn(transport.NewStream(rec), nil)
	p := &testPeer{g: g, conn: conn, sup: guest.GuestSupervisor(conn.Bootstrap(context.Background()))}
	script(t, p)
	p.sup.Release()
	if err := conn.Close(); err != nil {
		t.Fatal(err)
	}
	return rec.sent()
}

// recorder keeps a copy of every byte written to its connection.
type recorder struct {
	net.Conn
	mu  sync.Mutex
	out []byte
}

func (r *recorder) Write(b []byte) (int, error) {
	r.mu.Lock()
	r.out = append(r.out, b...)
	r.mu.Unlock()
	return r.Conn.Write(b)
}

func (r *recorder) sent() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]byte(nil), r.out...)
}

// handles is one round trip to the daemon on p's connection.
func handles(ctx context.Context, p *testPeer) error {
	f, rel := p.sup.Handles(ctx, nil)
	defer rel()
	_, err := f.Struct()
	return err
}

// sink is a Store that keeps nothing: a peer's service that answers at
// once, however often a fuzzed guest calls it.
type sink struct{}

func (sink) Put(context.Context, pipelineapi.Store_put) error { return nil }
