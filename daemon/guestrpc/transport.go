package guestrpc

import (
	"errors"
	"fmt"
	"io"
	"sync"

	capnp "capnproto.org/go/capnp/v3"
	"capnproto.org/go/capnp/v3/rpc/transport"
	rpccp "capnproto.org/go/capnp/v3/std/capnp/rpc"
	"github.com/hashicorp/go-hclog"
)

// Limits bound what one guest's connection may cost the daemon and the
// other guests. Zero fields take DefaultLimits.
type Limits struct {
	// MaxMessageSize is the largest message a guest may send. A larger
	// one ends its connection. Default 1 MiB.
	MaxMessageSize uint64
	// MaxCallsInFlight bounds the calls a guest has started (to the
	// daemon, or through it to other guests) and not yet finished.
	// Exceeding it ends the guest's connection. It also bounds what a
	// guest flooding a peer can queue at that peer: every call it makes
	// to the peer is one of its own calls in flight. Default 128.
	MaxCallsInFlight int
	// MaxExports bounds the objects the daemon keeps for one guest at
	// once: services it published or passed in calls, and handles it
	// wrapped (handOver). Calls that would make more fail with an
	// exception saying so. Default 1024.
	MaxExports int
}

// DefaultLimits are the limits used for zero fields of Limits.
var DefaultLimits = Limits{MaxMessageSize: 1 << 20, MaxCallsInFlight: 128, MaxExports: 1024}

// WithDefaults returns l with each zero field set to its default.
func (l Limits) WithDefaults() Limits {
	if l.MaxMessageSize == 0 {
		l.MaxMessageSize = DefaultLimits.MaxMessageSize
	}
	if l.MaxCallsInFlight <= 0 {
		l.MaxCallsInFlight = DefaultLimits.MaxCallsInFlight
	}
	if l.MaxExports <= 0 {
		l.MaxExports = DefaultLimits.MaxExports
	}
	return l
}

// limitedTransport is the stream transport for one guest: messages are
// framed by go-capnp's decoder with MaxMessageSize, and the questions the
// guest opens are counted and checked before go-capnp sees them (it
// queues received calls without bound, and some protocol violations
// crash it).
type limitedTransport struct {
	transport.Transport
	lim Limits
	log hclog.Logger
	// questions are the guest's open question ids; reader goroutine only.
	questions map[uint32]struct{}
}

func newLimitedTransport(rwc io.ReadWriteCloser, lim Limits, log hclog.Logger) *limitedTransport {
	dec := capnp.NewDecoder(rwc)
	dec.MaxMessageSize = lim.MaxMessageSize
	codec := &streamCodec{rwc: rwc, dec: dec, enc: capnp.NewEncoder(rwc)}
	return &limitedTransport{Transport: transport.New(codec), lim: lim, log: log, questions: make(map[uint32]struct{})}
}

// RecvMessage reads the next message and refuses one that breaks the
// rules (see track), which ends the connection.
func (t *limitedTransport) RecvMessage() (transport.IncomingMessage, error) {
	in, err := t.Transport.RecvMessage()
	if err != nil {
		if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrClosedPipe) {
			t.log.Warn("disconnecting guest: it sent a bad or oversized Cap'n Proto message", "error", err)
		}
		return nil, err
	}
	if err := t.track(in.Message()); err != nil {
		in.Release()
		t.log.Warn("disconnecting guest", "error", err.Error())
		return nil, err
	}
	return in, nil
}

// track keeps the set of question ids the guest has open and refuses a
// call or bootstrap that reuses an open id, a call pipelined on a question
// that is not open (or on its own id), and more than MaxCallsInFlight open
// questions.
func (t *limitedTransport) track(m rpccp.Message) error {
	switch m.Which() {
	case rpccp.Message_Which_call:
		call, err := m.Call()
		if err != nil {
			return nil // go-capnp reports the malformed call
		}
		id := call.QuestionId()
		if tgt, err := call.Target(); err == nil && tgt.Which() == rpccp.MessageTarget_Which_promisedAnswer {
			if pa, err := tgt.PromisedAnswer(); err == nil {
				q := pa.QuestionId()
				if _, open := t.questions[q]; !open || q == id {
					return fmt.Errorf("guest broke the Cap'n Proto RPC protocol: call %d is pipelined on question %d, which is not open", id, q)
				}
			}
		}
		return t.open(id)
	case rpccp.Message_Which_bootstrap:
		if b, err := m.Bootstrap(); err == nil {
			return t.open(b.QuestionId())
		}
	case rpccp.Message_Which_finish:
		if f, err := m.Finish(); err == nil {
			delete(t.questions, f.QuestionId())
		}
	}
	return nil
}

func (t *limitedTransport) open(id uint32) error {
	if _, open := t.questions[id]; open {
		return fmt.Errorf("guest broke the Cap'n Proto RPC protocol: question id %d reused before it was finished", id)
	}
	if len(t.questions) >= t.lim.MaxCallsInFlight {
		return fmt.Errorf("guest has more than %d calls in flight (the per-guest limit): it must wait for replies before calling again", t.lim.MaxCallsInFlight)
	}
	t.questions[id] = struct{}{}
	return nil
}

// streamCodec frames messages on the guest's RPC channel.
type streamCodec struct {
	rwc   io.ReadWriteCloser
	dec   *capnp.Decoder
	encMu sync.Mutex
	enc   *capnp.Encoder
}

func (c *streamCodec) Decode() (*capnp.Message, error) { return c.dec.Decode() }
func (c *streamCodec) Close() error                    { return c.rwc.Close() }

func (c *streamCodec) Encode(m *capnp.Message) error {
	c.encMu.Lock()
	defer c.encMu.Unlock()
	return c.enc.Encode(m)
}
