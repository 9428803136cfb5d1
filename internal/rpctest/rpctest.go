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
	return message(func(m rpccp.Message) error {
		b, err := m.NewBootstrap()
		if err != nil {
			return err
		}
		b.SetQuestionId(question)
		return nil
	})
}

// Finish is a Finish message for the given question, releasing the
// capabilities of its results: what a client sends once it has its answer.
func Finish(question uint32) ([]byte, error) {
	return message(func(m rpccp.Message) error {
		f, err := m.NewFinish()
		if err != nil {
			return err
		}
		f.SetQuestionId(question)
		f.SetReleaseResultCaps(true)
		return nil
	})
}

// message is the RPC message build fills in, framed for the stream.
func message(build func(rpccp.Message) error) ([]byte, error) {
	msg, seg, err := capnp.NewMessage(capnp.SingleSegment(nil))
	if err != nil {
		return nil, err
	}
	m, err := rpccp.NewRootMessage(seg)
	if err != nil {
		return nil, err
	}
	if err := build(m); err != nil {
		return nil, err
	}
	return msg.Marshal()
}
