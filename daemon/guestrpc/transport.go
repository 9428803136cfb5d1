package guestrpc

import (
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	capnp "capnproto.org/go/capnp/v3"
	"capnproto.org/go/capnp/v3/exc"
	"capnproto.org/go/capnp/v3/rpc/transport"
	rpccp "capnproto.org/go/capnp/v3/std/capnp/rpc"
	"github.com/hashicorp/go-hclog"
	"github.com/sandboxd/sandboxd/caps"
	"github.com/sandboxd/sandboxd/daemon/rpcquestions"
)

// Limits bound what one guest's connection may cost the daemon and the
// other guests. Zero fields take DefaultLimits.
type Limits struct {
	// MaxMessageSize is the largest message a guest may send. A larger
	// one ends its connection. Default 1 MiB.
	MaxMessageSize uint64
	// MaxCallsInFlight bounds the calls a guest has started (to the
	// daemon, or through it to other guests) that have not returned; a
	// call the guest cancels (sends Finish for) counts until the daemon
	// has returned it. Exceeding it ends the guest's connection. It also bounds what a
	// guest flooding a peer can queue at that peer: every call it makes
	// to the peer is one of its own calls in flight. Default 128.
	MaxCallsInFlight int
	// MaxUnfinished bounds the calls a guest has started and not yet
	// finished (sent Finish for), returned or not: the daemon keeps each
	// answer until then. go-capnp finishes a call 250 ms after its return,
	// so this must allow for a quarter second of the guest's call rate.
	// Exceeding it ends the guest's connection. Default 4096.
	MaxUnfinished int
	// MaxExports bounds the objects the daemon keeps for one guest at
	// once: services it published or passed in calls, and handles it
	// wrapped (handOver). Calls that would make more fail with an
	// exception saying so. A call or return the guest sends that
	// carries more capabilities than this ends its connection.
	// Default 1024.
	MaxExports int
	// MaxForwarded bounds the calls the daemon has forwarded to a guest
	// (from the guests that hold its services) that it has not returned,
	// counting those their callers have since cancelled (the daemon
	// keeps each until the guest returns it) and those it has not read
	// yet (the daemon queues them). A call past it is not
	// forwarded; its caller gets an exception of type overloaded.
	// Default 1024.
	MaxForwarded int
}

// DefaultLimits are the limits used for zero fields of Limits.
var DefaultLimits = Limits{MaxMessageSize: 1 << 20, MaxCallsInFlight: 128, MaxUnfinished: 4096, MaxExports: 1024, MaxForwarded: 1024}

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
	if l.MaxForwarded <= 0 {
		l.MaxForwarded = DefaultLimits.MaxForwarded
	}
	if l.MaxUnfinished <= 0 {
		l.MaxUnfinished = max(DefaultLimits.MaxUnfinished, l.MaxCallsInFlight)
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

	mu sync.Mutex
	// questions are the guest's question ids the daemon still keeps: not
	// returned, or not finished, or both.
	questions *rpcquestions.Table
	// forwarded are the daemon's own questions to the guest (the calls
	// forwarded to it) that it has not returned. go-capnp keeps each
	// until its Return comes, whether or not it was cancelled.
	forwarded map[uint32]struct{}
	// queued counts the messages made for the guest and not yet sent
	// (or dropped): go-capnp queues them without bound while a write to
	// a guest that does not read waits. The Return of each question in
	// progress is among them: go-capnp makes it as the call arrives.
	queued int
	// sending counts the calls admitted and not yet made into a message.
	sending int
	// charge is the memory budget of the guest's user (nil: none), which
	// each message the guest sends counts against, at its size, for as
	// long as the daemon holds it: a call's until it returns.
	charge caps.MemoryCharge
}

func newLimitedTransport(rwc io.ReadWriteCloser, lim Limits, log hclog.Logger, charge caps.MemoryCharge) *limitedTransport {
	dec := capnp.NewDecoder(rwc)
	dec.MaxMessageSize = lim.MaxMessageSize
	codec := &streamCodec{rwc: rwc, dec: dec, enc: capnp.NewEncoder(rwc)}
	return &limitedTransport{Transport: transport.New(codec), lim: lim, log: log, questions: rpcquestions.New(), forwarded: make(map[uint32]struct{}), charge: charge}
}

// NewMessage returns an outgoing message that marks the question it
// returns, if it is a Return, as no longer in progress once sent, and
// records the daemon's question it asks, if it is a Call.
func (t *limitedTransport) NewMessage() (transport.OutgoingMessage, error) {
	om, err := t.Transport.NewMessage()
	if err != nil {
		return nil, err
	}
	t.mu.Lock()
	t.queued++
	t.mu.Unlock()
	return &watchedMessage{OutgoingMessage: om, t: t}, nil
}

type watchedMessage struct {
	transport.OutgoingMessage
	t    *limitedTransport
	gone atomic.Bool // sent or dropped: no longer queued
}

// dequeue no longer counts the message as queued, once.
func (m *watchedMessage) dequeue() {
	if !m.gone.Swap(true) {
		m.t.mu.Lock()
		m.t.queued--
		m.t.mu.Unlock()
	}
}

// Release drops the message if it was not sent. (A Return sent is
// released only when the guest finishes its call.)
func (m *watchedMessage) Release() {
	m.dequeue()
	m.OutgoingMessage.Release()
}

func (m *watchedMessage) Send() error {
	msg := m.Message()
	switch msg.Which() {
	case rpccp.Message_Which_return:
		if ret, err := msg.Return(); err == nil {
			m.t.returned(ret.AnswerId())
		}
	case rpccp.Message_Which_call:
		if call, err := msg.Call(); err == nil {
			m.t.forwarding(call.QuestionId())
		}
	}
	m.dequeue()
	return m.OutgoingMessage.Send()
}

// forwarding records a question the daemon asks the guest. It is
// recorded before it is sent, since the guest may return it at once.
func (t *limitedTransport) forwarding(id uint32) {
	t.mu.Lock()
	t.forwarded[id] = struct{}{}
	t.mu.Unlock()
}

// admit refuses a call to the guest while it has MaxForwarded of the
// daemon's questions not returned, counting the messages still queued for
// it as questions (most of them are, while it does not read) but for the
// Returns of its own calls in progress, and the calls admitted that are
// being made. A call it admits must be followed by sent.
func (t *limitedTransport) admit(guestID string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.forwarded)+max(0, t.queued-t.questions.InProgress())+t.sending >= t.lim.MaxForwarded {
		return exc.New(exc.Overloaded, "", fmt.Sprintf("guest %s is overloaded: it has not returned %d calls forwarded to it (the per-guest limit), some perhaps cancelled by their callers or not yet read by it; try again later", guestID, t.lim.MaxForwarded))
	}
	t.sending++
	return nil
}

// sent ends what admit began, once the call admitted has been made into
// a message (now queued or sent) or has failed.
func (t *limitedTransport) sent() {
	t.mu.Lock()
	t.sending--
	t.mu.Unlock()
}

func (t *limitedTransport) returned(id uint32) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.questions.Returned(id)
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
	return t.charged(in)
}

// charged charges in to the guest's user's budget until it is released,
// or refuses it, which ends the connection, when the budget has no room.
func (t *limitedTransport) charged(in transport.IncomingMessage) (transport.IncomingMessage, error) {
	if t.charge == nil {
		return in, nil
	}
	size, err := in.Message().Message().TotalSize()
	if err != nil {
		in.Release()
		return nil, err
	}
	if !t.charge.Take(int64(size)) {
		in.Release()
		err := fmt.Errorf("guest sent a Cap'n Proto message of %d bytes, which the daemon would hold (a call's until it returns), and its user's memory budget (serve --max-mem-per-user) has no room for it", size)
		t.log.Warn("disconnecting guest", "error", err.Error())
		return nil, err
	}
	return &chargedMessage{IncomingMessage: in, charge: t.charge, size: int64(size)}, nil
}

// chargedMessage gives its size back to the budget it was charged to when
// released.
type chargedMessage struct {
	transport.IncomingMessage
	charge   caps.MemoryCharge
	size     int64
	released atomic.Bool
}

func (m *chargedMessage) Release() {
	if !m.released.Swap(true) {
		m.charge.Give(m.size)
	}
	m.IncomingMessage.Release()
}

// track keeps the set of question ids the guest has open and refuses a
// call or bootstrap that reuses an open id, a call pipelined on a question
// that is not open (or on its own id), more than MaxCallsInFlight
// questions not returned, more than MaxUnfinished not finished, and a
// call or return carrying more than MaxExports capabilities.
func (t *limitedTransport) track(m rpccp.Message) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch m.Which() {
	case rpccp.Message_Which_call:
		if call, err := m.Call(); err == nil {
			return t.trackCall(call)
		} // else go-capnp reports the malformed call
	case rpccp.Message_Which_bootstrap:
		if b, err := m.Bootstrap(); err == nil {
			return t.open(b.QuestionId())
		}
	case rpccp.Message_Which_finish:
		if f, err := m.Finish(); err == nil {
			// Forgotten once the daemon has returned it; until then it
			// stays in progress.
			t.questions.Finished(f.QuestionId())
		}
	case rpccp.Message_Which_return:
		if r, err := m.Return(); err == nil {
			delete(t.forwarded, r.AnswerId())
			if r.Which() == rpccp.Return_Which_results {
				return t.checkCaps(r.Results())
			}
		}
	}
	return nil
}

// trackCall opens the question of a call the guest makes.
func (t *limitedTransport) trackCall(call rpccp.Call) error {
	id := call.QuestionId()
	if tgt, err := call.Target(); err == nil && tgt.Which() == rpccp.MessageTarget_Which_promisedAnswer {
		if pa, err := tgt.PromisedAnswer(); err == nil {
			q := pa.QuestionId()
			if !t.questions.CanPipelineOn(q, id) {
				return fmt.Errorf("guest broke the Cap'n Proto RPC protocol: call %d is pipelined on question %d, which is not open", id, q)
			}
		}
	}
	if err := t.checkCaps(call.Params()); err != nil {
		return err
	}
	return t.open(id)
}

// checkCaps refuses parameters or results that carry more capabilities
// than MaxExports: each costs the daemon an import, many times the size
// of its descriptor in the message, and no call could pass more on, since
// each one passed is an object exported for the guest that made the call.
func (t *limitedTransport) checkCaps(p rpccp.Payload, err error) error {
	if err != nil {
		return nil // go-capnp reports the malformed payload
	}
	if ct, err := p.CapTable(); err == nil && ct.Len() > t.lim.MaxExports {
		return fmt.Errorf("guest sent a message carrying %d capabilities, more than the %d a guest may have exported through the daemon (the per-guest limit)", ct.Len(), t.lim.MaxExports)
	}
	return nil
}

func (t *limitedTransport) open(id uint32) error {
	if t.questions.IsOpen(id) {
		return fmt.Errorf("guest broke the Cap'n Proto RPC protocol: question id %d reused before it was finished", id)
	}
	if t.questions.InProgress() >= t.lim.MaxCallsInFlight {
		return fmt.Errorf("guest has more than %d calls in flight (the per-guest limit): it must wait for replies before calling again", t.lim.MaxCallsInFlight)
	}
	if t.questions.Len() >= t.lim.MaxUnfinished {
		return fmt.Errorf("guest has more than %d calls not finished (the per-guest limit): it must send Finish for the calls that returned", t.lim.MaxUnfinished)
	}
	t.questions.Open(id)
	return nil
}

// What the daemon may read of one message a guest sent, and so copy of
// it (traversing a pointer copies what it points at): traverseFactor
// times the message's size, plus traverseSlack for the parts go-capnp
// reads more than once (the message's root, the call, its target),
// which in a small message are most of it.
const (
	traverseFactor = 2
	traverseSlack  = 64 << 10
)

// streamCodec frames messages on the guest's RPC channel.
type streamCodec struct {
	rwc   io.ReadWriteCloser
	dec   *capnp.Decoder
	encMu sync.Mutex
	enc   *capnp.Encoder
}

// Decode reads the next message and bounds what may be read of it
// (traverseFactor, traverseSlack) in place of capnp.Message's traversal
// limit of 64 MiB whatever the message's size. A message may point at
// one object many times, and each pointer read is a copy when the daemon
// passes the message's contents on (a call's parameters to the serving
// guest, its results back to the caller): 120 pointers to the same 512
// KiB, in a message of half a MiB, made a copy of 60 MiB, which a guest
// that does not read kept in the daemon. Past the bound the read fails,
// and with it the call or the return being copied: its caller gets an
// exception saying "read traversal limit reached".
func (c *streamCodec) Decode() (*capnp.Message, error) {
	m, err := c.dec.Decode()
	if err != nil {
		return nil, err
	}
	size, err := m.TotalSize()
	if err != nil {
		return nil, err
	}
	m.ResetReadLimit(traverseFactor*size + traverseSlack)
	return m, nil
}

func (c *streamCodec) Close() error { return c.rwc.Close() }

func (c *streamCodec) Encode(m *capnp.Message) error {
	c.encMu.Lock()
	defer c.encMu.Unlock()
	return c.enc.Encode(m)
}
