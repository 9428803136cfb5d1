// Package rpctest builds raw Cap'n Proto RPC messages for tests that speak
// to the daemon below the client library: what a stalling, flooding or
// malformed client would send.
package rpctest

import (
	"errors"
	"io"
	"syscall"

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

// CallCarrying is a call of method method of interface iface on the
// answer to question target (the bootstrap's, say), as question question,
// with empty parameters and a capability table of n capabilities the
// client claims to host (ids from 0): what a client that makes the daemon
// import many capabilities at once would send.
func CallCarrying(question, target uint32, iface uint64, method uint16, n int) ([]byte, error) {
	return message(func(m rpccp.Message) error {
		call, _, err := newCall(m, question, target, iface, method)
		if err != nil {
			return err
		}
		payload, err := call.NewParams()
		if err != nil {
			return err
		}
		ct, err := payload.NewCapTable(int32(n))
		if err != nil {
			return err
		}
		for i := 0; i < n; i++ {
			ct.At(i).SetSenderHosted(uint32(i))
		}
		return nil
	})
}

// Call is a call of method method of interface iface, as question
// question, on the answer to question target, or with field 0 or more on
// the capability in that pointer field of its results, with the
// parameters params makes in the message's segment (nil: none).
func Call(question, target uint32, field int, iface uint64, method uint16, params func(*capnp.Segment) (capnp.Ptr, error)) ([]byte, error) {
	return message(func(m rpccp.Message) error {
		call, pa, err := newCall(m, question, target, iface, method)
		if err != nil {
			return err
		}
		if field >= 0 {
			ops, err := pa.NewTransform(1)
			if err != nil {
				return err
			}
			ops.At(0).SetGetPointerField(uint16(field))
		}
		payload, err := call.NewParams()
		if err != nil || params == nil {
			return err
		}
		p, err := params(m.Segment())
		if err != nil {
			return err
		}
		return payload.SetContent(p)
	})
}

// AwaitReturn reads the messages the daemon sends on r until the Return
// of question answer, and reports true; or false if the connection ends
// first (the daemon hung up). It fails on any other read error.
func AwaitReturn(r io.Reader, answer uint32) (bool, error) {
	dec := capnp.NewDecoder(r)
	for {
		msg, err := dec.Decode()
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		m, err := rpccp.ReadRootMessage(msg)
		if err != nil {
			return false, err
		}
		if m.Which() != rpccp.Message_Which_return {
			continue
		}
		if ret, err := m.Return(); err == nil && ret.AnswerId() == answer {
			return true, nil
		}
	}
}

// newCall starts the Call message m as question question of method
// method of interface iface on the answer to question target, and
// returns the call and its target's promised answer.
func newCall(m rpccp.Message, question, target uint32, iface uint64, method uint16) (rpccp.Call, rpccp.PromisedAnswer, error) {
	call, err := m.NewCall()
	if err != nil {
		return call, rpccp.PromisedAnswer{}, err
	}
	call.SetQuestionId(question)
	call.SetInterfaceId(iface)
	call.SetMethodId(method)
	tgt, err := call.NewTarget()
	if err != nil {
		return call, rpccp.PromisedAnswer{}, err
	}
	pa, err := tgt.NewPromisedAnswer()
	if err != nil {
		return call, pa, err
	}
	pa.SetQuestionId(target)
	return call, pa, nil
}
