package audit

import "testing"

// A unix socket's path may hold " (" or " from ", which a tcp dialer's
// resource uses for the addresses its name resolved to and an accepted
// connection's for its peer: who-can reads them so only where the record
// says so (a tcp address; a connection an accept edge made), and finds a
// connection to such a path by the path, by sock:unix:PATH and by its
// resource. It cut the path at " (" or took it for an accepted
// connection, and found nobody.
func TestWhoCanFindsAUnixSocketWhosePathReadsAsMore(t *testing.T) {
	for _, p := range []string{"/run/x (1)/s.sock", "/run/a from b/s.sock", "/run/c from /d.sock"} {
		g := FromNodes([]Node{
			{CapRecord: CapRecord{ID: "c1", Kind: "socket", Holder: "g-1", Edge: "grant", Base: "fd_read", Origin: "sock:db", Resource: "sock unix " + p}},
			{CapRecord: CapRecord{ID: "c2", Kind: "listen", Holder: "g-2", Edge: "grant", Base: "sock_accept", Origin: "listen:unix:/run/l.sock", Resource: "listen unix /run/l.sock"}},
			{CapRecord: CapRecord{ID: "c3", Kind: "socket", Holder: "g-2", Parent: "c2", Edge: "accept", Base: "fd_read", Resource: "sock unix /run/l.sock from " + p}},
		}, nil)
		for _, ask := range []string{p, "sock:unix:" + p, "sock unix " + p} {
			r := g.WhoCan(ask)
			if len(r) != 1 || r[0].Cap != "c1" {
				t.Errorf("who-can %q: %+v, want the connection to it (c1) alone", ask, r)
			}
		}
		// The accepted connection reaches no address anyone asks for,
		// not the listener's, nor its peer's.
		if r := g.WhoCan("listen:unix:/run/l.sock"); len(r) != 1 || r[0].Cap != "c2" {
			t.Errorf("who-can of the listener's address: %+v, want the listener (c2) alone", r)
		}
	}
}
