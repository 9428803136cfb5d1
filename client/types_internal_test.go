package client

import (
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
