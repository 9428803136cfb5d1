package caps

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Dialer is one network target, fixed when it was granted, that a guest
// may open connections to as often as it likes: each Accept returns a new
// connection to it as a Socket. It is CloudABI's answer to connect(2)
// (Flower's switchboard) in one handle: a guest with a database dialer can
// keep a pool of connections and reconnect after the server restarts, and
// still reach nothing but that one target.
//
// Holding a capability to a Dialer allows opening connections to its
// pinned addresses and nothing else: not choosing or learning another
// address, not resolving names (a DNS name was resolved once, by the
// supervisor, when the dialer was made), not listening. Every connection
// taken from it is a child capability of the dialer's (edge accept), so
// revoking the dialer ends every connection made through it.
//
// A unix socket file's dialer connects to the socket at its SocketPath,
// pinned when the dialer was granted: beneath the directory the path led
// to then, following no link, the socket file looked up anew on each
// Accept (so a server that binds it again is reached again). The dialer
// holds the SocketPath's directories open until it is closed.
//
// Accept is non-blocking: it starts a connection attempt and returns
// EAGAIN until the attempt has finished; Poll reports EventRead when an
// attempt has finished (connected or failed) or none is running, so that
// the next Accept makes progress. A failed attempt is returned by the next
// Accept as the connect(2) error (ECONNREFUSED, ETIMEDOUT, ENOENT for a
// unix socket path that does not exist, …); the attempt after it starts
// afresh.
type Dialer struct {
	network string
	addrs   []string    // tried in order; the first that connects wins
	file    *SocketPath // instead of addrs, a unix socket file
	timeout time.Duration
	desc    string

	ctx    context.Context // cancelled by Close: ends a running attempt
	cancel context.CancelFunc

	mu      sync.Mutex
	closed  bool
	dialing bool
	result  *dialResult // a finished attempt not yet taken
	waiters waitList
}

type dialResult struct {
	conn net.Conn
	err  error
}

// NewDialer returns a dialer to addrs on network ("tcp" with IP:PORT
// addresses, or "unix" with abstract addresses, "@name"), tried in order
// on every Accept. Each attempt on one address gives up after timeout
// (ETIMEDOUT). desc says what it is for logs and the capability graph. A
// unix socket file is dialed through its pinned path (NewUnixDialer): a
// path given here is refused. So is a tcp host name, which net.Dial
// would look up anew on each Accept: the maker resolves it, once.
func NewDialer(network string, addrs []string, timeout time.Duration, desc string) (*Dialer, error) {
	if network != "tcp" && network != "unix" {
		return nil, errors.New("caps: a dialer connects over tcp or unix, not " + network)
	}
	if len(addrs) == 0 {
		return nil, errors.New("caps: a dialer needs at least one address")
	}
	for _, a := range addrs {
		if network == "unix" && !strings.HasPrefix(a, "@") {
			return nil, errors.New("caps: the unix socket file " + a + " is dialed through its pinned path: OpenSocketPath, then NewUnixDialer")
		}
		if network == "tcp" && !isIPPort(a) {
			return nil, errors.New("caps: the tcp address " + a + " is not an IP address and a port number: a host name is resolved once, by the dialer's maker, and never by the dialer")
		}
	}
	return newDialer(network, append([]string(nil), addrs...), nil, timeout, desc), nil
}

// isIPPort reports whether a is an IP address and a port number from 1
// to 65535, which net.Dial connects to without looking anything up.
func isIPPort(a string) bool {
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		return false
	}
	if _, err := netip.ParseAddr(host); err != nil {
		return false
	}
	n, err := strconv.ParseUint(port, 10, 16)
	return err == nil && n > 0
}

// NewUnixDialer returns a dialer to the unix socket file at file, which
// it owns and closes when it is closed. Each attempt gives up after
// timeout (ETIMEDOUT). desc says what it is for logs and the capability
// graph.
func NewUnixDialer(file *SocketPath, timeout time.Duration, desc string) *Dialer {
	return newDialer("unix", []string{file.Path()}, file, timeout, desc)
}

func newDialer(network string, addrs []string, file *SocketPath, timeout time.Duration, desc string) *Dialer {
	ctx, cancel := context.WithCancel(context.Background())
	return &Dialer{
		network: network, addrs: addrs, file: file, timeout: timeout, desc: desc,
		ctx: ctx, cancel: cancel,
	}
}

func (d *Dialer) Kind() Kind       { return KindDialer }
func (d *Dialer) Describe() string { return "dial " + d.desc }

// Addrs returns the addresses the dialer connects to, in the order it
// tries them.
func (d *Dialer) Addrs() []string { return append([]string(nil), d.addrs...) }

func (d *Dialer) Stat() (FileStat, error) { return FileStat{Type: TypeSocketStream}, nil }

// Close ends a running attempt, closes a connection made but not taken,
// and closes a unix socket file's pinned directories. Connections already
// taken are capabilities of their own: their holders close them, and
// revoking the dialer's capability revokes them.
func (d *Dialer) Close() error {
	d.mu.Lock()
	d.closed = true
	r := d.result
	d.result = nil
	d.mu.Unlock()
	d.cancel()
	if r != nil && r.conn != nil {
		r.conn.Close()
	}
	if d.file != nil {
		d.file.Close() // idempotent: a second Close does nothing
	}
	d.waiters.wakeAll()
	return nil
}

// Accept returns the connection the last attempt made, or its error, or
// starts an attempt and returns EAGAIN.
func (d *Dialer) Accept() (Resource, error) {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil, EBADF
	}
	r := d.result
	d.result = nil
	if r == nil && !d.dialing {
		d.dialing = true
		go d.dial()
	}
	d.mu.Unlock()
	if r == nil {
		return nil, EAGAIN
	}
	if r.err != nil {
		return nil, r.err
	}
	s, err := NewSocket(r.conn, d.desc)
	if err != nil {
		r.conn.Close()
		return nil, EIO
	}
	return s, nil
}

// dial makes one attempt and leaves its result for the next Accept.
func (d *Dialer) dial() {
	conn, err := d.connect()
	d.mu.Lock()
	d.dialing = false
	if d.closed {
		d.mu.Unlock()
		if conn != nil {
			conn.Close()
		}
		return
	}
	d.result = &dialResult{conn: conn, err: err}
	d.mu.Unlock()
	d.waiters.wakeAll()
}

// connect tries each address in order and returns the first connection,
// or the last error as an Errno.
func (d *Dialer) connect() (net.Conn, error) {
	nd := net.Dialer{Timeout: d.timeout}
	if d.file != nil {
		conn, err := d.file.Dial(d.ctx, &nd)
		if err != nil {
			return nil, DialErrno(err)
		}
		return conn, nil
	}
	var err error
	for _, a := range d.addrs {
		var conn net.Conn
		if conn, err = nd.DialContext(d.ctx, d.network, a); err == nil {
			return conn, nil
		}
	}
	return nil, DialErrno(err)
}

// RealPath is the path p leads to, every symbolic link in it resolved.
// Where p names nothing yet (a file a :create grant is to make, a socket
// not bound yet, or a path that does not exist), the links of its deepest
// existing ancestor are resolved and the rest is kept as written: a
// missing path beneath a link is decided on, and refused, as beneath the
// link's target. A path no ancestor of which resolves is returned as it
// is: opening it fails and says why.
func RealPath(p string) string {
	rest := ""
	for dir := p; ; dir = filepath.Dir(dir) {
		if r, err := filepath.EvalSymlinks(dir); err == nil {
			return filepath.Join(r, rest)
		}
		if filepath.Dir(dir) == dir {
			return p
		}
		rest = filepath.Join(filepath.Base(dir), rest)
	}
}

// DialErrno maps an error from net.Dial to the errno a guest sees: the
// connect(2) error, ETIMEDOUT for a timeout (which ErrnoOf would read as
// EAGAIN, a deadline), ECANCELED when the dialer was closed meanwhile.
func DialErrno(err error) Errno {
	var ne net.Error
	switch {
	case err == nil:
		return ESUCCESS
	case errors.As(err, &ne) && ne.Timeout(), errors.Is(err, os.ErrDeadlineExceeded):
		return ETIMEDOUT
	case errors.Is(err, context.Canceled):
		return ECANCELED
	case errors.Is(err, ErrProtectedSocket):
		return EACCES
	}
	return ErrnoOf(err)
}

// Poll reports EventRead when an Accept would not return EAGAIN at once:
// an attempt has finished, or none is running (Accept starts one). A
// dialer is never writable.
func (d *Dialer) Poll(want Events, w *Waiter) (Events, func()) {
	if want&EventRead == 0 {
		return 0, noop
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed || d.result != nil || !d.dialing {
		return EventRead, noop
	}
	if w == nil {
		return 0, noop
	}
	return 0, d.waiters.add(w)
}
