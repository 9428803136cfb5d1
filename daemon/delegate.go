package daemon

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/sandboxd/sandboxd/abi/argdata"
	"github.com/sandboxd/sandboxd/caps"
)

// Delegation passes an existing capability to a guest at launch: the
// guest gets a new capability derived from From (edge "delegate") with
// From's rights (within Keep, if Keep is not zero), under Name (From's
// own if Name is ""). Revoking From revokes the guest's copy.
type Delegation struct {
	From *caps.Cap
	Name string
	// Keep narrows the copy: it keeps only the rights of From, base and
	// inheriting, that Keep holds (Grant.Keep). Zero keeps them all.
	Keep caps.Rights
	// Origin is recorded as the copy's origin (the grant text that asked
	// for it, "cap:ID=NAME:ro"); "" records "cap:ID".
	Origin string
}

// supervisorHandle is the handle name of a guest's supervisor channel.
const supervisorHandle = "supervisor"

// supervisorRights are what a guest may do with its end of the supervisor
// channel: receive (sock_recv, fd_read), send requests (sock_send,
// fd_write: see peer.go), poll and stat it, and make it non-blocking
// (fd_stat_put flags) to wait through its own poller, as Go guests do.
const supervisorRights = caps.RightFDRead | caps.RightFDWrite | caps.RightPollFDReadwrite | caps.RightFileStatFGet | caps.RightFDStatPutFlags

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// derivation is the derivation that gives holder d's copy: the rights
// d.From holds that d keeps, nothing more.
func (d Delegation) derivation(holder *caps.Holder) caps.Derivation {
	b, i := d.From.Rights()
	if d.Keep != 0 {
		b, i = b&d.Keep, i&d.Keep
	}
	name, origin := d.Name, d.Origin
	if name == "" {
		name = d.From.Name()
	}
	if origin == "" {
		origin = "cap:" + string(d.From.ID())
	}
	return caps.Derivation{Holder: holder, Edge: caps.EdgeDelegate, Name: name, Base: b, Inheriting: i, Origin: origin}
}

// checkName checks the name the guest's copy gets, so that every handle
// name a guest sees is one a grant could give: a name d gives must be a
// plain name (CheckName), as the control API's Cap.delegate requires; the
// source's own, which the copy takes when d gives none, may also be the
// path a dir or file grant can name its handle with.
func (d Delegation) checkName() error {
	name := cmp.Or(d.Name, d.From.Name())
	var err error
	switch k := d.From.Kind(); {
	case d.Name == "" && k == caps.KindDirectory:
		err = checkGivenName(GrantDir, name)
	case d.Name == "" && k == caps.KindFile:
		err = checkGivenName(GrantFile, name)
	default:
		err = checkName(name)
	}
	if err != nil {
		return fmt.Errorf("capability %s cannot be given to a guest under the handle name %s, which %w: give it a name a grant could give (at most %d bytes of UTF-8, with no control character and none of / = : \\)", d.From.ID(), quoteName(name), err, MaxGuestName)
	}
	return nil
}

// quoteName quotes a handle name for an error message, cut to its first
// 64 bytes when it is longer (with its length), so that a refused name of
// any length makes an error of a few lines.
func quoteName(n string) string {
	const shown = 64
	if len(n) <= shown {
		return strconv.Quote(n)
	}
	return fmt.Sprintf("%q… (%d bytes)", n[:shown], len(n))
}

// openSupervisorChannel creates the guest's supervisor channel, puts the
// guest's end in table and returns the daemon's end and the guest's.
func (g *Guest) openSupervisorChannel(table *caps.Table) (daemon, guest *caps.Channel) {
	guestEnd, daemonEnd := caps.NewChannelPair(true, "supervisor "+g.id)
	c := g.s.k.Mint(g.holder, guestEnd, supervisorRights, 0, supervisorHandle, "launch")
	c.SetSource(guestOwnEnd{})
	_, _ = table.Insert(c) // validate left room for it
	daemonEnd.OnArrival(g.onSupervisorRequest)
	daemonEnd.OnPeerRecv(g.onSupervisorRequest) // a request may wait for room (peer.go)
	return daemonEnd, guestEnd
}

// ErrNoSupervisorChannel is returned by Send* for a guest launched without
// a supervisor channel.
var ErrNoSupervisorChannel = errors.New("the guest has no supervisor channel: only guests launched through the daemon can receive handles while they run")

// ErrGuestEnded is why a handle cannot be sent to a guest that has
// exited: not a fault of the grant, which could be set up.
var ErrGuestEnded = errors.New("handles go to running guests only")

// Grant authorizes gr for principal by (see Supervisor.SetPolicy), sets it
// up and sends the new handle to the running guest on its
// supervisor channel (see SendCap), the one way a running guest receives a
// handle. It returns the new capability.
func (g *Guest) Grant(ctx context.Context, by Principal, gr Grant) (*caps.Cap, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("grant to %s: %w", g.id, err)
	}
	if g.supervisor == nil {
		return nil, &GrantError{Grant: gr, Err: ErrNoSupervisorChannel}
	}
	pg, err := g.s.authorize(grantee{by: by, module: g.Module(), labels: holderModule(g.holder).Labels, deny: denyListOf(g.holder)}, gr)
	if err != nil {
		return nil, err
	}
	r, err := g.s.open(ctx, by, pg.grant)
	if err != nil {
		return nil, err
	}
	text := gr.String()
	c := g.s.mintGrant(g.holder, pg, r, text)
	if err := g.send("grant", c); err != nil {
		r.undoCreate()
		return nil, &GrantError{Grant: gr, Err: err}
	}
	g.log.Info("granted", "grant", text, "cap", c.ID(), "via", supervisorHandle)
	g.s.warnIfReloaded(g, pg.policy, c)
	return c, nil
}

// SendCap sends the running guest a copy of from under name, derived for
// it (edge "delegate") with from's rights, on its supervisor channel. It
// returns the copy. name must be one a grant could give (CheckName; ""
// takes from's own name): another is refused and nothing is sent.
//
// The guest receives it with sock_recv on its "supervisor" handle: one
// datagram per handle, carrying the handle and an argdata map
// {"event": "grant"|"delegate", "name": NAME, "cap": ID, "kind": KIND}.
// Until the guest receives it the capability waits in the channel (it is
// listed, and revocable, like any other); if the guest exits first it is
// closed.
func (g *Guest) SendCap(ctx context.Context, from *caps.Cap, name string) (*caps.Cap, error) {
	return g.Delegate(ctx, Delegation{From: from, Name: name})
}

// Delegate is SendCap for a Delegation: the copy is named, narrowed and
// recorded as d says.
func (g *Guest) Delegate(ctx context.Context, d Delegation) (*caps.Cap, error) {
	from := d.From
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("delegate: %w", err)
	}
	if g.supervisor == nil {
		return nil, ErrNoSupervisorChannel
	}
	if err := d.checkName(); err != nil {
		return nil, err
	}
	c, err := g.s.k.Derive(from, d.derivation(g.holder))
	if err != nil {
		return nil, delegationError(from, err)
	}
	if err := g.send("delegate", c); err != nil {
		return nil, err
	}
	g.log.Info("delegated", "cap", c.ID(), "from", from.ID(), "via", supervisorHandle)
	return c, nil
}

// send queues c with its notice on the supervisor channel. On failure c
// is closed.
func (g *Guest) send(event string, c *caps.Cap) error {
	notice := argdata.StringMap(map[string]argdata.Value{
		"event": argdata.String(event),
		"name":  argdata.String(c.Name()),
		"cap":   argdata.String(string(c.ID())),
		"kind":  argdata.String(c.Kind().String()),
	}).Encode()
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.exitedLocked() {
		g.s.k.Close(c)
		return fmt.Errorf("guest %s has exited: %w", g.id, ErrGuestEnded)
	}
	var err error = caps.EAGAIN
	// A grant or a delegation leaves room for the answer to a request,
	// which the daemon may have begun to give (peer.go); the answer
	// itself ("rpc") was checked for when its request was taken.
	if event == rpcEvent || g.supervisor.HasRoom(2, len(notice)+maxAnswer, 2) {
		_, err = g.supervisor.Send([][]byte{notice}, []*caps.Cap{c})
	}
	if err != nil {
		g.s.k.Close(c)
		if errors.Is(err, caps.EAGAIN) {
			return fmt.Errorf("guest %s is not reading its supervisor channel and it is full: it must sock_recv what was sent before", g.id)
		}
		return fmt.Errorf("guest %s's supervisor channel: %w", g.id, err)
	}
	return nil
}

// delegationError says why from could not be passed on (WhyNotDerived).
func delegationError(from *caps.Cap, err error) error {
	if IsPolicyDenial(err) || errors.Is(err, caps.ErrClosedAbove) {
		return fmt.Errorf("capability %s cannot be passed on: %w", from.ID(), err)
	}
	return fmt.Errorf("capability %s cannot be passed on: %s", from.ID(), WhyNotDerived(from, err))
}

// WhyNotDerived says why the kernel refused to derive a copy of from
// (err from caps.Kernel.Derive), in words a user can act on: it has been
// revoked, or its holder closed it; any other refusal (a policy's denial,
// caps.ErrClosedAbove) says so itself.
func WhyNotDerived(from *caps.Cap, err error) string {
	switch {
	case from.Revoked():
		return "it has been revoked"
	case errors.Is(err, caps.EBADF):
		return "its holder has closed it (a copy of it that is still open can be passed on)"
	}
	return err.Error()
}

// Pending returns the capabilities sent to the guest on its supervisor
// channel (Grant, SendCap) that it has not received yet: they are held for
// it, and revocable, but have no fd. They are what waits in the guest's
// end of the channel, so asking costs what waits there, not a pass over
// every capability of the daemon.
func (g *Guest) Pending() []*caps.Cap {
	if g.supervised == nil {
		return nil
	}
	var out []*caps.Cap
	for _, c := range g.supervised.Queued() {
		if c.Holder() == g.holder && !c.Revoked() && !c.Closed() {
			out = append(out, c)
		}
	}
	return out
}
