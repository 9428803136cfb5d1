package client

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"time"

	"capnproto.org/go/capnp/v3"
	"capnproto.org/go/capnp/v3/exc"
	"capnproto.org/go/capnp/v3/rpc"
	"github.com/sandboxd/sandboxd/schemas"
)

// Principal is the unix user the daemon acts for on a connection, taken
// from the connecting process's credentials.
type Principal struct {
	UID, GID uint32
	PID      int32  // the connecting process
	Name     string // user name, or "" if the daemon could not resolve it
}

func (p Principal) String() string {
	if p.Name != "" {
		return fmt.Sprintf("%s (uid %d)", p.Name, p.UID)
	}
	return fmt.Sprintf("uid %d", p.UID)
}

// ExitStatus is how a guest ended.
type ExitStatus struct {
	Code   uint32 // exit code (128+signal, 134 for a trap, 137 when killed)
	Signal uint8  // set when the guest raised a signal
	Trap   string // why the guest trapped, or ""
	Killed string // why the guest was killed (KilledByTimeout, a reason), or ""
}

// KilledByTimeout is ExitStatus.Killed for a guest its launch's Timeout
// ended.
const KilledByTimeout = "timeout"

// Err describes an abnormal end, or returns nil for an exit through
// proc_exit (whatever its code).
func (s ExitStatus) Err() error {
	switch {
	case s.Killed != "":
		return fmt.Errorf("guest killed: %s", s.Killed)
	case s.Trap != "":
		return fmt.Errorf("guest trapped: %s", s.Trap)
	case s.Signal != 0:
		return fmt.Errorf("guest raised signal %d", s.Signal)
	}
	return nil
}

// GuestInfo describes a guest.
type GuestInfo struct {
	ID        string
	Name      string // module display name
	SHA256    string // module hash
	Principal Principal
	Running   bool
	Status    ExitStatus // valid once Running is false
	Started   time.Time
	Ended     time.Time // zero while running; set whenever Running is false
	Args      []string
	Labels    []string // KEY=VALUE, sorted
	Detached  bool
	Handles   int
	GuestName string // launch --name, or ""
	// Limits the guest runs under: linear memory in bytes, its timeout
	// (0: none), its handle table's size and its call-stack bound in
	// bytes (as counted: docs/CLI.md, Call stack).
	MemoryLimit uint64
	Timeout     time.Duration
	MaxFDs      int
	MaxStack    uint64
	Grants      []string // the launch's grant texts, in fd order from 3
	Deny        []string // the launch's --deny selectors
}

// GuestSummary is what ps shows of a guest: the few fields of GuestInfo
// that Client.Guests fetches for each, so that listing many guests costs
// little.
type GuestSummary struct {
	ID        string
	Name      string // module display name
	GuestName string // launch --name, or ""
	// Principal has the UID and the user name of who launched the guest
	// (GID and PID are not part of a summary).
	Principal Principal
	Running   bool
	Status    ExitStatus // valid once Running is false
	Started   time.Time
	Handles   int
	Labels    []string // KEY=VALUE, sorted
}

// Summary returns what a GuestSummary holds of g.
func (g GuestInfo) Summary() GuestSummary {
	return GuestSummary{
		ID: g.ID, Name: g.Name, GuestName: g.GuestName, Principal: Principal{UID: g.Principal.UID, Name: g.Principal.Name},
		Running: g.Running, Status: g.Status, Started: g.Started, Handles: g.Handles, Labels: g.Labels,
	}
}

// CapInfo is the public description of a capability: never its token.
type CapInfo struct {
	ID               string
	Kind             string // dir, file, stdio, chan, sock, …
	Name             string // the name its holder knows it by
	Holder           string // guest id, or the connection holding it; "" in flight, or held by another user's (unless the caller is root or the daemon's user)
	Base             uint64 // rights on the handle (CloudABI bit positions)
	Inheriting       uint64 // most rights of handles derived through it
	Rights           string // Base by name, joined by '|'
	InheritingRights string
	Parent           string // capability it was derived from, "" for a root
	Edge             string // grant, open, dup, delegate, restrict, …
	Removed          string // rights dropped on the edge from Parent
	Origin           string // what authorised a root capability
	By               string // who made a root capability's grant ("alice (uid 1000)"); "" for others
	Resource         string // what it designates ("dir /srv/data")
	Created          time.Time
	Expires          time.Time // when a lease revokes it; zero: no lease
	Revoked, Closed  bool
}

// Handle is one entry of a guest's handle table.
type Handle struct {
	FD  uint32
	Cap CapInfo
	// Pending: sent on the guest's supervisor channel and not received
	// yet; FD is 0.
	Pending bool
}

// Receipt lists what one revocation cut off.
type Receipt struct {
	Root    string
	Reason  string
	Revoked []string // capability ids: the root, and what Holders held
	// Holders are the holders cut off that the caller may see: its own
	// guests and connections (root and the daemon's user: every one).
	Holders []string
	// Others counts the holders cut off that are not in Holders: guests
	// and connections of other users, which the caller may not see.
	Others int
	At     time.Time
	Took   time.Duration
}

// decoder reads a schema struct's fields and keeps the first error, so
// that decoding reads as a list of fields.
type decoder struct{ err error }

func (d *decoder) text(s string, err error) string {
	if err != nil && d.err == nil {
		d.err = err
	}
	return s
}

func (d *decoder) texts(l capnp.TextList, err error) []string {
	if err != nil {
		if d.err == nil {
			d.err = err
		}
		return nil
	}
	out := make([]string, l.Len())
	for i := range out {
		out[i] = d.text(l.At(i))
	}
	return out
}

func unixTime(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}

// Decoding ignores malformed text from the daemon field by field: the
// daemon is trusted, and a partial description is more useful than none.

func principalFrom(p schemas.Principal) Principal {
	var d decoder
	return Principal{UID: p.Uid(), GID: p.Gid(), PID: p.Pid(), Name: d.text(p.Name())}
}

func exitStatusFrom(s schemas.ExitStatus) ExitStatus {
	var d decoder
	return ExitStatus{Code: s.Code(), Signal: s.Signal(), Trap: d.text(s.Trap()), Killed: d.text(s.Killed())}
}

func guestInfoFrom(g schemas.GuestInfo) GuestInfo {
	var d decoder
	info := GuestInfo{
		ID: d.text(g.Id()), Name: d.text(g.Name()), SHA256: d.text(g.Sha256()),
		Running: g.Running(), Started: unixTime(g.Started()), Ended: unixTime(g.Ended()),
		Args: d.texts(g.Args()), Labels: d.texts(g.Labels()), Grants: d.texts(g.Grants()), Deny: d.texts(g.Deny()), GuestName: d.text(g.GuestName()),
		MemoryLimit: g.MemoryLimit(), Timeout: time.Duration(g.Timeout()), MaxFDs: int(g.MaxFds()), MaxStack: g.MaxStack(), Detached: g.Detached(), Handles: int(g.Handles()),
	}
	if p, err := g.Principal(); err == nil {
		info.Principal = principalFrom(p)
	}
	if s, err := g.Status(); err == nil {
		info.Status = exitStatusFrom(s)
	}
	return info
}

func guestSummaryFrom(g schemas.GuestSummary) GuestSummary {
	var d decoder
	sum := GuestSummary{
		ID: d.text(g.Id()), Name: d.text(g.Name()), GuestName: d.text(g.GuestName()),
		Principal: Principal{UID: g.Uid(), Name: d.text(g.User())},
		Running:   g.Running(), Started: unixTime(g.Started()), Handles: int(g.Handles()),
	}
	if g.HasLabels() {
		sum.Labels = d.texts(g.Labels())
	}
	if g.HasStatus() {
		if s, err := g.Status(); err == nil {
			sum.Status = exitStatusFrom(s)
		}
	}
	return sum
}

func capInfoFrom(c schemas.CapInfo) CapInfo {
	var d decoder
	return CapInfo{
		ID: d.text(c.Id()), Kind: d.text(c.Kind()), Name: d.text(c.Name()), Holder: d.text(c.Holder()),
		Base: c.Base(), Inheriting: c.Inheriting(),
		Rights: d.text(c.Rights()), InheritingRights: d.text(c.InheritingRights()),
		Parent: d.text(c.Parent()), Edge: d.text(c.Edge()), Removed: d.text(c.Removed()),
		Origin: d.text(c.Origin()), By: d.text(c.By()), Resource: d.text(c.Resource()),
		Created: unixTime(c.Created()), Expires: unixTime(c.Expires()), Revoked: c.Revoked(), Closed: c.Closed(),
	}
}

func handleFrom(h schemas.Handle) Handle {
	out := Handle{FD: h.Fd(), Pending: h.Pending()}
	if info, err := h.Info(); err == nil {
		out.Cap = capInfoFrom(info)
	}
	return out
}

func receiptFrom(r schemas.Receipt) Receipt {
	var d decoder
	return Receipt{
		Root: d.text(r.Root()), Reason: d.text(r.Reason()),
		Revoked: d.texts(r.Revoked()), Holders: d.texts(r.Holders()), Others: int(r.Others()),
		At: unixTime(r.At()), Took: time.Duration(r.Took()),
	}
}

// Error is a failure reported by the daemon or the connection to it.
type Error struct {
	Op string // the operation that failed ("launch", "revoke c1a2…")
	// Disconnected is set when the connection to the daemon was lost;
	// the operation may or may not have taken effect.
	Disconnected bool
	// Kind says what failed, for the failures a caller can act on without
	// reading Msg; KindOther for the rest.
	Kind ErrorKind
	Msg  string
	Err  error
}

// ErrorKind classifies a launch failure (docs/API.md, "Errors").
type ErrorKind int

const (
	KindOther ErrorKind = iota
	// KindGrant: a grant did not parse, was refused, or could not be set
	// up (a missing directory, a capability already revoked). Nothing ran.
	KindGrant
	// KindModule: the module is not a WebAssembly command module sandboxd
	// can run. Nothing ran.
	KindModule
	// KindRequest: the request is invalid in itself (a limit out of range,
	// a module needing more memory than the limit, a label, a handle name
	// taken twice). Nothing ran.
	KindRequest
)

// errorKinds are the reason prefixes by which the daemon marks a kind.
var errorKinds = []struct {
	prefix string
	kind   ErrorKind
}{{"grant: ", KindGrant}, {"module: ", KindModule}, {"request: ", KindRequest}}

func (e *Error) Error() string { return e.Op + ": " + e.Msg }
func (e *Error) Unwrap() error { return e.Err }

// connectionLost reports whether err comes from the socket to the daemon
// failing under a call.
func connectionLost(err error) bool {
	return errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, rpc.ErrConnClosed) // a call sent after it closed
}

// callError turns an RPC failure into an Error whose message is the
// daemon's own, without the RPC layer's prefixes.
func callError(op string, err error) error {
	if err == nil {
		return nil
	}
	e := &Error{Op: op, Err: err, Disconnected: exc.IsType(err, exc.Disconnected) || connectionLost(err)}
	msg := err.Error()
	for _, p := range []string{"rpc: ", "remote call: ", "sandboxd.capnp:", "bootstrap: "} {
		for {
			i := strings.Index(msg, p)
			if i < 0 {
				break
			}
			if p == "sandboxd.capnp:" {
				// "sandboxd.capnp:Supervisor.launch: " names the method: drop it.
				j := strings.Index(msg[i:], ": ")
				if j < 0 {
					break
				}
				msg = msg[:i] + msg[i+j+2:]
				continue
			}
			msg = msg[:i] + msg[i+len(p):]
		}
	}
	for _, k := range errorKinds {
		if strings.HasPrefix(msg, k.prefix) {
			e.Kind, msg = k.kind, msg[len(k.prefix):]
			break
		}
	}
	// The daemon's message may start with the operation's own name
	// ("launch: …"); the op already says it.
	verb, object, _ := strings.Cut(op, " ")
	if strings.HasPrefix(msg, verb+": ") {
		msg = msg[len(verb)+2:]
	}
	// It may also name the operation's object first ("x.wasm imports …",
	// "x.wasm: its tables …"): say the name once.
	if object != "" && (strings.HasPrefix(msg, object+" ") || strings.HasPrefix(msg, object+": ")) {
		e.Op = verb
	}
	if e.Disconnected {
		msg = "lost connection to the daemon: " + msg
	}
	e.Msg = msg
	return e
}
