package rpc

import (
	"errors"
	"testing"

	"capnproto.org/go/capnp/v3/rpc/transport"
	"capnproto.org/go/capnp/v3/util/deferred"
)

// An exception a call ends with once the connection's shutdown has begun
// is not sent: its Return, never filled in, would reach the caller as
// empty results, a success. Upstream sent it (an attached client of
// sandboxd saw a guest's exit status of zero when the daemon stopped).
// A result is not sent then either.
func TestNothingIsSentForAnAnswerEndingAfterShutdownBegan(t *testing.T) {
	for name, end := range map[string]func(*ansent, *deferred.Queue){
		"exception": func(ans *ansent, dq *deferred.Queue) { ans.sendException(dq, errors.New("the call failed")) },
		"results": func(ans *ansent, dq *deferred.Queue) {
			if _, err := ans.returner.ret.NewResults(); err != nil {
				t.Fatal(err)
			}
			if err := ans.sendReturn(dq); err != nil {
				t.Fatal(err)
			}
		},
	} {
		t.Run(name, func(t *testing.T) {
			near, far := transport.NewPipe(1)
			defer far.Close()
			c := NewConn(NewTransport(near), nil)
			defer c.Close()
			ret, _, rel, err := c.newReturn()
			if err != nil {
				t.Fatal(err)
			}
			sent := false
			ans := &ansent{sendMsg: func() { sent = true }, returner: ansReturner{c: c, ret: ret, msgReleaser: rel}}
			c.withLocked(func(c *lockedConn) { c.lk.bgcancel() }) // as shutdown begins
			dq := &deferred.Queue{}
			c.withLocked(func(*lockedConn) { end(ans, dq) })
			dq.Run()
			if sent {
				t.Fatalf("the answer's Return was sent after shutdown began")
			}
		})
	}
}
