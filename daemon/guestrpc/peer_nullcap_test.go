package guestrpc

import (
	"context"
	"net"
	"sync"
	"testing"

	capnp "capnproto.org/go/capnp/v3"
	"capnproto.org/go/capnp/v3/rpc"
	"capnproto.org/go/capnp/v3/rpc/transport"
	capnpserver "capnproto.org/go/capnp/v3/server"
	rpccp "capnproto.org/go/capnp/v3/std/capnp/rpc"
	"github.com/sandboxd/sandboxd/examples/pipeline/pipelineapi"
	"github.com/sandboxd/sandboxd/schemas/guest"
)

// rawSide is a test guest's transport through which the test can also
// send messages of its own, which reports the question id of each call
// the guest's connection sends and sends no Finish: the daemon keeps the
// results of every call (go-capnp finishes a call a while after its
// return, which would race with what the test sends).
type rawSide struct {
	transport.Transport
	mu    sync.Mutex
	calls []uint32
	// sending is held by each send: the test's and the connection's
	// messages must not interleave on the stream.
	sending sync.Mutex
	// returned is closed when the Return of question rawQuestion comes.
	returned chan struct{}
}

// rawQuestion is the question id of the call the test sends itself.
const rawQuestion = 1000

func (r *rawSide) RecvMessage() (transport.IncomingMessage, error) {
	in, err := r.Transport.RecvMessage()
	if err == nil && in.Message().Which() == rpccp.Message_Which_return {
		if ret, err := in.Message().Return(); err == nil && ret.AnswerId() == rawQuestion {
			close(r.returned)
		}
	}
	return in, err
}

func (r *rawSide) NewMessage() (transport.OutgoingMessage, error) {
	om, err := r.Transport.NewMessage()
	if err != nil {
		return nil, err
	}
	return &recordedCall{OutgoingMessage: om, r: r}, nil
}

type recordedCall struct {
	transport.OutgoingMessage
	r *rawSide
}

func (m *recordedCall) Send() error {
	if m.Message().Which() == rpccp.Message_Which_finish {
		return nil
	}
	if msg := m.Message(); msg.Which() == rpccp.Message_Which_call {
		if call, err := msg.Call(); err == nil {
			m.r.mu.Lock()
			m.r.calls = append(m.r.calls, call.QuestionId())
			m.r.mu.Unlock()
		}
	}
	m.r.sending.Lock()
	defer m.r.sending.Unlock()
	return m.OutgoingMessage.Send()
}

func (r *rawSide) lastCall() uint32 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls[len(r.calls)-1]
}

// A peer's results may name a capability that is not there (an interface
// pointer past the end of the cap table, or one whose descriptor is
// none): the caller receives it as the null capability. A call the caller
// pipelines on it once the results have come, or a Disembargo it sends
// for it, must fail, not crash the daemon (go-capnp took a reference on
// the null capability of the results' cap table).
func TestACallOnANullCapabilityInReturnedResultsFails(t *testing.T) {
	h := newHarness(t, Limits{})
	a := h.peer(t, "chan:jobs")
	g := h.launch(t, "chan:jobs")
	mine, theirs := net.Pipe()
	h.srv.Serve(g, theirs)
	side := &rawSide{Transport: transport.NewStream(mine), returned: make(chan struct{})}
	conn := rpc.NewConn(side, nil)
	t.Cleanup(func() { _ = conn.Close() })
	b := &testPeer{g: g, conn: conn, sup: guest.GuestSupervisor(conn.Bootstrap(context.Background()))}
	srv := capnpserver.New([]capnpserver.Method{{Method: storePut, Impl: func(ctx context.Context, call *capnpserver.Call) error {
		r, err := call.AllocResults(capnp.ObjectSize{PointerCount: 1})
		if err != nil {
			return err
		}
		return r.SetPtr(0, capnp.NewInterface(r.Segment(), 3).ToPtr()) // no capability 3
	}}}, nil, nil)
	s := pipelineapi.Store(publishAndObtain(t, a, b, "store", capnp.NewClient(srv)))
	f, rel := s.Put(testCtx(t), nil)
	defer rel()
	if _, err := f.Struct(); err != nil {
		t.Fatal(err)
	}
	q := side.lastCall()
	// A round trip after it: the daemon is done with the put's return.
	if err := handles(testCtx(t), b); err != nil {
		t.Fatal(err)
	}
	// A Disembargo asking the daemon to loop back on the put's results,
	// pointer 0, then a call pipelined on them, after they came.
	sendRaw(t, side, func(m rpccp.Message) {
		d, _ := m.NewDisembargo()
		d.Context().SetSenderLoopback(7)
		dt, _ := d.NewTarget()
		onResultPointer0(dt, q)
	})
	sendRaw(t, side, func(m rpccp.Message) {
		call, _ := m.NewCall()
		call.SetQuestionId(rawQuestion)
		call.SetInterfaceId(pipelineapi.Store_TypeID)
		tgt, _ := call.NewTarget()
		onResultPointer0(tgt, q)
		payload, _ := call.NewParams()
		params, _ := pipelineapi.NewStore_put_Params(payload.Segment())
		_ = payload.SetContent(params.ToPtr())
	})
	// The daemon returns it, with an exception.
	<-side.returned
	if _, err := obtainStore(t, h.peer(t, "chan:jobs"), "jobs", "store"); err != nil {
		t.Fatalf("another guest, after a call on a null capability: %v", err)
	}
}

// sendRaw sends on side, as the guest, the message fill makes.
func sendRaw(t *testing.T, side *rawSide, fill func(rpccp.Message)) {
	t.Helper()
	om, err := side.Transport.NewMessage()
	if err != nil {
		t.Fatal(err)
	}
	defer om.Release()
	fill(om.Message())
	side.sending.Lock()
	err = om.Send()
	side.sending.Unlock()
	if err != nil {
		t.Fatal(err)
	}
}

// onResultPointer0 makes tgt the first pointer of the results of
// question q.
func onResultPointer0(tgt rpccp.MessageTarget, q uint32) {
	pa, _ := tgt.NewPromisedAnswer()
	pa.SetQuestionId(q)
	ops, _ := pa.NewTransform(1)
	ops.At(0).SetGetPointerField(0)
}
