package daemon

import (
	"context"
	"os"
	"sync"

	"github.com/sandboxd/sandboxd/caps"
)

// chanHub joins the guests granted the same channel name (`--grant
// chan:NAME`), two by two, in the order they are granted it: the first
// gets one end of a new datagram channel, and the next guest granted the
// name gets the other end. A third starts a new pair. A guest whose peer
// has gone (exited, or closed its end) reads end-of-file and gets EPIPE
// when it sends. A name whose first grantee closes its end before anyone
// joins, having sent nothing, is forgotten: the next grantee starts a new
// pair.
type chanHub struct {
	mu      sync.Mutex
	waiting map[string]*caps.Channel // the other end of each half-joined pair
}

// join returns this grantee's end of channel name. A new pair's unread
// bytes are charged to charge, its first grantee's user's (nil: none): the
// end waiting for the next grantee keeps what the first wrote, perhaps
// after the first has ended.
func (h *chanHub) join(name string, charge caps.MemoryCharge) *caps.Channel {
	h.mu.Lock()
	defer h.mu.Unlock()
	if end, ok := h.waiting[name]; ok {
		delete(h.waiting, name)
		return end
	}
	if h.waiting == nil {
		h.waiting = make(map[string]*caps.Channel)
	}
	mine, theirs := caps.NewChargedChannelPair(true, "chan "+name, charge)
	h.waiting[name] = theirs
	theirs.OnPeerClose(func(pending bool) {
		if !pending {
			h.forget(name, theirs)
		}
	})
	return mine
}

// forget drops end, which waits for the next grantee of name, if it
// still does.
func (h *chanHub) forget(name string, end *caps.Channel) {
	h.mu.Lock()
	kept := h.waiting[name] == end
	if kept {
		delete(h.waiting, name)
	}
	h.mu.Unlock()
	if kept {
		_ = end.Close()
	}
}

// closeWaiting closes the ends that wait for a next grantee, dropping
// what their first grantees wrote (and its charge).
func (h *chanHub) closeWaiting() {
	h.mu.Lock()
	waiting := h.waiting
	h.waiting = nil
	h.mu.Unlock()
	for _, end := range waiting {
		_ = end.Close()
	}
}

// open sets up what an authorized grant names for principal by: a
// channel end for a chan grant, what Grant.setup opens for the others. ctx
// bounds the name lookups and connections of sock grants. A file a
// :create grant makes is given to by when the daemon runs as root.
func (s *Supervisor) open(ctx context.Context, by Principal, gr Grant) (grantResource, error) {
	if gr.Kind != GrantChan {
		r, err := gr.setup(ctx, s.socketResolver())
		if err == nil && r.created != nil && os.Geteuid() == 0 && (by.UID != 0 || by.GID != 0) {
			if err = r.created.chown(by.UID, by.GID); err != nil {
				_ = r.res.Close()
				r.undoCreate()
				return grantResource{}, &GrantError{Grant: gr, Err: err}
			}
		}
		return r, err
	}
	base, inh := caps.GrantRights(caps.KindChannel, false)
	return grantResource{grant: gr, res: s.chans.join(gr.Source, s.memoryCharge(by.UID)), base: base, inh: inh}, nil
}
