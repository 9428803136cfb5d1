//go:build wasip1

package sandboxd

import (
	"errors"
	"fmt"
	"sync"

	"github.com/sandboxd/sandboxd/abi/argdata"
)

var (
	supervisorOnce sync.Once
	supervisorConn *Conn
	supervisorErr  error
)

// Supervisor returns the guest's end of its supervisor channel (the
// handle named "supervisor"), on which the daemon sends what
// `sandboxd grant` and Cap.delegate give the guest while it runs
// (docs/API.md). Every call returns the same Conn: one reader, so that no
// notice goes to a caller that does not expect it. A guest started by
// `sandboxd run` or spawned by another guest has no supervisor channel.
// The Conn owns the handle: File, NetConn and the others refuse the name
// "supervisor" (ErrHandleTaken), and if one of them took it first,
// Supervisor is refused.
func Supervisor() (*Conn, error) {
	supervisorOnce.Do(func() {
		fd, ok := Handle("supervisor")
		if !ok {
			supervisorErr = errors.New("sandboxd: this guest has no supervisor channel: launch it through the daemon (sandboxd launch)")
			return
		}
		release, err := take("supervisor", "Supervisor")
		if err != nil {
			supervisorErr = err
			return
		}
		if supervisorConn, supervisorErr = NewConn(fd); supervisorErr != nil {
			release()
		}
	})
	return supervisorConn, supervisorErr
}

// Notice is one datagram of the supervisor channel: a handle granted
// ("grant") or delegated ("delegate") to the guest while it runs, the
// answer to a connection request ("rpc"), or a refusal ("error", with
// the daemon's reason in Name).
type Notice struct {
	Event, Name, Cap, Kind string
	FD                     uint32 // the handle it carried, now open in this guest
	HasFD                  bool
	// HandleLost: a handle came with the notice but could not be
	// installed in this guest, and was closed (sock_recv's
	// FDS_TRUNCATED): its handle table was full (max-fds), or the
	// handle was refused to it. RecvNotice returns such a notice with a
	// *HandleLostError.
	HandleLost bool
}

// HandleLostError is RecvNotice's error for a notice whose handle this
// guest could not take (Notice.HandleLost): what was lost is Notice, its
// event, name, capability id and kind. The handle is closed; a grant or
// delegation is gone, and a request is to make again once the guest has
// room.
type HandleLostError struct{ Notice Notice }

func (e *HandleLostError) Error() string {
	n := e.Notice
	return fmt.Sprintf("sandboxd: the %s notice for %q (capability %s, kind %s) came with a handle this guest could not take: its handle table is full (max-fds; close handles it no longer needs), or the handle was refused to it; the handle was closed", n.Event, n.Name, n.Cap, n.Kind)
}

// ParseNotice decodes a notice's bytes (an argdata map); FD and HasFD are
// the caller's to fill in from what arrived with them.
func ParseNotice(b []byte) (Notice, error) {
	v, err := argdata.Decode(b)
	if err != nil {
		return Notice{}, fmt.Errorf("sandboxd: a supervisor notice that is not argdata: %w", err)
	}
	str := func(k string) string {
		x, _ := v.Get(k)
		s, _ := x.Str()
		return s
	}
	n := Notice{Event: str("event"), Name: str("name"), Cap: str("cap"), Kind: str("kind")}
	if n.Event == "error" {
		n.Name = str("error")
	}
	return n, nil
}

// A notice is looked at first with a buffer of firstNotice bytes, doubled
// until it holds the notice whole, up to maxNotice: the longest datagram a
// channel carries (the daemon's caps.ChannelBuffer), so the longest notice
// the daemon can send.
const (
	firstNotice = 4 << 10
	maxNotice   = 256 << 10
)

// RecvNotice waits for the next notice on c (the supervisor channel) and
// returns it with the handle it carried, if any. The handle is the
// guest's to close. It reads a notice of any length the daemon can send
// (up to 256 KiB, the most a channel carries in one datagram) whole. A
// notice it cannot decode, or one it could not read whole (longer than
// that, or taken meanwhile by a reader that is not RecvNotice), is an
// error, and the handle that came with it is closed here: a caller that
// gets an error holds no new handle. A notice whose handle this guest
// could not take (its handle table full: the handle was closed) is
// returned with a *HandleLostError that holds it, so the caller knows
// what was lost. An answer no one waits for any more (DiscardAnswer) is
// dropped, its handle closed, and RecvNotice reads on. Calls on one Conn
// take turns.
func (c *Conn) RecvNotice() (Notice, error) {
	c.noticeMu.Lock()
	defer c.noticeMu.Unlock()
	for {
		n, err := c.recvNotice()
		var lost *HandleLostError
		if (err != nil && !errors.As(err, &lost)) || !c.dropUnwanted(n) {
			return n, err
		}
	}
}

// recvNotice is RecvNotice of the next notice, whatever it is.
func (c *Conn) recvNotice() (Notice, error) {
	buf, err := c.peekNotice()
	if err != nil {
		return Notice{}, fmt.Errorf("sandboxd: reading the supervisor channel: %w", err)
	}
	fds := make([]uint32, 1)
	r, err := c.Recv(buf, fds)
	if err != nil {
		return Notice{}, fmt.Errorf("sandboxd: reading the supervisor channel: %w", err)
	}
	if r.N == 0 && r.NFDs == 0 {
		return Notice{}, errors.New("sandboxd: the supervisor channel was closed")
	}
	n, err := parseWhole(buf[:r.N], r.DataTruncated)
	if err != nil {
		if r.NFDs == 1 {
			_ = Close(fds[0]) // it came with bytes that say nothing of what it is
		}
		return Notice{}, err
	}
	if r.FDsTruncated {
		// A handle came and was closed: the one the notice is about, for
		// a notice carries one (any that did fit goes too, unexplained).
		if r.NFDs == 1 {
			_ = Close(fds[0])
		}
		n.HandleLost = true
		return n, &HandleLostError{Notice: n}
	}
	n.FD, n.HasFD = fds[0], r.NFDs == 1
	return n, nil
}

// DiscardAnswer tells c, the supervisor channel, that the answer to one
// request sent on it is no longer waited for: RecvNotice drops the next
// answer (an "rpc" or "error" notice) it reads, closing the handle that
// came with it, and reads on. The daemon answers each request it was
// sent once and in order (a send that failed is no request, and is owed
// nothing), so the answers to later requests still reach whoever waits
// for them. peer.Connect calls it when its context ends before the answer
// came.
func (c *Conn) DiscardAnswer() { c.unwanted.Add(1) }

// dropUnwanted reports whether n is an answer no one waits for any more,
// and if so closes the handle that came with it. c.noticeMu must be held.
func (c *Conn) dropUnwanted(n Notice) bool {
	if (n.Event != "rpc" && n.Event != "error") || c.unwanted.Load() == 0 {
		return false
	}
	c.unwanted.Add(-1)
	if n.HasFD {
		_ = Close(n.FD)
	}
	return true
}

// peekNotice waits for the next datagram on c and returns a buffer that
// holds it whole (at most maxNotice bytes), looking at it without taking
// it.
func (c *Conn) peekNotice() ([]byte, error) {
	buf := make([]byte, firstNotice)
	for {
		r, err := c.recv(buf, nil, recvPeek)
		if err != nil || !r.DataTruncated || len(buf) >= maxNotice {
			return buf, err
		}
		buf = make([]byte, min(2*len(buf), maxNotice))
	}
}

// parseWhole is ParseNotice of a notice received into b, which refuses
// one that did not fit (truncated): what was cut may still decode, with
// fields missing or short.
func parseWhole(b []byte, truncated bool) (Notice, error) {
	if truncated {
		return Notice{}, fmt.Errorf("sandboxd: a supervisor notice did not fit in %d bytes and was dropped: it is longer than the %d bytes a notice can be, or something other than RecvNotice read the channel meanwhile (read notices with RecvNotice only)", len(b), maxNotice)
	}
	return ParseNotice(b)
}
