// Package rpctest builds raw Cap'n Proto RPC messages for tests that speak
// to the daemon below the client library: what a stalling, flooding or
// malformed client would send.
package rpctest

import (
	capnp "capnproto.org/go/capnp/v3"
	rpccp "capnproto.org/go/capnp/v3/std/capnp/rpc"
)

// Bootstrap is a Bootstrap request with the given question id, framed for
// the stream: the first message a client sends (question 0).
func Bootstrap(question uint32) ([]byte, error) {
	msg, seg, err := capnp.NewMessage(capnp.SingleSegment(nil))
	if err != nil {
		return nil, err
	}
	m, err := rpccp.NewRootMessage(seg)
	if err != nil {
		return nil, err
	}
	b, err := m.NewBootstrap()
	if err != nil {
		return nil, err
	}
	b.SetQuestionId(question)
	return msg.Marshal()
}

// Finish is a Finish message for the given question, releasing the
// capabilities of its results: what a client sends once it has its answer.
func Finish(question uint32) ([]byte, error) {
	msg, seg, err := capnp.NewMessage(capnp.SingleSegment(nil))
	if err != nil {
		return nil, err
	}
	m, err := rpccp.NewRootMessage(seg)
	if err != nil {
		return nil, err
	}
	f, err := m.NewFinish()
	if err != nil {
		return nil, err
	}
	f.SetQuestionId(question)
	f.SetReleaseResultCaps(true)
	return msg.Marshal()
}
