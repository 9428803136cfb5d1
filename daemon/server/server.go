package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/user"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"capnproto.org/go/capnp/v3"
	"capnproto.org/go/capnp/v3/rpc"
	"github.com/hashicorp/go-hclog"
	"github.com/sandboxd/sandboxd/caps"
	"github.com/sandboxd/sandboxd/daemon"
	"github.com/sandboxd/sandboxd/schemas"
)

// Options configures a Server.
type Options struct {
	// Logger receives structured logs; nil discards them.
	Logger hclog.Logger
	// Limits bound what each client connection may cost (zero fields take
	// DefaultLimits).
	Limits Limits
	// LogBytes is how much recent output the daemon keeps per guest for
	// Guest.logs (DefaultLogBytes when 0).
	LogBytes uint64
}

// Server serves the control API (schemas/sandboxd.capnp) for a
// daemon.Supervisor to clients on unix sockets.
//
// Every connection acts for one principal: the unix user of the process
// that connected, read from the socket (SO_PEERCRED) when the connection
// is accepted. Nothing a client sends can change it. A principal other
// than root reaches only the guests it launched and the capabilities that
// descend from ones it holds or granted.
//
// The server is the only untrusted-input boundary of the daemon: it
// bounds each connection (Limits), validates every request, and cleans up
// after a client that disappears mid-call: its non-detached guests are
// killed, the capabilities it held are closed, and no goroutine of the
// connection outlives it.
type Server struct {
	sup      *daemon.Supervisor
	log      hclog.Logger
	lim      Limits
	logBytes uint64
	euid     uint32

	// ctx ends with Close; attached output and follows stop with it.
	ctx    context.Context
	cancel context.CancelFunc

	connID atomic.Uint64
	wg     sync.WaitGroup // one per connection
	// watching counts the watches run on goroutines of their own
	// (goWatch), added to only under mu while not closed.
	watching sync.WaitGroup

	mu        sync.Mutex
	closed    bool
	listeners map[net.Listener]struct{}
	conns     map[*serverConn]struct{}
	userConns map[uint32]int // open connections of unprivileged principals, by uid
	userTotal int            // their sum
	records   map[string]*guestRecord
	names     map[string]string   // guest name → id ("" while its launch is under way)
	running   map[uint32]int      // running guests launched through the server, by principal uid
	exited    map[uint32][]string // ids of exited guests whose records are kept, by principal (uid), oldest first
	// lookupUser asks the system's user database about a uid (a variable
	// for tests).
	lookupUser func(uid uint32) userInfo
}

// New returns a Server for sup. The caller still owns sup: close the
// Server first, then the Supervisor.
func New(sup *daemon.Supervisor, opts Options) *Server {
	log := opts.Logger
	if log == nil {
		log = hclog.NewNullLogger()
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Server{
		sup: sup, log: log, lim: opts.Limits.WithDefaults(), logBytes: opts.LogBytes,
		euid: uint32(os.Geteuid()), ctx: ctx, cancel: cancel,
		listeners: map[net.Listener]struct{}{}, conns: map[*serverConn]struct{}{}, userConns: map[uint32]int{},
		records: map[string]*guestRecord{}, names: map[string]string{},
		exited:     map[uint32][]string{},
		lookupUser: lookupUser,
		running:    map[uint32]int{},
	}
}

// ErrClosed is returned by Serve after Close.
var ErrClosed = errors.New("sandboxd server closed")

// Serve accepts connections on l until Close. It returns ErrClosed
// after Close, or the error that stopped accepting.
func (s *Server) Serve(l *net.UnixListener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	s.listeners[l] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, l)
		s.mu.Unlock()
	}()
	// No grant connects a guest to the socket it is served on: the
	// connection would be the daemon's own, and act with its credentials.
	if path := l.Addr().String(); path != "" && path[0] != '@' {
		if release, err := caps.ProtectSocket(path); err == nil {
			defer release()
		} else {
			s.log.Warn("cannot protect the control socket from grants: a unix sock grant could reach it", "socket", path, "error", err)
		}
	}
	var backoff time.Duration
	for {
		c, err := l.AcceptUnix()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed {
				return ErrClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
				// Out of descriptors: back off rather than spin, as
				// net/http does.
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.log.Warn("accept failed; retrying", "error", err, "backoff", backoff)
				time.Sleep(backoff)
				continue
			}
			return fmt.Errorf("accepting connections: %w", err)
		}
		backoff = 0
		s.ServeConn(c)
	}
}

// ServeConn serves one client connection in the background; the Server
// owns c from then on.
func (s *Server) ServeConn(c *net.UnixConn) {
	cred, err := peerCredentials(c)
	if err != nil {
		s.log.Error("rejecting connection: cannot read peer credentials", "error", err)
		c.Close()
		return
	}
	// Looked up at each connection and never remembered: a user removed
	// from a group since an earlier connection no longer acts with it
	// (nor is a grant decided on a stale answer that policy explain,
	// which looks the user up afresh, would contradict).
	u := s.lookupUser(cred.Uid)
	p := daemon.Principal{UID: cred.Uid, GID: cred.Gid, Name: u.name, Groups: u.groups}
	id := s.connID.Add(1)
	sc := &serverConn{
		s:         s,
		principal: p,
		auth:      NewAuthority(p, s.euid),
		pid:       cred.Pid,
		holder:    daemon.ClientHolder("conn-"+strconv.FormatUint(id, 10), p),
		output:    newOutputLimiter(connOutputWindow),
	}
	sc.log = s.log.Named("conn").With("conn", sc.holder.ID, "uid", p.UID, "pid", cred.Pid)

	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		c.Close()
		return
	}
	if err := s.admitLocked(p.UID); err != nil {
		s.mu.Unlock()
		s.log.Warn("rejecting connection: too many connections", "reason", err.Error(), "uid", p.UID, "pid", cred.Pid)
		c.Close()
		return
	}
	s.conns[sc] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()

	sc.log.Debug("client connected")
	boot := schemas.Supervisor_ServerToClient(&supervisorServer{c: sc})
	tr := newLimitedTransport(c, s.lim, sc.log)
	tr.onEnd = sc.killAttached
	conn := rpc.NewConn(tr, &rpc.Options{
		BootstrapClient: capnp.Client(boot),
		Logger:          rpcLogger{sc.log},
		// Network stays nil: level-3 messages from a peer must not reach
		// go-capnp's unfinished three-party code.
	})
	// Close collects the connections under s.mu: sc.conn is set under it,
	// and a connection made while the server closed is closed here.
	s.mu.Lock()
	sc.conn = conn
	closing := s.closed
	s.mu.Unlock()
	if closing {
		conn.Close()
	}
	go func() {
		defer s.wg.Done()
		<-conn.Done()
		s.mu.Lock()
		delete(s.conns, sc)
		s.dischargeLocked(p.UID)
		s.mu.Unlock()
		sc.log.Debug("client disconnected")
	}()
}

// privileged reports whether uid is root or the daemon's own user: the
// principals for whom ReservedConnections are kept and whom
// MaxConnectionsPerUser does not bound.
func (s *Server) privileged(uid uint32) bool { return uid == 0 || uid == s.euid }

// admitLocked counts a new connection of uid, or returns the limit that
// refuses it. It keeps three invariants: at most MaxConnections are
// open; unprivileged principals together have at most MaxConnections −
// ReservedConnections of them; and each has at most
// MaxConnectionsPerUser. Hence only privileged principals can keep a
// privileged one out, and only other users' shares can keep a user out.
// Caller holds s.mu.
func (s *Server) admitLocked(uid uint32) error {
	lim := s.lim
	if len(s.conns) >= lim.MaxConnections {
		return fmt.Errorf("%d connections are open, the limit (--max-conns %d)", len(s.conns), lim.MaxConnections)
	}
	if s.privileged(uid) {
		return nil
	}
	if n := s.userConns[uid]; n >= lim.MaxConnectionsPerUser {
		return fmt.Errorf("uid %d has %d connections open, its share (--max-conns-per-user %d)", uid, n, lim.MaxConnectionsPerUser)
	}
	if shared := lim.MaxConnections - lim.ReservedConnections; s.userTotal >= shared {
		return fmt.Errorf("users other than root and the daemon's have %d connections open, all but the %d reserved for root and the daemon's user (--max-conns %d, --reserved-conns %d)",
			s.userTotal, lim.ReservedConnections, lim.MaxConnections, lim.ReservedConnections)
	}
	s.userConns[uid]++
	s.userTotal++
	return nil
}

// dischargeLocked uncounts a connection of uid that admitLocked counted.
// Caller holds s.mu.
func (s *Server) dischargeLocked(uid uint32) {
	if s.privileged(uid) {
		return
	}
	s.userTotal--
	s.userConns[uid]--
	if s.userConns[uid] == 0 {
		delete(s.userConns, uid)
	}
}

// rpcLogger keeps go-capnp's own reports at debug level: they describe a
// client's protocol errors and disconnects, which are the client's
// business, not the operator's.
type rpcLogger struct{ l hclog.Logger }

func (r rpcLogger) Debug(msg string, args ...any) { r.l.Trace(msg, args...) }
func (r rpcLogger) Info(msg string, args ...any)  { r.l.Debug(msg, args...) }
func (r rpcLogger) Warn(msg string, args ...any)  { r.l.Debug(msg, args...) }
func (r rpcLogger) Error(msg string, args ...any) { r.l.Debug(msg, args...) }

// Close stops accepting, disconnects every client (killing the guests
// they launched without detach), stops attached output, and waits until
// ctx is done for the connections to end. It does not close the
// Supervisor: detached guests keep running until it is closed.
func (s *Server) Close(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	for l := range s.listeners {
		l.Close()
	}
	conns := make([]*rpc.Conn, 0, len(s.conns))
	for c := range s.conns {
		if c.conn != nil { // not yet: ServeConn closes it when it sets it
			conns = append(conns, c.conn)
		}
	}
	s.mu.Unlock()
	s.cancel()
	// A connection's Close returns once every call it serves has: the
	// connections close at once, and the wait for them is ctx's.
	var closing sync.WaitGroup
	for _, c := range conns {
		closing.Add(1)
		go func() {
			defer closing.Done()
			c.Close()
		}()
	}
	done := make(chan struct{})
	go func() {
		closing.Wait()
		s.wg.Wait()
		s.watching.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("closing server: connections still open: %w", context.Cause(ctx))
	}
}

// userInfo is a uid's name and supplementary groups, as the system's
// user database gives them (empty when it does not know the uid).
type userInfo struct {
	name   string
	groups []uint32
}

// lookupUser is what the system's user database says of uid: its name
// and groups, or nothing when it does not know the uid.
func lookupUser(uid uint32) userInfo {
	var u userInfo
	if su, err := user.LookupId(strconv.FormatUint(uint64(uid), 10)); err == nil {
		u.name = su.Username
		gids, _ := su.GroupIds() // unknown groups: none besides the primary
		for _, g := range gids {
			if n, err := strconv.ParseUint(g, 10, 32); err == nil {
				u.groups = append(u.groups, uint32(n))
			}
		}
	}
	return u
}

// serverConn is one client connection and the principal it acts for.
type serverConn struct {
	s         *Server
	conn      *rpc.Conn // set under s.mu, once the connection serves
	principal daemon.Principal
	auth      *Authority // what principal may do
	pid       int32
	holder    *caps.Holder // holds the capabilities this client mints or restricts
	log       hclog.Logger
	objects   atomic.Int64 // Guest and Cap objects handed out and not released
	// output bounds the guest output in flight to the client on all its
	// sinks together (attached launches, logs).
	output *outputLimiter
	// owned are the Guest objects of the guests this client launched and
	// did not detach, which the connection's end kills (killAttached).
	ownedMu sync.Mutex
	owned   map[*guestServer]struct{}
}

// own records the owning Guest object of a guest launched without detach.
func (c *serverConn) own(s *guestServer) {
	c.ownedMu.Lock()
	defer c.ownedMu.Unlock()
	if c.owned == nil {
		c.owned = make(map[*guestServer]struct{})
	}
	c.owned[s] = struct{}{}
}

// disown forgets an owning Guest object the client has released.
func (c *serverConn) disown(s *guestServer) {
	c.ownedMu.Lock()
	defer c.ownedMu.Unlock()
	delete(c.owned, s)
}

// killAttached kills the guests the client launched without detach, as
// the connection starts to end (its transport failed, or the client
// aborted). go-capnp kills them only once it releases their Guest objects,
// after it has failed the calls in flight to the client: meanwhile the
// guests' output would go to the log alone, and a guest could write on
// and exit as if its client had taken everything.
func (c *serverConn) killAttached() {
	c.ownedMu.Lock()
	owned := make([]*guestServer, 0, len(c.owned))
	for s := range c.owned {
		owned = append(owned, s)
	}
	c.ownedMu.Unlock()
	for _, s := range owned {
		s.killForClient()
	}
}

// errTooManyObjects is returned when a client holds MaxObjects objects.
func (c *serverConn) errTooManyObjects() error {
	return fmt.Errorf("this connection already holds %d Guest and Cap objects (the limit): release ones you no longer need", c.s.lim.MaxObjects)
}

// takeObject reserves room for one more object handed to the client.
func (c *serverConn) takeObject() error {
	if c.objects.Add(1) > int64(c.s.lim.MaxObjects) {
		c.objects.Add(-1)
		return c.errTooManyObjects()
	}
	return nil
}

func (c *serverConn) dropObject() { c.objects.Add(-1) }

// roomForObject reports, before a call does the work of making an object
// (minting, restricting, launching), whether the client may hold one
// more. It reserves nothing: the object takes its room when it is handed
// out (takeObject), which is what bounds them; a call that finds no room
// then undoes its work.
func (c *serverConn) roomForObject() error {
	if c.objects.Load() >= int64(c.s.lim.MaxObjects) {
		return c.errTooManyObjects()
	}
	return nil
}

// lookupOwnedCap finds a capability by id that the principal may act on.
// A capability it may not reach is reported exactly like one that does
// not exist; one revoked, to a principal it was revoked from
// (Authority.HearsOf), as revoked, when and why, also once its holder is
// forgotten.
func (c *serverConn) lookupOwnedCap(id string) (*caps.Cap, error) {
	x, ok := c.s.sup.Kernel().Lookup(caps.ID(id))
	if !ok || !c.auth.OwnsCap(x) {
		if n, was := c.s.sup.WasRevoked(caps.ID(id)); was && c.auth.HearsOf(n) {
			return nil, fmt.Errorf("capability %s was %s: it can no longer be used or passed on", id, revokedWhen(caps.ID(id), n))
		}
		return nil, fmt.Errorf("no capability %s that %s may use: check the id with `sandboxd caps GUEST`", id, c.principal)
	}
	return x, nil
}
