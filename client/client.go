// Package client is the Go client of the sandboxd daemon: it speaks the
// daemon's Cap'n Proto control API (schemas/sandboxd.capnp, docs/API.md)
// over the daemon's unix socket. The sandboxd CLI is built on it, and any
// program can embed it to launch guests, watch them, and hand them
// capabilities.
//
// Everything a Client returns is a capability held on this connection: a
// Guest lets its holder wait for, kill, read and grant to one guest; a Cap
// lets its holder describe, narrow, delegate and revoke one capability.
// Release what you no longer need; closing the Client releases everything.
// A guest launched without Detach is killed when its Guest is released or
// the connection closes.
//
// Every call returns when its context ends, whether or not the daemon
// reads or answers the connection, with an *Error that wraps the
// context's error and says what it gave up waiting for.
//
// The daemon knows the caller by the unix credentials of the connecting
// process (SO_PEERCRED); nothing a client sends can change that.
package client

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"capnproto.org/go/capnp/v3"
	"capnproto.org/go/capnp/v3/rpc"
	"capnproto.org/go/capnp/v3/rpc/transport"
	"github.com/sandboxd/sandboxd/schemas"
	"golang.org/x/sys/unix"
)

// DefaultSocketPath is where the daemon listens unless told otherwise:
// $SANDBOXD_SOCKET if set; /run/sandboxd/sandboxd.sock for root;
// $XDG_RUNTIME_DIR/sandboxd.sock for other users with a runtime
// directory; otherwise sandboxd-UID.sock in the temporary directory.
func DefaultSocketPath() string {
	if p := os.Getenv("SANDBOXD_SOCKET"); p != "" {
		return p
	}
	if os.Geteuid() == 0 {
		return "/run/sandboxd/sandboxd.sock"
	}
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		return filepath.Join(d, "sandboxd.sock")
	}
	return filepath.Join(os.TempDir(), fmt.Sprintf("sandboxd-%d.sock", os.Geteuid()))
}

// DefaultDialTimeout bounds how long Dial waits for the daemon to accept
// the connection and answer its first question, when the context has no
// deadline of its own.
const DefaultDialTimeout = 10 * time.Second

// dialTimeout is DefaultDialTimeout; tests set it lower (SetDialTimeout).
var dialTimeout = DefaultDialTimeout

// Client is a connection to the daemon. It is safe for concurrent use.
type Client struct {
	conn *rpc.Conn
	sup  schemas.Supervisor

	// withOutput are the Guests launched with Stdout or Stderr and not yet
	// released: each holds a sink this process serves, which Close
	// releases.
	mu         sync.Mutex
	withOutput map[*Guest]struct{}
	closed     bool
	// releasing counts the releases of calls left running by
	// Guest.Release and by calls whose context ended first (await,
	// through releaseLater), added to only while not closed: Close waits
	// for them once the connection has ended.
	releasing sync.WaitGroup
}

// Dial connects to the daemon listening at socketPath ("" means
// DefaultSocketPath). It waits for the daemon to accept the connection
// and answer its first question until ctx's deadline, or for
// DefaultDialTimeout if ctx has none: a daemon that accepts and never
// answers (stopped, or stuck) fails the dial, saying so. The deadline
// bounds the dial alone: the Client outlives it.
func Dial(ctx context.Context, socketPath string) (*Client, error) {
	return DialTimeout(ctx, socketPath, 0)
}

// DialTimeout is Dial waiting at most d for the daemon (ctx's deadline
// still applies if it is earlier); d of 0 waits as Dial does.
func DialTimeout(ctx context.Context, socketPath string, d time.Duration) (*Client, error) {
	if socketPath == "" {
		socketPath = DefaultSocketPath()
	}
	ctx, cancel := dialContext(ctx, d)
	defer cancel()
	var nd net.Dialer
	nc, err := nd.DialContext(ctx, "unix", socketPath)
	if err != nil {
		return nil, dialError(socketPath, err)
	}
	if err := checkServer(nc, socketPath); err != nil {
		nc.Close()
		return nil, err
	}
	return newClient(ctx, nc, socketPath)
}

// dialBound is the cause of a dial's context ending at DefaultDialTimeout.
type dialBound struct{ d time.Duration }

func (b *dialBound) Error() string { return fmt.Sprintf("within %v", b.d) }

// dialContext bounds ctx by d, or if d is 0 by dialTimeout unless ctx has
// a deadline.
func dialContext(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if d == 0 {
		if _, ok := ctx.Deadline(); ok {
			return context.WithCancel(ctx)
		}
		d = dialTimeout
	}
	return context.WithTimeoutCause(ctx, d, &dialBound{d})
}

// noAnswerError is the failure of a dial whose context ended at its
// deadline while the daemon at name had not answered.
func noAnswerError(ctx context.Context, name string) error {
	within := "before the context's deadline"
	var b *dialBound
	if errors.As(context.Cause(ctx), &b) {
		within = b.Error()
	}
	return fmt.Errorf("sandboxd at %s accepted the connection but did not answer %s: it is stuck or overloaded: look at its log, or wait longer (DialTimeout; for the CLI, SANDBOXD_CONNECT_TIMEOUT)", name, within)
}

// checkServer refuses a daemon that another user serves from a directory
// any user may write to (the temporary directory, where DefaultSocketPath
// falls back): whoever made the socket there first answers, and would see
// every module and grant sent to it. Root may serve anyone. Elsewhere the
// directory's owner chose who listens (a daemon of a user of its own
// under /run, say).
func checkServer(nc net.Conn, path string) error {
	dir := filepath.Dir(path)
	fi, err := os.Stat(dir)
	uc, ok := nc.(*net.UnixConn)
	if err != nil || fi.Mode().Perm()&0o002 == 0 || !ok {
		return nil
	}
	rc, err := uc.SyscallConn()
	if err != nil {
		return fmt.Errorf("connecting to sandboxd at %s: %w", path, err)
	}
	var cred *unix.Ucred
	cerr := rc.Control(func(fd uintptr) {
		cred, err = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	})
	if err = errors.Join(cerr, err); err != nil {
		return fmt.Errorf("connecting to sandboxd at %s: cannot tell who serves it: %w", path, err)
	}
	if me := os.Geteuid(); cred.Uid != 0 && int(cred.Uid) != me {
		return fmt.Errorf("the socket %s, in %s where any user may make one, is served by uid %d, not by you (uid %d) or root: it is not your sandboxd; give --socket (or SANDBOXD_SOCKET, or XDG_RUNTIME_DIR) a directory of your own", path, dir, cred.Uid, me)
	}
	return nil
}

// NewClient speaks the control API over an already connected stream
// (a socket pair, a proxied connection). The Client owns c, and closes it
// if the daemon does not answer, within ctx's deadline or
// DefaultDialTimeout as for Dial.
func NewClient(ctx context.Context, c net.Conn) (*Client, error) {
	ctx, cancel := dialContext(ctx, 0)
	defer cancel()
	return newClient(ctx, c, c.RemoteAddr().String())
}

// newClient speaks the control API over nc, a connection to the daemon
// at name, once the daemon has answered within ctx.
func newClient(ctx context.Context, nc net.Conn, name string) (*Client, error) {
	// Network stays nil: sandboxd speaks point-to-point (level 1) RPC.
	conn := rpc.NewConn(newTransport(nc), nil)
	// The bootstrap question lives as long as the connection: ctx's end,
	// once answered, must not finish it (go-capnp watches the context it
	// is asked with).
	sup := schemas.Supervisor(conn.Bootstrap(context.WithoutCancel(ctx)))
	// Wait for the daemon's answer before any call is made on it: calls
	// made on the bootstrap promise while it resolves can reach the daemon
	// after the client has finished the bootstrap question, a protocol
	// error for which the daemon hangs up.
	if err := sup.Resolve(ctx); err != nil {
		conn.Close() // first: it ends the unanswered question sup's release waits for
		sup.Release()
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return nil, noAnswerError(ctx, name)
		}
		return nil, fmt.Errorf("connecting to sandboxd at %s: %w", name, err)
	}
	// Resolve returns nil also when the bootstrap failed: the daemon
	// closed the connection without answering, as it does one past its
	// connection limits. Every call would fail; the dial says why.
	if err := bootstrapError(sup); err != nil {
		conn.Close()
		sup.Release()
		return nil, fmt.Errorf("sandboxd at %s closed the connection without answering: it refuses a connection past its limits (serve --max-conns, --reserved-conns, --max-conns-per-user; its log says \"rejecting connection\" and which), or it is stopping: close some of your connections to it, or ask its operator (%w)", name, err)
	}
	return &Client{conn: conn, sup: sup}, nil
}

// bootstrapError is the error the resolved bootstrap capability sup
// resolved to, or nil: go-capnp brands a failed capability with its
// error.
func bootstrapError(sup schemas.Supervisor) error {
	snap := capnp.Client(sup).Snapshot()
	defer snap.Release()
	err, _ := snap.Brand().Value.(error)
	return err
}

// newTransport frames the control API's messages on nc. It reads through
// a buffer, so that a message's header and segments arrive in one read
// rather than two (go-capnp's stream transport reads exactly what it
// needs), and writes to nc itself, so that a message leaves in one writev.
func newTransport(nc net.Conn) transport.Transport {
	return transport.New(&connCodec{
		dec:  capnp.NewDecoder(bufio.NewReader(nc)),
		enc:  capnp.NewEncoder(nc),
		conn: nc,
	})
}

// connCodec is newTransport's codec. go-capnp's rpc.Conn sends from one
// goroutine and receives from another, so neither side needs a lock.
type connCodec struct {
	dec  *capnp.Decoder
	enc  *capnp.Encoder
	conn net.Conn
}

func (c *connCodec) Encode(m *capnp.Message) error   { return c.enc.Encode(m) }
func (c *connCodec) Decode() (*capnp.Message, error) { return c.dec.Decode() }
func (c *connCodec) Close() error                    { return c.conn.Close() }

// maxSocketPath is the longest path a unix socket may have on Linux: the
// 108 bytes of sockaddr_un's sun_path, less its terminating NUL.
const maxSocketPath = 107

// permissionDenied is the error of a connection to path this user may
// not make, saying whose socket it is and what to do.
func permissionDenied(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("permission denied connecting to %s: this user (uid %d) may not enter the directory it is in: run this as the daemon's user or root, or give --socket a socket you may reach", path, os.Geteuid())
	}
	return socketDenied(path, fi)
}

// socketDenied is the error of a connection refused by the socket at
// path, whose file is fi: whose socket it is, and what to do.
func socketDenied(path string, fi os.FileInfo) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("permission denied connecting to %s: the socket (mode %v) admits only the daemon's user and root, and its owner could not be read: run this as the daemon's user or root, or have the daemon's operator let you connect (docs/DAEMON.md, The socket)", path, fi.Mode().Perm())
	}
	return fmt.Errorf("permission denied connecting to %s: the socket belongs to uid %d (mode %v) and admits only the daemon's user and root: run this as uid %d or root, or have the daemon's operator let you connect (docs/DAEMON.md, The socket)", path, st.Uid, fi.Mode().Perm(), st.Uid)
}

func dialError(path string, err error) error {
	switch {
	case len(path) > maxSocketPath:
		return fmt.Errorf("cannot connect to %s: the path is %d bytes, longer than the %d a unix socket's path may have: give a shorter --socket (a relative path, or the daemon's socket linked from a shorter one)", path, len(path), maxSocketPath)
	case errors.Is(err, syscall.ENOENT), errors.Is(err, syscall.ECONNREFUSED):
		if fi, serr := os.Stat(path); serr == nil && fi.Mode().Type() != os.ModeSocket {
			// Connecting to a file or a directory is refused too: no daemon
			// could listen there.
			what := "a file"
			if fi.IsDir() {
				what = "a directory"
			}
			return fmt.Errorf("cannot connect to %s: it is %s, not a socket: give --socket the daemon's socket (sandboxd serve's --socket)", path, what)
		}
		return fmt.Errorf("no sandboxd is listening at %s (start one with: sandboxd serve --socket %s)", path, path)
	case errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EPERM):
		return permissionDenied(path)
	}
	return fmt.Errorf("connecting to sandboxd at %s: %w", path, err)
}

// Close releases every capability held through the connection and closes
// it, and the output sinks of Guests not released yet. Guests launched
// without Detach are killed by the daemon.
func (c *Client) Close() error {
	c.sup.Release()
	c.mu.Lock()
	out := c.withOutput
	c.withOutput, c.closed = nil, true
	c.mu.Unlock()
	for g := range out {
		g.sink.Release()
	}
	err := c.conn.Close()
	// The connection's end has answered every call, so the releases
	// left running end now.
	c.releasing.Wait()
	if errors.Is(err, rpc.ErrConnClosed) {
		return nil
	}
	return err
}

// releaseLater runs rel, the release of a call that may not be answered
// yet, on a goroutine of its own: it waits for the answer, which comes
// from the daemon or, at the latest, from the connection's end. A
// release begun once Close has begun is not waited for: the connection
// is ending, and its end answers the call.
func (c *Client) releaseLater(rel capnp.ReleaseFunc) {
	c.mu.Lock()
	counted := !c.closed
	if counted {
		c.releasing.Add(1)
	}
	c.mu.Unlock()
	go func() {
		if counted {
			defer c.releasing.Done()
		}
		rel()
	}()
}

// answer is what await waits for, unless the call says more.
const answer = "the daemon's answer"

// await waits for f, the answer to a call made with ctx (rel its
// release), or for ctx's end, whichever comes first. It returns nil once
// the answer is in: read it, then call rel. If ctx ends first, it
// returns an error that wraps ctx's and says it gave up waiting for what,
// and leaves rel to releaseLater: go-capnp settles a cancelled call only
// once the Finish that cancels it has been written, and the call itself
// may not have been written yet, so on a connection the daemon has
// stopped reading, or whose answers do not come, the answer comes at
// the latest with the connection's end. An answer that came as ctx
// ended stands, unless it is go-capnp's own cancellation of the call.
func (c *Client) await(ctx context.Context, op, what string, f *capnp.Future, rel capnp.ReleaseFunc) error {
	select {
	case <-f.Done():
	case <-ctx.Done():
		select {
		case <-f.Done():
		default:
			c.releaseLater(rel)
			return gaveUp(ctx, op, what)
		}
	}
	if _, err := f.Ptr(); err != nil && ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		rel() // answered: it returns at once
		return gaveUp(ctx, op, what)
	}
	return nil
}

// gaveUp is the failure of op, which stopped waiting for what because
// ctx ended. It wraps ctx's error, and the cause ctx ended with
// (context.WithTimeoutCause, WithCancelCause) if that is another.
func gaveUp(ctx context.Context, op, what string) error {
	err := context.Cause(ctx)
	if !errors.Is(err, ctx.Err()) {
		err = fmt.Errorf("%w (%w)", err, ctx.Err())
	}
	return &Error{Op: op, Msg: "gave up waiting for " + what + ": " + err.Error(), Err: err}
}

// Done is closed when the connection to the daemon has ended.
func (c *Client) Done() <-chan struct{} { return c.conn.Done() }

// Whoami returns the principal the daemon has recorded for this
// connection.
func (c *Client) Whoami(ctx context.Context) (Principal, error) {
	f, rel := c.sup.Whoami(ctx, nil)
	if err := c.await(ctx, "whoami", answer, f.Future, rel); err != nil {
		return Principal{}, err
	}
	defer rel()
	r, err := f.Struct()
	if err != nil {
		return Principal{}, callError("whoami", err)
	}
	p, err := r.Principal()
	if err != nil {
		return Principal{}, callError("whoami", err)
	}
	return principalFrom(p), nil
}

// List returns the guests the daemon knows that this principal may see
// (all of them for root), oldest first.
func (c *Client) List(ctx context.Context) ([]GuestInfo, error) {
	f, rel := c.sup.List(ctx, nil)
	if err := c.await(ctx, "list", answer, f.Future, rel); err != nil {
		return nil, err
	}
	defer rel()
	r, err := f.Struct()
	if err != nil {
		return nil, callError("list", err)
	}
	l, err := r.Guests()
	if err != nil {
		return nil, callError("list", err)
	}
	out := make([]GuestInfo, l.Len())
	for i := range out {
		out[i] = guestInfoFrom(l.At(i))
	}
	return out, nil
}

// guestsPage is how many guests Guests asks for at once: the daemon's
// largest page. Tests set it lower (SetGuestsPage).
var guestsPage uint32 = 16384

// Guests calls f with a summary of each guest List would return, in the
// same order, or of each running guest only unless all is set. It fetches
// them a page at a time (Supervisor.listPage), so that a listing of many
// guests neither waits for one large message nor holds the daemon up
// while it builds one. It stops at the first error f returns, and returns
// it. A guest launched or ended while the pages are fetched may be left
// out or shown in its earlier state, as with any listing of a changing
// set; none is shown twice.
func (c *Client) Guests(ctx context.Context, all bool, f func(GuestSummary) error) error {
	// A page asked for ahead is given up once Guests returns.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	fut, rel := c.listPage(ctx, all, "")
	for {
		if err := c.await(ctx, "list", answer, fut.Future, rel); err != nil {
			return err
		}
		r, err := fut.Struct()
		var l schemas.GuestSummary_List
		var next string
		if err == nil {
			l, err = r.Guests()
		}
		if err == nil {
			next, err = r.Next()
		}
		if err != nil {
			rel()
			return callError("list", err)
		}
		// Ask for the next page before going through this one: the
		// daemon fills it meanwhile.
		var nextFut schemas.Supervisor_listPage_Results_Future
		nextRel := func() {}
		if next != "" {
			nextFut, nextRel = c.listPage(ctx, all, next)
		}
		for i := 0; i < l.Len() && err == nil; i++ {
			err = f(guestSummaryFrom(l.At(i)))
		}
		rel()
		if next == "" {
			return err
		}
		if err != nil {
			// The page asked for ahead may not be answered yet, and its
			// release waits for the answer.
			c.releaseLater(nextRel)
			return err
		}
		fut, rel = nextFut, nextRel
	}
}

// listPage asks for the page of guests after the id after.
func (c *Client) listPage(ctx context.Context, all bool, after string) (schemas.Supervisor_listPage_Results_Future, capnp.ReleaseFunc) {
	return c.sup.ListPage(ctx, func(p schemas.Supervisor_listPage_Params) error {
		p.SetLimit(guestsPage)
		p.SetAll(all)
		return p.SetAfter(after)
	})
}

// Guest returns a handle on a guest by id. Releasing it does not kill the
// guest.
func (c *Client) Guest(ctx context.Context, id string) (*Guest, error) {
	f, rel := c.sup.Guest(ctx, func(p schemas.Supervisor_guest_Params) error { return p.SetId(id) })
	if err := c.await(ctx, "lookup", answer, f.Future, rel); err != nil {
		return nil, err
	}
	defer rel()
	r, err := f.Struct()
	if err != nil {
		return nil, callError("lookup", err)
	}
	return &Guest{id: id, g: r.Guest().AddRef(), c: c}, nil
}

// Revoke revokes the capability with the given public id and everything
// derived from it, in every holder.
func (c *Client) Revoke(ctx context.Context, capID, reason string) (Receipt, error) {
	f, rel := c.sup.Revoke(ctx, func(p schemas.Supervisor_revoke_Params) error {
		if err := p.SetCapId(capID); err != nil {
			return err
		}
		return p.SetReason(reason)
	})
	if err := c.await(ctx, "revoke "+capID, answer, f.Future, rel); err != nil {
		return Receipt{}, err
	}
	defer rel()
	r, err := f.Struct()
	if err != nil {
		return Receipt{}, callError("revoke "+capID, err)
	}
	rc, err := r.Receipt()
	if err != nil {
		return Receipt{}, callError("revoke "+capID, err)
	}
	return receiptFrom(rc), nil
}

// Mint creates a root capability held by this connection from grant text
// in the --grant grammar (for example "dir:/srv/data=data:ro"). Its
// Token is the secret that lets another connection use it (CapByToken).
func (c *Client) Mint(ctx context.Context, grant string) (*Cap, error) {
	f, rel := c.sup.Mint(ctx, func(p schemas.Supervisor_mint_Params) error { return p.SetGrant(grant) })
	if err := c.await(ctx, "mint "+grant, answer, f.Future, rel); err != nil {
		return nil, err
	}
	defer rel()
	r, err := f.Struct()
	if err != nil {
		return nil, callError("mint "+grant, err)
	}
	info, err := r.Info()
	if err != nil {
		return nil, callError("mint "+grant, err)
	}
	tok, err := r.Token()
	if err != nil {
		return nil, callError("mint "+grant, err)
	}
	return newCap(c, r.Cap().AddRef(), capInfoFrom(info), tok), nil
}

// Cap returns a capability by public id, if this principal holds or
// granted it (root may reach any).
func (c *Client) Cap(ctx context.Context, capID string) (*Cap, error) {
	f, rel := c.sup.Cap(ctx, func(p schemas.Supervisor_cap_Params) error { return p.SetCapId(capID) })
	if err := c.await(ctx, "cap "+capID, answer, f.Future, rel); err != nil {
		return nil, err
	}
	defer rel()
	r, err := f.Struct()
	if err != nil {
		return nil, callError("cap "+capID, err)
	}
	info, err := r.Info()
	if err != nil {
		return nil, callError("cap "+capID, err)
	}
	return newCap(c, r.Cap().AddRef(), capInfoFrom(info), ""), nil
}

// CapByToken returns a capability from its public id and secret token.
func (c *Client) CapByToken(ctx context.Context, capID, token string) (*Cap, error) {
	f, rel := c.sup.CapByToken(ctx, func(p schemas.Supervisor_capByToken_Params) error {
		if err := p.SetCapId(capID); err != nil {
			return err
		}
		return p.SetToken(token)
	})
	if err := c.await(ctx, "cap "+capID, answer, f.Future, rel); err != nil {
		return nil, err
	}
	defer rel()
	r, err := f.Struct()
	if err != nil {
		return nil, callError("cap "+capID, err)
	}
	info, err := r.Info()
	if err != nil {
		return nil, callError("cap "+capID, err)
	}
	return newCap(c, r.Cap().AddRef(), capInfoFrom(info), token), nil
}
