package guestrpc

import (
	"fmt"
	"math/rand/v2"
	"testing"

	capnp "capnproto.org/go/capnp/v3"
	"github.com/hashicorp/go-hclog"
	"github.com/sandboxd/sandboxd/caps"
)

// model is what a random delegation sequence has made: every capability
// it derived, each with the one it was derived from, and which were
// revoked by the sequence itself.
type model struct {
	k       *caps.Kernel
	s       *Server
	peers   []*peer
	all     []*caps.Cap
	parent  map[*caps.Cap]*caps.Cap
	revoked map[*caps.Cap]bool
	log     []string
	// clients are the GuestHandles the sequence made; releasing one
	// closes its capability, so they are released at the end.
	clients []capnp.Client
}

// randomRights keeps a random subset of r.
func randomRights(rng *rand.Rand, r caps.Rights) caps.Rights {
	return r & caps.Rights(rng.Uint64())
}

func (m *model) add(parent, c *caps.Cap, op string) {
	m.all = append(m.all, c)
	m.parent[c] = parent
	m.log = append(m.log, fmt.Sprintf("%s %s -> %s", op, parent.ID(), c.ID()))
}

// step applies one random operation to a random capability.
func (m *model) step(t *testing.T, rng *rand.Rand) {
	t.Helper()
	c := m.all[rng.IntN(len(m.all))]
	b, i := c.Rights()
	switch op := rng.IntN(5); op {
	case 0: // narrow: a copy with fewer rights (handOver)
		x, err := m.k.Derive(c, caps.Derivation{Holder: c.Holder(), Edge: caps.EdgeDup, Base: randomRights(rng, b), Inheriting: randomRights(rng, i)})
		if err == nil {
			m.add(c, x, "narrow")
		}
	case 1: // pass in a call: handOver, then what copyMediated does to each capability in a message
		from, to := m.peers[rng.IntN(len(m.peers))], m.peers[rng.IntN(len(m.peers))]
		wrapped, err := m.k.Derive(c, caps.Derivation{Holder: c.Holder(), Edge: caps.EdgeDup, Base: b, Inheriting: i})
		if err != nil {
			return
		}
		m.add(c, wrapped, "handOver")
		cl := newHandleClient(from, wrapped)
		m.clients = append(m.clients, cl)
		got, err := m.s.mediate(cl, crossing{from: from, to: to, charged: from, origin: "property test call"})
		if err == nil {
			v, _ := serverOf(got)
			m.add(wrapped, v.(*handleServer).c, "call")
			m.clients = append(m.clients, got)
		}
	case 2: // pass on a channel: derived in flight, adopted by the receiver
		a, z := caps.NewChannelPair(true, "property")
		x, err := m.k.Derive(c, caps.Derivation{Edge: caps.EdgeDelegate, Base: b, Inheriting: i})
		if err != nil {
			return
		}
		if _, err := a.Send(nil, []*caps.Cap{x}); err != nil {
			t.Fatal(err)
		}
		_, got, _, err := z.Recv(nil, 1, false)
		if err != nil || len(got) != 1 {
			t.Fatalf("recv: %v, %d caps", err, len(got))
		}
		m.k.Adopt(got[0], m.peers[rng.IntN(len(m.peers))].g.Holder())
		m.add(c, got[0], "channel")
	case 3: // spawn: a child guest's copy
		child := &caps.Holder{ID: fmt.Sprintf("child-%d", len(m.all)), Parent: c.Holder()}
		x, err := m.k.Derive(c, caps.Derivation{Holder: child, Edge: caps.EdgeSpawn, Base: b, Inheriting: randomRights(rng, i)})
		if err == nil {
			m.add(c, x, "spawn")
		}
	case 4:
		m.k.Revoke(c, "property test")
		m.revoked[c] = true
		m.log = append(m.log, "revoke "+string(c.ID()))
	}
}

// newHandleClient serves c as a GuestHandle held by p's guest, without
// counting it against p's exports (the model makes its own).
func newHandleClient(p *peer, c *caps.Cap) capnp.Client {
	h, err := newHandle(p, c, p, nil)
	if err != nil {
		panic(err)
	}
	return h
}

// check asserts the invariants: every capability's rights are within its
// parent's, and every descendant of a revoked one is revoked.
func (m *model) check(t *testing.T, seed uint64) {
	t.Helper()
	for _, c := range m.all {
		p := m.parent[c]
		if p == nil {
			continue
		}
		cb, ci := c.Rights()
		pb, pi := p.Rights()
		if !p.Revoked() && (!cb.Subset(pb) || !ci.Subset(pi)) {
			t.Fatalf("seed %d: %s holds %v/%v, wider than its parent %s's %v/%v\n%v", seed, c.ID(), cb, ci, p.ID(), pb, pi, m.log)
		}
		for a := p; a != nil; a = m.parent[a] {
			if m.revoked[a] && c.Check(0, 0) != caps.ENOTCAPABLE {
				t.Fatalf("seed %d: %s still works after its ancestor %s was revoked\n%v", seed, c.ID(), a.ID(), m.log)
			}
		}
	}
}

func TestRandomDelegationSequencesNeverWidenAndRevokeEveryDescendant(t *testing.T) {
	h := newHarness(t, Limits{MaxExports: 1 << 20})
	dir := t.TempDir()
	var peers []*peer
	var roots []*caps.Cap
	for i := 0; i < 3; i++ {
		tp := h.peer(t, "dir:"+dir+"=docs")
		peers = append(peers, &peer{s: h.srv, g: tp.g, log: hclog.NewNullLogger()})
		c, err := tp.g.Handle(tp.fd(t, "docs"))
		if err != nil {
			t.Fatal(err)
		}
		roots = append(roots, c)
	}
	const seeds, steps = 40, 60
	for seed := uint64(1); seed <= seeds; seed++ {
		rng := rand.New(rand.NewPCG(seed, 0))
		m := &model{k: h.sup.Kernel(), s: h.srv, peers: peers, parent: map[*caps.Cap]*caps.Cap{}, revoked: map[*caps.Cap]bool{}}
		// Each sequence starts from a fresh copy of each grant, so that
		// revocations of one sequence do not reach the next.
		for _, r := range roots {
			b, i := r.Rights()
			x, err := m.k.Derive(r, caps.Derivation{Holder: r.Holder(), Edge: caps.EdgeDup, Base: b, Inheriting: i})
			if err != nil {
				t.Fatal(err)
			}
			m.all = append(m.all, x)
		}
		for n := 0; n < steps; n++ {
			m.step(t, rng)
			m.check(t, seed)
		}
		for _, cl := range m.clients {
			cl.Release()
		}
	}
}
