package client

import (
	"context"
	"errors"
	"testing"

	"capnproto.org/go/capnp/v3/exc"
	"capnproto.org/go/capnp/v3/rpc"
)

// A call the RPC layer could not even send because the connection had
// closed fails as "send message: connection closed", a Failed exception
// around the closed connection: it is a disconnect, as for the calls that
// were in flight (TestClientExceedingOutstandingCallsIsDisconnectedAndItsGuestsKilled
// saw 19 of 20 calls disconnected and one such failure).
func TestACallSentAfterTheConnectionClosedIsADisconnect(t *testing.T) {
	for _, err := range []error{
		exc.Annotator("rpc").WrapFailed("send message", rpc.ErrConnClosed),
		exc.Annotator("rpc").WrapFailed("send message", rpc.ExcClosed),
	} {
		e, ok := callError("wait g-1", err).(*Error)
		if !ok || !e.Disconnected {
			t.Errorf("%v: %#v, want a disconnect", err, e)
		}
	}
}

// A daemon's message that names the operation or its object first says
// each once.
func TestCallErrorSaysTheOperationAndItsObjectOnce(t *testing.T) {
	for _, c := range []struct{ op, msg, want string }{
		{"launch x.wasm", "x.wasm imports env.f: link it against wasi-libc", "launch: x.wasm imports env.f: link it against wasi-libc"},
		{"launch x.wasm", "launch: grant dir:/srv refused", "launch x.wasm: grant dir:/srv refused"},
		{"launch x.wasm", "x.wasmy is not x.wasm", "launch x.wasm: x.wasmy is not x.wasm"},
		{"wait g-1", "no guest g-1", "wait g-1: no guest g-1"},
		{"launch x.wasm", "x.wasm: its tables declare 5000000 entries", "launch: x.wasm: its tables declare 5000000 entries"},
	} {
		if got := callError(c.op, errors.New(c.msg)).Error(); got != c.want {
			t.Errorf("callError(%q, %q) = %q, want %q", c.op, c.msg, got, c.want)
		}
	}
}

// A call given up at its context's end says what it waited for, and
// wraps the context's error and the cause the context ended with, which
// the message gives first.
func TestAGivenUpCallWrapsTheContextsErrorAndItsCause(t *testing.T) {
	cause := errors.New("the kill grace ended")
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(cause)
	err := gaveUp(ctx, "kill g-1", "the guest to exit")
	want := "kill g-1: gave up waiting for the guest to exit: the kill grace ended (context canceled)"
	if !errors.Is(err, cause) || !errors.Is(err, context.Canceled) || err.Error() != want {
		t.Errorf("gaveUp with a cause: %v; want %q, wrapping both", err, want)
	}
	ctx, cancel2 := context.WithCancel(context.Background())
	cancel2()
	err = gaveUp(ctx, "info g-1", answer)
	want = "info g-1: gave up waiting for the daemon's answer: context canceled"
	if !errors.Is(err, context.Canceled) || err.Error() != want {
		t.Errorf("gaveUp without a cause: %v; want %q, wrapping context.Canceled", err, want)
	}
}
