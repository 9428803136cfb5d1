// Package guestrpc is the daemon's guest-facing Cap'n Proto server: the
// GuestSupervisor a guest reaches on the connection it asks for on its
// supervisor channel (schemas/guest.capnp, docs/PEERS.md), and the
// mediation of every capability that crosses between guests.
//
// Guests never talk to each other directly. Each guest has one connection
// to the daemon; a service one guest publishes or passes in a call is an
// object it serves on its own connection, and every other guest reaches
// it through a forwarder the daemon serves on theirs. Each forwarder, and
// each handle wrapped as a GuestHandle, stands for one capability of the
// kernel's graph, derived for its holder from the giver's (edge
// "delegate", decided by the kernel's gate), so that
//
//   - rights never widen, and a policy denial fails the call with an
//     exception that names the rule;
//   - revoking the giver's capability revokes the receiver's: its calls
//     fail at once, calls in flight through it end, and a handle installed
//     from it answers ENOTCAPABLE;
//   - when a serving guest exits, its services are revoked, so calls to
//     them fail with an exception saying so instead of waiting;
//   - a published service is derived from the publisher's handle on the
//     channel: revoking that handle withdraws the service and revokes
//     every copy obtained from it, while a copy already obtained does not
//     depend on its holder's own channel handle.
//
// Each connection is bounded (Limits): message size, calls in flight and
// not finished, objects exported (and capabilities in one message), and
// calls forwarded to the guest that it has not returned.
package guestrpc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	capnp "capnproto.org/go/capnp/v3"
	"capnproto.org/go/capnp/v3/rpc"
	"github.com/hashicorp/go-hclog"
	"github.com/sandboxd/sandboxd/caps"
	"github.com/sandboxd/sandboxd/daemon"
	"github.com/sandboxd/sandboxd/schemas/guest"
)

// Options configures a Server.
type Options struct {
	Logger hclog.Logger // nil discards logs
	Limits Limits
}

// Server serves GuestSupervisor to every guest of one Supervisor that asks
// for a connection, and keeps the services guests publish.
type Server struct {
	sup *daemon.Supervisor
	k   *caps.Kernel
	log hclog.Logger
	lim Limits

	mu       sync.Mutex
	services map[serviceKey]*published
	changed  chan struct{} // closed and replaced whenever services change (changedChan)

	// beforeLeave, when not nil, runs before a guest's services are
	// revoked as it leaves: a test's way to hold that moment.
	beforeLeave func()
}

type serviceKey struct{ channel, name string }

// published is one service offered on a channel: the root capability of
// the service (held by the publishing guest, derived from its handle on
// the channel) and who published it.
type published struct {
	root *caps.Cap
	by   *peer
}

// live reports whether the publication still serves: neither revoked nor
// published by a guest that has exited, whose services are revoked once
// the daemon sees its connection end. Until then a publication of an
// exited guest is as withdrawn: an obtain waits for the next one, and the
// name is free, so a guest started again can publish it at once.
func (pub *published) live() bool { return !pub.root.Revoked() && !pub.by.exited() }

// New returns a server for sup's guests. Attach it with
// sup.SetPeerServer.
func New(sup *daemon.Supervisor, opts Options) *Server {
	log := opts.Logger
	if log == nil {
		log = hclog.NewNullLogger()
	}
	return &Server{
		sup: sup, k: sup.Kernel(), log: log, lim: opts.Limits.WithDefaults(),
		services: make(map[serviceKey]*published), changed: make(chan struct{}),
	}
}

// peer is one guest's connection.
type peer struct {
	s    *Server
	g    *daemon.Guest
	log  hclog.Logger
	conn *rpc.Conn
	t    *limitedTransport

	mu      sync.Mutex
	exports int                    // live objects counted against Limits.MaxExports
	roots   map[*caps.Cap]struct{} // services this guest serves to others: revoked when it goes
	gone    bool

	installs installs // GuestHandles installed that hang on services
}

// Serve serves g's GuestSupervisor on conn (daemon.PeerServer).
func (s *Server) Serve(g *daemon.Guest, conn io.ReadWriteCloser) {
	p := &peer{s: s, g: g, log: g.LimitLog(s.log.With("guest", g.ID()))}
	boot := guest.GuestSupervisor_ServerToClient(&supervisorServer{p: p})
	p.t = newLimitedTransport(conn, s.lim, p.log, s.sup.MemoryChargeOf(g.Principal().UID))
	p.conn = rpc.NewConn(p.t, &rpc.Options{
		BootstrapClient: capnp.Client(boot),
		Logger:          rpcLogger{p.log},
		// Network stays nil: level-3 messages from a guest must not reach
		// go-capnp's unfinished three-party code.
	})
	p.log.Debug("guest connected over Cap'n Proto")
	go func() {
		select {
		case <-p.conn.Done():
		case <-g.Done():
		}
		if s.beforeLeave != nil {
			s.beforeLeave()
		}
		p.leave()
	}()
}

// leave ends the guest's connection, revokes every service it served to
// others (their holders' calls fail from now on with an exception that
// says the serving guest is gone) and withdraws what it published.
func (p *peer) leave() {
	why := "the guest " + p.g.ID() + " serving it has exited or closed its connection"
	p.mu.Lock()
	p.gone = true
	roots := p.roots
	p.roots = nil
	for r := range roots {
		r.Resource().(*serviceRes).ended.Store(&why)
	}
	p.mu.Unlock()
	_ = p.conn.Close()
	for r := range roots {
		p.s.k.Revoke(r, why) // withdraws r's publication, if any (serviceRes.Close)
	}
	p.log.Debug("guest's Cap'n Proto connection ended", "services_revoked", len(roots))
}

// exited reports whether the guest has exited.
func (p *peer) exited() bool {
	select {
	case <-p.g.Exited():
		return true
	default:
		return false
	}
}

// reserve counts one more exported object against MaxExports.
func (p *peer) reserve() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.gone {
		return fmt.Errorf("guest %s's connection has ended", p.g.ID())
	}
	if p.exports >= p.s.lim.MaxExports {
		return fmt.Errorf("guest %s already has %d capabilities exported through the daemon (the per-guest limit): release some before passing more", p.g.ID(), p.s.lim.MaxExports)
	}
	p.exports++
	return nil
}

func (p *peer) unreserve() {
	p.mu.Lock()
	p.exports--
	p.mu.Unlock()
}

// addRoot records a service root this guest serves, to revoke when it
// goes. It reports false (and the caller revokes r) if it has gone.
func (p *peer) addRoot(r *caps.Cap) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.gone {
		return false
	}
	if p.roots == nil {
		p.roots = make(map[*caps.Cap]struct{})
	}
	p.roots[r] = struct{}{}
	return true
}

// dropRoot forgets a service root whose resource has been closed.
func (p *peer) dropRoot(r *caps.Cap) {
	p.mu.Lock()
	delete(p.roots, r)
	p.mu.Unlock()
}

// publish offers root under key. It fails if the name is taken, or if
// root has been revoked already (its Close, which withdraws it, may have
// run before it was offered).
func (s *Server) publish(key serviceKey, pub *published) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.services[key]; ok && old.live() {
		return fmt.Errorf("a service named %q is already published on channel %q (by guest %s): choose another name", key.name, key.channel, old.by.g.ID())
	}
	if pub.root.Revoked() {
		return fmt.Errorf("guest %s's handle on chan:%s was revoked as %q was published", pub.by.g.ID(), key.channel, key.name)
	}
	s.services[key] = pub
	s.changedLocked()
	return nil
}

// unpublish withdraws the service published under key if it is still
// root's.
func (s *Server) unpublish(key serviceKey, root *caps.Cap) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if pub, ok := s.services[key]; ok && pub.root == root {
		delete(s.services, key)
		s.changedLocked()
	}
}

// changedLocked wakes whoever waits on changedChan. Called with s.mu held.
func (s *Server) changedLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// changedChan is closed at the next change of the published services,
// or when a guest's connection has ended and its services are revoked.
func (s *Server) changedChan() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}

// errHandleRevoked ends a lookup whose caller's channel handle was
// revoked while it waited.
var errHandleRevoked = errors.New("the channel handle was revoked")

// lookup waits until a live service is published under key, ctx ends
// (an error saying so), or ch, the caller's handle on key's channel, is
// revoked (errHandleRevoked).
func (s *Server) lookup(ctx context.Context, key serviceKey, ch *caps.Cap) (*published, error) {
	for {
		s.mu.Lock()
		pub, ok := s.services[key]
		changed := s.changed
		s.mu.Unlock()
		if ok && pub.live() {
			return pub, nil
		}
		select {
		case <-changed:
		case <-ch.Done():
			return nil, errHandleRevoked
		case <-ctx.Done():
			return nil, fmt.Errorf("no service %q was published on channel %q: %w", key.name, key.channel, context.Cause(ctx))
		}
	}
}

// rpcLogger sends go-capnp's connection logs to hclog at debug level: a
// guest's protocol errors are its own problem, not the operator's.
type rpcLogger struct{ l hclog.Logger }

func (r rpcLogger) Debug(msg string, args ...any) { r.l.Trace(msg, args...) }
func (r rpcLogger) Info(msg string, args ...any)  { r.l.Debug(msg, args...) }
func (r rpcLogger) Warn(msg string, args ...any)  { r.l.Debug(msg, args...) }
func (r rpcLogger) Error(msg string, args ...any) { r.l.Debug(msg, args...) }
