package server

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	capnp "capnproto.org/go/capnp/v3"
	"capnproto.org/go/capnp/v3/rpc/transport"
	rpccp "capnproto.org/go/capnp/v3/std/capnp/rpc"
	"github.com/hashicorp/go-hclog"
	"github.com/sandboxd/sandboxd/daemon/rpcquestions"
)

// Limits bound what one client connection may cost the daemon. A client
// that exceeds a hard limit is disconnected with an error that names the
// limit; its non-detached guests are killed and its capabilities closed,
// as for any disconnect. Zero values take the defaults below.
type Limits struct {
	// MaxMessageSize is the largest message a client may send (a launch
	// carries its module, so this bounds module size). Default 32 MiB.
	MaxMessageSize uint64
	// MaxOutstandingCalls bounds the calls (and bootstraps) a client has
	// started that the daemon keeps: not yet finished, or not yet
	// returned (a call the client cancels, sending Finish, counts until
	// the daemon has returned it). Exceeding it disconnects the client.
	// Default 4096.
	MaxOutstandingCalls int
	// MaxHeldBytes bounds the bytes of received messages the daemon still
	// holds for a connection (arguments of calls in progress). Past it the
	// daemon stops reading from that connection until calls complete.
	// Default 2 × MaxMessageSize.
	MaxHeldBytes uint64
	// MaxObjects bounds the Guest and Cap objects the daemon has handed to
	// one connection and the connection has not released. Calls that would
	// create more fail with an error saying so. Default 4096.
	MaxObjects int
	// MaxGuests bounds the guests one principal (uid) may have running at
	// once, over all its connections; launches beyond it fail with an
	// error saying so. Default 16384.
	MaxGuests int
	// MaxConnections bounds concurrent client connections, of every
	// principal together. Further connections are closed at once and
	// logged with the limit that refused them. Default 1024.
	MaxConnections int
	// ReservedConnections are the places of MaxConnections that only root
	// and the daemon's own uid may take: the connections of all other
	// principals together are at most MaxConnections −
	// ReservedConnections, so other users cannot lock root and the
	// daemon's user out. Default MaxConnections/16, at least 1; at most
	// MaxConnections − 1.
	ReservedConnections int
	// MaxConnectionsPerUser bounds the connections one principal (uid)
	// other than root and the daemon's own uid may have open at once.
	// One user can therefore hold at most this share, and locking
	// another user out takes ⌈(MaxConnections − ReservedConnections) /
	// MaxConnectionsPerUser⌉ users at their share. Default
	// MaxConnections/8, at least 1; at most MaxConnections −
	// ReservedConnections.
	MaxConnectionsPerUser int
	// BootstrapTimeout is how long a new connection has to deliver its
	// first message (a client's bootstrap request) in full. A connection
	// that has not is closed and logged. Default 10 s.
	BootstrapTimeout time.Duration
	// MessageTimeout is how long a client has to deliver the rest of a
	// message once its first byte has arrived. Default 30 s.
	MessageTimeout time.Duration
	// WriteTimeout is how long one message to a client may take to send
	// (a client that stops reading its socket). One that takes longer
	// ends the connection, as any failed send does: the client's
	// non-detached guests are killed, and nothing more is sent to it.
	// Default 60 s.
	WriteTimeout time.Duration
}

// DefaultLimits are the limits used for zero fields of Limits.
// ReservedConnections and MaxConnectionsPerUser are left zero: their
// defaults follow from MaxConnections (see WithDefaults).
var DefaultLimits = Limits{
	MaxMessageSize:      32 << 20,
	MaxOutstandingCalls: 4096,
	MaxObjects:          4096,
	MaxGuests:           16384,
	MaxConnections:      1024,
	BootstrapTimeout:    10 * time.Second,
	MessageTimeout:      30 * time.Second,
	WriteTimeout:        60 * time.Second,
}

// WithDefaults returns l with each zero field set to its default, and
// ReservedConnections and MaxConnectionsPerUser brought within their
// bounds: the limits a Server given l enforces.
func (l Limits) WithDefaults() Limits {
	d := DefaultLimits
	if l.MaxMessageSize == 0 {
		l.MaxMessageSize = d.MaxMessageSize
	}
	if l.MaxOutstandingCalls <= 0 {
		l.MaxOutstandingCalls = d.MaxOutstandingCalls
	}
	if l.MaxHeldBytes == 0 {
		l.MaxHeldBytes = 2 * l.MaxMessageSize
	}
	if l.MaxObjects <= 0 {
		l.MaxObjects = d.MaxObjects
	}
	if l.MaxGuests <= 0 {
		l.MaxGuests = d.MaxGuests
	}
	l = l.withConnectionDefaults()
	if l.BootstrapTimeout <= 0 {
		l.BootstrapTimeout = d.BootstrapTimeout
	}
	if l.MessageTimeout <= 0 {
		l.MessageTimeout = d.MessageTimeout
	}
	if l.WriteTimeout <= 0 {
		l.WriteTimeout = d.WriteTimeout
	}
	return l
}

// withConnectionDefaults fills MaxConnections, ReservedConnections and
// MaxConnectionsPerUser, and brings the last two within their bounds.
func (l Limits) withConnectionDefaults() Limits {
	if l.MaxConnections <= 0 {
		l.MaxConnections = DefaultLimits.MaxConnections
	}
	if l.ReservedConnections <= 0 {
		l.ReservedConnections = max(1, l.MaxConnections/16)
	}
	l.ReservedConnections = min(l.ReservedConnections, l.MaxConnections-1)
	if l.MaxConnectionsPerUser <= 0 {
		l.MaxConnectionsPerUser = max(1, l.MaxConnections/8)
	}
	l.MaxConnectionsPerUser = min(l.MaxConnectionsPerUser, l.MaxConnections-l.ReservedConnections)
	return l
}

// errTooManyCalls ends a connection whose client ignores
// MaxOutstandingCalls.
type errTooManyCalls int

func (e errTooManyCalls) Error() string {
	return fmt.Sprintf("client has more than %d calls outstanding on one connection; wait for replies before sending more", int(e))
}

// limitedTransport is the stream transport for one untrusted client: it
// enforces Limits on what the client sends and how long it may stall.
//
// Counting happens on the transport boundary because go-capnp queues every
// received call without bound before any server code sees it.
type limitedTransport struct {
	transport.Transport
	codec *limitedCodec
	lim   Limits
	log   hclog.Logger

	mu   sync.Mutex
	cond *sync.Cond
	// questions are the question ids of calls and bootstraps received that
	// the daemon still keeps: not returned, or not finished, or both.
	questions *rpcquestions.Table
	held      uint64
	closed    bool
	// dropped is set once the daemon has decided to disconnect the
	// client for what it sent: nothing more is sent to it, so that the
	// guests its end kills answer none of its calls (each sees the
	// disconnect).
	dropped atomic.Bool

	// onEnd, if set, runs once when the connection starts to end: a
	// message failed to send or to arrive, or the client aborted.
	onEnd   func()
	endOnce sync.Once
}

// end runs onEnd, once.
func (t *limitedTransport) end() {
	if t.onEnd != nil {
		t.endOnce.Do(t.onEnd)
	}
}

func newLimitedTransport(c net.Conn, lim Limits, log hclog.Logger) *limitedTransport {
	codec := &limitedCodec{conn: c, lim: lim, log: log, firstBy: time.Now().Add(lim.BootstrapTimeout)}
	_ = c.SetReadDeadline(codec.firstBy)
	// The reader is buffered beneath messageReader, so that a message's
	// header and segments come in one read rather than two; what
	// messageReader counts and times is still what the decoder takes.
	codec.dec = capnp.NewDecoder(&messageReader{codec: codec, r: bufio.NewReader(c)})
	codec.dec.MaxMessageSize = lim.MaxMessageSize
	// The encoder writes to the connection itself, so that a message's
	// header and segments go out in one writev (net.Buffers writes them
	// one call each to any other writer); Encode bounds the write.
	codec.enc = capnp.NewEncoder(c)
	t := &limitedTransport{Transport: transport.New(codec), codec: codec, lim: lim, log: log, questions: rpcquestions.New()}
	t.cond = sync.NewCond(&t.mu)
	return t
}

// RecvMessage waits while the connection holds MaxHeldBytes of unfinished
// requests, then reads the next message and accounts for it. A failure,
// which ends the connection, and the client's Abort run onEnd first.
func (t *limitedTransport) RecvMessage() (transport.IncomingMessage, error) {
	in, err := t.recv()
	if err != nil || in.Message().Which() == rpccp.Message_Which_abort {
		t.end()
	}
	return in, err
}

func (t *limitedTransport) recv() (transport.IncomingMessage, error) {
	t.mu.Lock()
	for t.held >= t.lim.MaxHeldBytes && !t.closed {
		t.cond.Wait()
	}
	closed := t.closed
	t.mu.Unlock()
	if closed {
		return nil, net.ErrClosed
	}
	in, err := t.Transport.RecvMessage()
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || errors.Is(err, syscall.ECONNRESET) {
			return nil, err // the client went away: not its fault, nor ours
		}
		// Logged before anything can end the connection: dropped
		// fails the next send, which ends it.
		var silent errNoFirstMessage
		if errors.As(err, &silent) {
			t.log.Warn("disconnecting client", "error", silent.Error())
		} else {
			t.log.Warn("disconnecting client: it sent a bad or oversized message, or stalled in one", "error", err)
		}
		t.dropped.Store(true)
		return nil, err
	}
	size, err := t.admit(in.Message())
	if err != nil {
		in.Release()
		t.log.Warn("disconnecting client", "error", err.Error())
		t.dropped.Store(true)
		return nil, err
	}
	t.mu.Lock()
	t.held += size
	t.mu.Unlock()
	return &heldMessage{IncomingMessage: in, t: t, size: size}, nil
}

// importCost is what the daemon is counted for each capability a
// client's message carries: an import, some 400 bytes of the daemon's
// memory for a descriptor of 16 bytes in the message.
const importCost = 512

// admit checks a message the client sent against the protocol's rules
// (track) and returns what it counts against the connection's limits: its
// bytes, and importCost for each capability it carries. A message that
// counts more than MaxMessageSize ends the connection, as a larger one
// does.
func (t *limitedTransport) admit(m rpccp.Message) (uint64, error) {
	if err := t.track(m); err != nil {
		return 0, err
	}
	n := capsCarried(m)
	size := t.codec.lastSize + uint64(n)*importCost
	if size > t.lim.MaxMessageSize {
		return 0, fmt.Errorf("client sent a message carrying %d capabilities, which cost the daemon as much as %d bytes, more than the largest message it takes (%d bytes); pass fewer capabilities in one call", n, size, t.lim.MaxMessageSize)
	}
	return size, nil
}

// capsCarried is the number of capabilities a call's parameters or a
// return's results carry; other messages carry at most one.
func capsCarried(m rpccp.Message) int {
	var p rpccp.Payload
	var err error
	switch m.Which() {
	case rpccp.Message_Which_call:
		c, cerr := m.Call()
		if cerr != nil {
			return 0
		}
		p, err = c.Params()
	case rpccp.Message_Which_return:
		r, rerr := m.Return()
		if rerr != nil || r.Which() != rpccp.Return_Which_results {
			return 0
		}
		p, err = r.Results()
	default:
		return 0
	}
	if err != nil {
		return 0
	}
	ct, err := p.CapTable()
	if err != nil {
		return 0
	}
	return ct.Len()
}

// track keeps the set of question ids the client has open and refuses a
// message that breaks the protocol's rules for them: a call or bootstrap
// that reuses an open question id, a call pipelined on a question that is
// not open (or on its own id), and more than MaxOutstandingCalls open
// questions. go-capnp's handling of such messages is not robust (a call
// pipelined on its own question id crashes it), so they never reach it.
func (t *limitedTransport) track(m rpccp.Message) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch m.Which() {
	case rpccp.Message_Which_call:
		call, err := m.Call()
		if err != nil {
			return nil // go-capnp reports the malformed call
		}
		id := call.QuestionId()
		if tgt, err := call.Target(); err == nil && tgt.Which() == rpccp.MessageTarget_Which_promisedAnswer {
			pa, err := tgt.PromisedAnswer()
			if err == nil {
				q := pa.QuestionId()
				if !t.questions.CanPipelineOn(q, id) {
					return errProtocol(fmt.Sprintf("call %d is pipelined on question %d, which is not an open question of this connection", id, q))
				}
			}
		}
		return t.open(id)
	case rpccp.Message_Which_bootstrap:
		b, err := m.Bootstrap()
		if err != nil {
			return nil
		}
		return t.open(b.QuestionId())
	case rpccp.Message_Which_finish:
		if f, err := m.Finish(); err == nil {
			// Forgotten if the daemon has returned it, and otherwise
			// counted until it does.
			t.questions.Finished(f.QuestionId())
		}
	}
	return nil
}

// open records a new question of the client. Caller holds t.mu.
func (t *limitedTransport) open(id uint32) error {
	if t.questions.IsOpen(id) {
		return errProtocol(fmt.Sprintf("question id %d reused before the client finished it and the daemon returned it", id))
	}
	if t.questions.Len() >= t.lim.MaxOutstandingCalls {
		return errTooManyCalls(t.lim.MaxOutstandingCalls)
	}
	t.questions.Open(id)
	return nil
}

// returned records the daemon's Return of question id: the daemon forgets
// it if the client has finished it.
func (t *limitedTransport) returned(id uint32) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.questions.Returned(id)
}

// NewMessage returns an outgoing message that, if it is the Return of
// one of the client's questions, records it returned once sent.
func (t *limitedTransport) NewMessage() (transport.OutgoingMessage, error) {
	om, err := t.Transport.NewMessage()
	if err != nil {
		return nil, err
	}
	return &returnWatcher{OutgoingMessage: om, t: t}, nil
}

type returnWatcher struct {
	transport.OutgoingMessage
	t *limitedTransport
}

func (m *returnWatcher) Send() error {
	if m.t.dropped.Load() {
		return net.ErrClosed
	}
	if msg := m.Message(); msg.Which() == rpccp.Message_Which_return {
		if ret, err := msg.Return(); err == nil {
			m.t.returned(ret.AnswerId())
		}
	}
	err := m.OutgoingMessage.Send()
	if err != nil {
		m.t.end() // go-capnp ends the connection after a failed send
	}
	return err
}

// errProtocol ends a connection whose client broke the RPC protocol.
type errProtocol string

func (e errProtocol) Error() string {
	return "client broke the Cap'n Proto RPC protocol: " + string(e) + "; this is a bug in the client"
}

func (t *limitedTransport) release(size uint64) {
	t.mu.Lock()
	t.held -= size
	t.mu.Unlock()
	t.cond.Broadcast()
}

func (t *limitedTransport) Close() error {
	t.mu.Lock()
	t.closed = true
	t.mu.Unlock()
	t.cond.Broadcast()
	return t.Transport.Close()
}

type heldMessage struct {
	transport.IncomingMessage
	t    *limitedTransport
	size uint64
	once sync.Once
}

func (m *heldMessage) Release() {
	m.once.Do(func() {
		m.IncomingMessage.Release()
		m.t.release(m.size)
	})
}

// limitedCodec frames messages with go-capnp's decoder and encoder, and
// bounds how long the client may take: its first message must have
// arrived in full BootstrapTimeout after the connection was accepted, and
// every message MessageTimeout after its first byte.
type limitedCodec struct {
	conn  net.Conn
	lim   Limits
	log   hclog.Logger
	dec   *capnp.Decoder
	enc   *capnp.Encoder
	encMu sync.Mutex
	// encErr is the failure of a write, under encMu: the message may
	// have gone in part, so nothing more is written.
	encErr error
	// The fields below belong to the reader goroutine.
	firstBy  time.Time // when the first message is due; zero once it has arrived
	inMsg    bool      // a message has begun arriving
	lastSize uint64    // bytes of the last decoded message
	read     uint64
}

// errNoFirstMessage ends a connection that did not deliver its first
// message within BootstrapTimeout of being accepted.
type errNoFirstMessage time.Duration

func (e errNoFirstMessage) Error() string {
	return fmt.Sprintf("client sent no complete message within %s of connecting (the bootstrap timeout)", time.Duration(e))
}

func (c *limitedCodec) Decode() (*capnp.Message, error) {
	c.inMsg, c.read = false, 0
	msg, err := c.dec.Decode()
	first := !c.firstBy.IsZero()
	if c.inMsg || first {
		_ = c.conn.SetReadDeadline(time.Time{})
	}
	c.lastSize = c.read
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			if first && !time.Now().Before(c.firstBy) {
				return nil, errNoFirstMessage(c.lim.BootstrapTimeout)
			}
			return nil, fmt.Errorf("client took longer than %s to send one message", c.lim.MessageTimeout)
		}
		return nil, err
	}
	c.firstBy = time.Time{}
	return msg, nil
}

// Encode writes m, bounded by the write timeout: a client that does not
// read its socket for that long is cut off. A write that fails ends the
// connection (go-capnp's sender stops at a failed send, which shuts the
// connection down: its non-detached guests are killed), and every later
// Encode fails with the same error, writing nothing after what may be
// part of a message.
func (c *limitedCodec) Encode(m *capnp.Message) error {
	c.encMu.Lock()
	defer c.encMu.Unlock()
	if c.encErr != nil {
		return c.encErr
	}
	_ = c.conn.SetWriteDeadline(time.Now().Add(c.lim.WriteTimeout))
	err := c.enc.Encode(m)
	if err == nil {
		return nil
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		err = fmt.Errorf("client did not read its socket for %s (serve --write-timeout): %w", c.lim.WriteTimeout, err)
		c.log.Warn("disconnecting client", "error", err.Error())
	}
	c.encErr = err
	return err
}

func (c *limitedCodec) Close() error { return c.conn.Close() }

// messageReader reads from the connection until a message begins with
// no deadline but the first message's (an idle client that has spoken
// costs nothing), then with the earlier of that and MessageTimeout.
type messageReader struct {
	codec *limitedCodec
	r     *bufio.Reader // over codec.conn
}

func (r *messageReader) Read(p []byte) (int, error) {
	c := r.codec
	n, err := r.r.Read(p)
	if n > 0 {
		c.read += uint64(n)
		if !c.inMsg {
			c.inMsg = true
			d := time.Now().Add(c.lim.MessageTimeout)
			if !c.firstBy.IsZero() && c.firstBy.Before(d) {
				d = c.firstBy
			}
			_ = c.conn.SetReadDeadline(d)
		}
	}
	return n, err
}
