package daemon

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/sandboxd/sandboxd/abi/argdata"
	"github.com/sandboxd/sandboxd/caps"
)

// A guest becomes a Cap'n Proto peer by asking for a connection on its
// supervisor channel: it sends the datagram {"request": "rpc"} (an argdata
// map) and receives, like a grant, a notice {"event": "rpc", "name": "rpc",
// …} carrying the guest's end of a new stream channel. The daemon serves
// its PeerServer on the other end. Nothing runs for a guest that never
// asks: the request is answered on the sending guest's own call
// (caps.Channel.OnArrival), or, when it had to wait for room, on the
// guest's call that made the room (caps.Channel.OnPeerRecv), with no
// goroutine per guest.

// PeerServer serves the guest-facing Cap'n Proto API (daemon/guestrpc) on
// the connections guests ask for.
type PeerServer interface {
	// Serve starts serving g on conn, the daemon's end of g's new RPC
	// channel, and returns at once. Closing conn ends the connection; it
	// is closed for the server when g exits.
	Serve(g *Guest, conn io.ReadWriteCloser)
}

// SetPeerServer makes p answer guests' requests for a Cap'n Proto
// connection; nil refuses them (the guest receives an error notice).
func (s *Supervisor) SetPeerServer(p PeerServer) {
	s.peerMu.Lock()
	s.peers = p
	s.peerMu.Unlock()
}

func (s *Supervisor) peerServer() PeerServer {
	s.peerMu.Lock()
	defer s.peerMu.Unlock()
	return s.peers
}

// maxRequest bounds the request datagrams the daemon reads from a
// supervisor channel; a longer one is truncated and refused.
const maxRequest = 256

// rpcEvent is the event of the notice that answers a request for a
// connection with the guest's end of it.
const rpcEvent = "rpc"

// maxAnswer bounds the notice that answers a request: an "rpc" notice
// takes about 100 bytes, and sendError cuts a refusal's text to fit.
const maxAnswer = 2 << 10

// A request is answered once, in order, always: the daemon takes it from
// the channel only when the guest's end has room for its answer (one
// datagram of maxAnswer bytes with a handle), and otherwise leaves it
// there, unread, until the guest reads. Grants and delegations leave room
// for an answer (send), so the answer to a request taken, which goes
// after the check, always fits. Requests that wait fill the guest's
// sending direction; a send of one more then fails (EAGAIN) before it is
// a request, so nothing the guest asked for goes unanswered.

// onSupervisorRequest answers what the guest sent on its supervisor
// channel, one datagram at a time, while the guest's end has room for an
// answer. It runs on the guest's sock_send (a request arrived) and on its
// sock_recv of the channel (room was made), one call at a time.
func (g *Guest) onSupervisorRequest() {
	g.answering.Lock()
	defer g.answering.Unlock()
	var buf []byte
	for g.supervisor.Pending() > 0 && g.supervisor.HasRoom(1, maxAnswer, 1) {
		if buf == nil {
			buf = make([]byte, maxRequest)
		}
		// Handles attached to a request are not taken (maxCaps 0): the
		// channel closes them. An empty datagram is a request too (not
		// argdata), answered like any other.
		n, _, fl, err := g.supervisor.Recv([][]byte{buf}, 0, false)
		if err != nil {
			return
		}
		if err := g.answerRequest(buf[:n], fl); err != nil {
			// Debug, not Warn: the guest is told, and a guest sending
			// junk in a loop must not fill the daemon's log.
			g.log.Debug("supervisor channel request refused", "error", err)
			g.sendError(err)
		}
	}
}

// answerRequest carries out one request.
func (g *Guest) answerRequest(b []byte, fl caps.RecvFlags) error {
	if fl&caps.RecvDataTruncated != 0 {
		return fmt.Errorf("request longer than %d bytes", maxRequest)
	}
	v, err := argdata.Decode(b)
	if err != nil {
		return fmt.Errorf("request is not argdata: %w", err)
	}
	req, _ := v.Get("request")
	what, _ := req.Str()
	if what != "rpc" {
		return fmt.Errorf("unknown request %q: the supervisor channel takes {\"request\": \"rpc\"}", what)
	}
	return g.openPeerConn()
}

// errPeerLive refuses a second connection while one is open.
var errPeerLive = errors.New("the guest already has a Cap'n Proto connection open: close it before asking for another")

// openPeerConn gives the guest a new RPC channel end on its supervisor
// channel and serves the daemon's end.
func (g *Guest) openPeerConn() error {
	p := g.s.peerServer()
	if p == nil {
		return errors.New("this supervisor serves no Cap'n Proto to guests (embedded mode): launch the guest through sandboxd serve")
	}
	mine, theirs := caps.NewChannelPair(false, "rpc "+g.id)
	g.mu.Lock()
	if g.peer != nil {
		g.mu.Unlock()
		return errPeerLive
	}
	g.peer = mine
	g.mu.Unlock()
	base, inh := caps.GrantRights(caps.KindChannel, false)
	c := g.s.k.Mint(g.holder, theirs, base, inh, "rpc", "supervisor request")
	c.SetSource(guestOwnEnd{})
	// The connection is over for the guest once its end is closed: by
	// the guest, at its exit, or by sock_recv when the guest's handle
	// table had no room for it. It may ask for another then, before the
	// server has read to the end of this one.
	ended := func() { g.endPeer(mine) }
	mine.OnPeerClose(func(bool) { ended() })
	conn := newChanConn(mine, ended)
	if err := g.send(rpcEvent, c); err != nil {
		_ = conn.Close()
		return err
	}
	p.Serve(g, conn)
	return nil
}

// endPeer forgets the guest's connection whose daemon end is mine, if it
// is still the guest's connection.
func (g *Guest) endPeer(mine *caps.Channel) {
	g.mu.Lock()
	if g.peer == mine {
		g.peer = nil
	}
	g.mu.Unlock()
}

// sendError tells the guest why its request failed:
// {"event": "error", "error": TEXT}, with no handle. TEXT is cut to keep
// the notice within maxAnswer.
func (g *Guest) sendError(err error) {
	text := err.Error()
	if len(text) > maxAnswer-64 {
		text = strings.ToValidUTF8(text[:maxAnswer-64], "") + "…"
	}
	notice := argdata.StringMap(map[string]argdata.Value{
		"event": argdata.String("error"),
		"error": argdata.String(text),
	}).Encode()
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.exitedLocked() {
		return
	}
	// The room was there when the request was taken, and the daemon's
	// other notices leave it: only a guest that has closed its end fails.
	if _, err := g.supervisor.Send([][]byte{notice}, nil); err != nil {
		g.log.Debug("refusal of a supervisor channel request not sent", "error", err)
	}
}

// chanConn is the daemon's end of a channel as a blocking
// io.ReadWriteCloser, for a Cap'n Proto transport: reads and writes wait
// on the channel's readiness (a parked goroutine, no thread) until it is
// closed.
type chanConn struct {
	ch      *caps.Channel
	once    sync.Once
	closed  chan struct{}
	onClose func()
}

func newChanConn(ch *caps.Channel, onClose func()) *chanConn {
	return &chanConn{ch: ch, closed: make(chan struct{}), onClose: onClose}
}

// wait blocks until the channel is ready for ev or the conn is closed.
func (c *chanConn) wait(ev caps.Events) error {
	w := caps.NewWaiter()
	ready, cancel := c.ch.Poll(ev, w)
	defer cancel()
	if ready != 0 {
		return nil
	}
	select {
	case <-w.C():
		return nil
	case <-c.closed:
		return io.ErrClosedPipe
	}
}

func (c *chanConn) Read(p []byte) (int, error) {
	for {
		n, _, _, err := c.ch.Recv([][]byte{p}, 0, false)
		switch {
		case err == nil && n == 0 && len(p) > 0:
			return 0, io.EOF
		case !errors.Is(err, caps.EAGAIN):
			return n, err
		}
		if err := c.wait(caps.EventRead); err != nil {
			return 0, err
		}
	}
}

func (c *chanConn) Write(p []byte) (int, error) {
	done := 0
	for done < len(p) {
		n, err := c.ch.Send([][]byte{p[done:]}, nil)
		done += n
		if err != nil && !errors.Is(err, caps.EAGAIN) {
			return done, err
		}
		if errors.Is(err, caps.EAGAIN) {
			if err := c.wait(caps.EventWrite); err != nil {
				return done, err
			}
		}
	}
	return done, nil
}

// Close closes the daemon's end (the guest reads end of file) and ends
// any read or write waiting on it.
func (c *chanConn) Close() error {
	c.once.Do(func() {
		close(c.closed)
		_ = c.ch.Close()
		if c.onClose != nil {
			c.onClose()
		}
	})
	return nil
}

// Holder is who holds the guest's capabilities, in the kernel's graph.
func (g *Guest) Holder() *caps.Holder { return g.holder }

// Supervisor returns the supervisor that launched the guest.
func (g *Guest) Supervisor() *Supervisor { return g.s }

// Handle returns the capability behind the guest's fd, or EBADF.
func (g *Guest) Handle(fd uint32) (*caps.Cap, error) { return g.ag.Table().Get(fd) }

// Install puts c, which the guest must hold, in the guest's handle table
// at the lowest free fd. It fails with EMFILE when the table is full and
// EBADF once the guest has exited; the caller then still owns c.
func (g *Guest) Install(c *caps.Cap) (uint32, error) {
	if c.Holder() != g.holder {
		return 0, fmt.Errorf("capability %s is not held by guest %s", c.ID(), g.id)
	}
	return g.ag.Table().Insert(c)
}

// ChannelHandle returns a handle the guest holds on the channel named
// name (a `chan:NAME` grant, or a copy of one that reached it), not
// revoked, whose inheriting rights include inheriting: the one at the
// lowest fd if several do, nil if none does. A service the guest publishes
// on the channel is derived from it (daemon/guestrpc), so revoking the
// handle withdraws the service.
func (g *Guest) ChannelHandle(name string, inheriting caps.Rights) *caps.Cap {
	for _, e := range g.ag.Table().Entries() {
		c := e.Cap
		if c.Kind() != caps.KindChannel || c.Revoked() {
			continue
		}
		src, ok := c.Root().Source().(grantSource)
		if _, inh := c.Rights(); ok && src.kind == "chan" && src.name == name && inheriting.Subset(inh) {
			return c
		}
	}
	return nil
}
