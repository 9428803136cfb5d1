package server_test

import (
	"bytes"
	"context"
	"github.com/sandboxd/sandboxd/internal/rpctest"
	"net"
	"strings"
	"testing"
	"time"

	capnp "capnproto.org/go/capnp/v3"
	"capnproto.org/go/capnp/v3/rpc"
	rpccp "capnproto.org/go/capnp/v3/std/capnp/rpc"
	"github.com/sandboxd/sandboxd/abi/abitest"
	"github.com/sandboxd/sandboxd/daemon/server"
	"github.com/sandboxd/sandboxd/schemas"
)

// rawCall encodes a Call message for Supervisor.list with the given
// question id, aimed at the answer to question target.
func rawCall(t testing.TB, question, target uint32) []byte {
	t.Helper()
	msg, seg, err := capnp.NewMessage(capnp.SingleSegment(nil))
	if err != nil {
		t.Fatal(err)
	}
	m, err := rpccp.NewRootMessage(seg)
	if err != nil {
		t.Fatal(err)
	}
	call, err := m.NewCall()
	if err != nil {
		t.Fatal(err)
	}
	call.SetQuestionId(question)
	call.SetInterfaceId(schemas.Supervisor_TypeID)
	call.SetMethodId(1) // list
	tgt, err := call.NewTarget()
	if err != nil {
		t.Fatal(err)
	}
	pa, err := tgt.NewPromisedAnswer()
	if err != nil {
		t.Fatal(err)
	}
	pa.SetQuestionId(target)
	p, err := call.NewParams()
	if err != nil {
		t.Fatal(err)
	}
	st, err := capnp.NewStruct(seg, capnp.ObjectSize{})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.SetContent(st.ToPtr()); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := capnp.NewEncoder(&buf).Encode(msg); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// selfPipelinedCall is a bootstrap (question 0) followed by a call with
// question id 1 pipelined on question 1, its own answer.
func selfPipelinedCall(t testing.TB) []byte {
	return append(bootstrap(t, 0), rawCall(t, 1, 1)...)
}

func TestCallPipelinedOnItsOwnQuestionDisconnectsTheClient(t *testing.T) {
	d := startDaemon(t, server.Limits{})
	serveBytes(t, d.srv, selfPipelinedCall(t))
	if !strings.Contains(d.logs.String(), "pipelined on question 1, which is not an open question") {
		t.Errorf("the daemon did not say why it hung up:\n%s", d.logs.String())
	}
	serveBytes(t, d.srv, append(bootstrap(t, 0), rawCall(t, 1, 7)...))
	if !strings.Contains(d.logs.String(), "pipelined on question 7, which is not an open question") {
		t.Errorf("the daemon did not refuse a call pipelined on an unknown question:\n%s", d.logs.String())
	}
	reused := append(bootstrap(t, 0), rawCall(t, 1, 0)...)
	reused = append(reused, rawCall(t, 1, 0)...)
	serveBytes(t, d.srv, reused)
	if !strings.Contains(d.logs.String(), "question id 1 reused before the client finished it") {
		t.Errorf("the daemon did not refuse a reused question id:\n%s", d.logs.String())
	}
	d.stillServes(t)
}

// The RPC library itself, without the daemon's transport checks, answers
// a call pipelined on its own question with an exception instead of
// crashing.
func TestRPCAnswersCallPipelinedOnItsOwnQuestionWithAnException(t *testing.T) {
	a, b := net.Pipe()
	defer b.Close()
	srv := rpc.NewConn(rpc.NewStreamTransport(a), &rpc.Options{
		BootstrapClient: capnp.Client(schemas.OutputSink_ServerToClient(discardSink{})),
	})
	defer srv.Close()
	go b.Write(selfPipelinedCall(t))
	dec := capnp.NewDecoder(b)
	_ = b.SetReadDeadline(time.Now().Add(server.HangGuard))
	for {
		msg, err := dec.Decode()
		if err != nil {
			t.Fatalf("no answer to the call (the connection ended: %v)", err)
		}
		m, err := rpccp.ReadRootMessage(msg)
		if err != nil {
			t.Fatal(err)
		}
		if m.Which() != rpccp.Message_Which_return {
			continue
		}
		ret, err := m.Return()
		if err != nil {
			t.Fatal(err)
		}
		if ret.AnswerId() != 1 {
			continue
		}
		if ret.Which() != rpccp.Return_Which_exception {
			t.Fatalf("question 1 returned %v, want an exception", ret.Which())
		}
		e, _ := ret.Exception()
		reason, _ := e.Reason()
		if !strings.Contains(reason, "promised answer ID 1 has no pipeline") {
			t.Errorf("exception %q does not say what was wrong", reason)
		}
		return
	}
}

type discardSink struct{}

func (discardSink) Write(context.Context, schemas.OutputSink_write) error { return nil }

// A call pipelined on a result field that holds no capability is queued
// while the launch runs and fails when the launch returns; the daemon
// goes on serving.
func TestCallPipelinedOnANonCapabilityFieldFails(t *testing.T) {
	d := startDaemon(t, server.Limits{})
	ctx := context.Background()
	sup := d.rawSupervisor(t)
	wasm := abitest.WAT(t, helloWAT)
	for i := 0; i < 20; i++ {
		f, rel := sup.Launch(ctx, func(p schemas.Supervisor_launch_Params) error {
			r, err := p.NewRequest()
			if err != nil {
				return err
			}
			if err := r.SetName("hello.wat"); err != nil {
				return err
			}
			return r.SetWasm(wasm)
		})
		// info is a struct, not a capability.
		notACap := schemas.Guest(f.Future.Field(1, nil).Client())
		wf, wrel := notACap.Wait(ctx, nil)
		if _, err := wf.Struct(); err == nil {
			t.Fatal("a call on a non-capability field succeeded")
		}
		wrel()
		notACap.Release()
		res, err := f.Struct()
		if err != nil {
			t.Fatal(err)
		}
		ef, erel := res.Guest().Wait(ctx, nil)
		wr, err := ef.Struct()
		if err != nil {
			t.Fatal(err)
		}
		if st, err := wr.Status(); err != nil || st.Code() != 7 {
			t.Fatalf("guest exited %d (%v), want 7", st.Code(), err)
		}
		erel()
		rel()
	}
	d.stillServes(t)
}

// rawSupervisor connects to the daemon with go-capnp directly, without the
// client library, and returns the resolved Supervisor; the connection is
// closed when the test ends.
func (d *testDaemon) rawSupervisor(t *testing.T) schemas.Supervisor {
	t.Helper()
	nc, err := net.Dial("unix", d.socket)
	if err != nil {
		t.Fatal(err)
	}
	conn := rpc.NewConn(rpc.NewStreamTransport(nc), nil)
	t.Cleanup(func() { conn.Close() })
	sup := schemas.Supervisor(conn.Bootstrap(context.Background()))
	t.Cleanup(sup.Release)
	if err := sup.Resolve(context.Background()); err != nil {
		t.Fatal(err)
	}
	return sup
}

// bootstrap is a Bootstrap request with the given question id, framed for
// the stream.
func bootstrap(t testing.TB, question uint32) []byte {
	t.Helper()
	b, err := rpctest.Bootstrap(question)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
