package audit

import (
	"errors"
	"fmt"
	"net"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/sandboxd/sandboxd/caps"
)

// Node is one capability of a Graph.
type Node struct {
	CapRecord
	Revoked bool `json:"revoked,omitempty"`
	Closed  bool `json:"closed,omitempty"`

	children map[string]*Node
	sorted   []*Node // children by id; nil when to be sorted again
	parent   *Node
}

// HolderInfo is what the log says of a holder that is a launched guest.
type HolderInfo struct {
	ID        string `json:"id"`
	Module    string `json:"module,omitempty"`
	SHA256    string `json:"sha256,omitempty"`
	Principal string `json:"principal,omitempty"`
	// UID is the launcher's uid (a spawned child's: its tree's
	// launcher's); absent in checkpoints written before it was kept.
	UID    *uint32           `json:"uid,omitempty"`
	Labels map[string]string `json:"labels,omitempty"`
	// Parent is the guest that spawned it, for a spawned child
	// (proc_spawn): a guest-spawn record names it.
	Parent  string `json:"parent,omitempty"`
	Running bool   `json:"running"`
}

// Graph is the capability graph: every capability still tracked (open,
// or with open descendants, as caps.Kernel.Snapshot has it), with its
// parent, holder, rights and provenance, and the launched guests.
//
// A graph replayed from a log (Apply each record, or Replay) equals the
// graph built from the kernel's Snapshot at the same point: the log
// records every change the kernel makes to it.
type Graph struct {
	nodes   map[string]*Node
	rootSet map[string]*Node // the nodes with no parent in the graph
	// gone holds the capabilities closed and forgotten lately, in case a
	// late record names them; early the ids a revocation's receipt named
	// before their own record arrived (see add). Records cross only with
	// records near them, so each keeps its recent entries only.
	gone    recent[*Node]
	early   recent[bool]
	holders map[string]*HolderInfo
	// spawned is, for each guest, the ids of the children it spawned
	// (HolderInfo.Parent), so that its exit ends them without a walk
	// over every holder (ended).
	spawned map[string][]string
	// shut is set by a shutdown record: nothing of the writer's run is
	// live, and records until its next open (a late one the shutdown
	// crossed) change nothing.
	shut bool
	// named is, for each declared resource granted by name (dir:reports,
	// sock:db), the resources its grants opened ("dir /srv/reports"):
	// kept when those grants end, and across runs of the writer, so that
	// who-can finds it by name afterwards (pathsOf).
	named map[string]map[string]bool
	// Last is the time of the last record applied, zero for a live graph.
	Last time.Time
}

// NewGraph returns an empty graph.
func NewGraph() *Graph {
	return &Graph{nodes: map[string]*Node{}, rootSet: map[string]*Node{}, holders: map[string]*HolderInfo{}, spawned: map[string][]string{}, named: map[string]map[string]bool{}}
}

// Declare notes that the resource a grant of source (KIND:NAME, a
// declared resource's name) opens is resource ("dir /srv/reports", "sock
// tcp 10.0.0.5:5432"): who-can finds it by name there. A graph declares
// what its grants opened itself; the daemon declares its policy's
// resources too.
func (g *Graph) Declare(source, resource string) {
	if g.named[source] == nil {
		g.named[source] = map[string]bool{}
	}
	g.named[source][resource] = true
}

// declareGrant notes where grant n, if it names a declared resource,
// opened it.
func (g *Graph) declareGrant(n *Node) {
	if n.Edge != "grant" || n.Resource == "" {
		return
	}
	if kind, src := grantSource(n.Origin); namesResource(kind, src) {
		g.Declare(kind+":"+src, n.Resource)
	}
}

// namesResource reports whether KIND:src names a declared resource of a
// policy, not a host path (which has a slash) or a socket's address
// (inline, tcp:HOST:PORT or unix:PATH, or as a capability's resource
// reads, "tcp HOST:PORT"): the grants and the who-can queries that name
// one are told apart from the others the same way.
func namesResource(kind, src string) bool {
	switch kind {
	case "dir", "file":
		return src != "" && !strings.Contains(src, "/")
	case "sock", "listen":
		return src != "" && !inlineSocket(src) && !strings.Contains(src, " ")
	}
	return false
}

// FromSnapshot builds the graph of a live kernel from its Snapshot and
// the guests the supervisor knows.
func FromSnapshot(infos []caps.Info, holders []HolderInfo) *Graph {
	nodes := make([]Node, len(infos))
	for i, in := range infos {
		nodes[i] = Node{CapRecord: FromInfo(in), Revoked: in.Revoked, Closed: in.Closed}
	}
	return FromNodes(nodes, holders)
}

// FromNodes builds a graph of nodes, parents before children (as a
// Snapshot lists them), and holders: FromSnapshot with what the
// supervisor adds to the kernel's descriptions (CapRecord.ChanEnd,
// InFlight).
func FromNodes(nodes []Node, holders []HolderInfo) *Graph {
	g := NewGraph()
	for _, n := range nodes {
		g.add(n)
	}
	for i := range holders {
		g.addHolder(holders[i])
	}
	return g
}

// addHolder adds h to the holders, and to its parent's children.
func (g *Graph) addHolder(h HolderInfo) {
	g.holders[h.ID] = &h
	if h.Parent != "" {
		g.spawned[h.Parent] = append(g.spawned[h.Parent], h.ID)
	}
}

// Replay builds the graph of the log at path as of time at (every record
// up to it); a zero at replays the whole log. Past the records a prune
// removed it goes on from their checkpoint; a time among them is refused.
func Replay(path string, at time.Time) (*Graph, error) {
	return again(func() (*Graph, error) { return replay(path, at) })
}

func replay(path string, at time.Time) (*Graph, error) {
	cp, cpSum, err := ReadCheckpoint(path)
	if err != nil {
		return nil, err
	}
	g := NewGraph()
	var last, skip uint64 // skip: records the checkpoint stands for
	err = scanChecked(path, cp, cpSum, func(r Record, _ Pos) error {
		if cp != nil && last+1 == cp.FromSeq && r.Seq > cp.FromSeq && skip == 0 {
			if err := cp.resumeAt(path, r.Seq, at); err != nil {
				return err
			}
			g, skip = cp.graph(), cp.Seq
		}
		if r.Seq <= skip {
			return nil // still there: a prune cut short, or under way
		}
		if !at.IsZero() && r.Time.After(at) {
			return errStop
		}
		g.Apply(r)
		last = r.Seq
		return nil
	})
	return g, err
}

// resumeAt says whether a replay as of at can go on from the checkpoint
// at record seq, the first after the first file: nil when it can,
// errStop when at is before the records it stands for (the graph is the
// first file's), or why not.
func (cp *Checkpoint) resumeAt(path string, seq uint64, at time.Time) error {
	switch {
	case seq > cp.Seq+1:
		return fmt.Errorf("audit log %s: records %d to %d are missing, and its checkpoint stands only for %d to %d: the log was %w, or files were removed by hand (check it with sandboxd audit verify)", path, cp.Seq+1, seq-1, cp.FromSeq, cp.Seq, errPrunedMeanwhile)
	case at.IsZero():
		return nil
	case at.Before(cp.FromTime):
		return errStop
	case at.Before(cp.Time):
		return removedAt(cp, at)
	}
	return nil
}

// removedAt is the error of a graph asked as of a time whose records a
// prune removed.
func removedAt(cp *Checkpoint, at time.Time) error {
	return fmt.Errorf("the audit log's records from %s to %s (seq %d to %d) were removed to keep it within --audit-max-size, and %s falls among them: ask for a time the log still covers, before or after them",
		cp.FromTime.Format(time.RFC3339Nano), cp.Time.Format(time.RFC3339Nano), cp.FromSeq, cp.Seq, at.Format(time.RFC3339Nano))
}

// Apply changes the graph as record r says.
func (g *Graph) Apply(r Record) {
	g.Last = r.Time
	if g.shut && r.Type != TypeOpen {
		return
	}
	switch r.Type {
	case TypeOpen:
		// A new run of the writer: nothing of the previous one lives on
		// but where its grants opened named resources.
		named := g.named
		*g = *NewGraph()
		g.Last, g.named = r.Time, named
	case TypeShutdown:
		// The writer killed every guest and closed every capability.
		named := g.named
		*g = *NewGraph()
		g.Last, g.shut, g.named = r.Time, true, named
	case TypeGrant, TypeCreate, TypeDerive, TypeDelegate, TypeSpawn:
		if r.Cap != nil {
			g.add(Node{CapRecord: *r.Cap})
		}
	case TypeAdopt, TypeNarrow:
		if n := g.node(r.Cap); n != nil {
			n.Holder, n.Base, n.Inheriting = r.Cap.Holder, r.Cap.Base, r.Cap.Inheriting
			if r.Type == TypeAdopt {
				n.InFlight = nil // received
			}
		}
	case TypeClose:
		if n := g.node(r.Cap); n != nil {
			n.Closed = true
			g.splice(n)
			g.prune(n)
		}
	case TypeRevoke:
		g.revoke(r.Receipt)
	case TypeGuestStart, TypeGuestExit, TypeGuestExec, TypeGuestSpawn:
		g.guest(r)
	}
}

func (g *Graph) node(c *CapRecord) *Node {
	if c == nil {
		return nil
	}
	return g.nodes[c.ID]
}

// add links a capability into the graph. The kernel records a change
// after making it, outside its lock, so the records of two concurrent
// changes can arrive in the other order: a derivation after the close
// that forgot its parent (the parent is taken back from gone), or after
// the revocation that cut it off (its id was in the receipt: early). The
// parent is looked up before the node is entered, so that a record naming
// itself as its own parent (which only a corrupt or forged log holds)
// cannot make a node its own ancestor.
func (g *Graph) add(n Node) {
	nn := &n
	nn.children = map[string]*Node{}
	if g.early.get(n.ID) {
		nn.Revoked = true
		g.early.remove(n.ID)
	}
	var p *Node
	if n.Parent != "" {
		p = g.parentOf(n.Parent)
	}
	g.nodes[n.ID] = nn
	g.declareGrant(nn)
	if p == nil {
		g.rootSet[n.ID] = nn
		return
	}
	nn.parent = p
	p.children[n.ID], p.sorted = nn, nil
}

// parentOf returns the node of capability id for a child being added: the
// one in the graph, or one an earlier record closed and forgot while the
// kernel linked this child first (their records crossed), taken back; if
// the kernel spliced that one out as it closed it, the child is its
// parent's. nil if there is none.
func (g *Graph) parentOf(id string) *Node {
	if p := g.nodes[id]; p != nil {
		return p
	}
	p := g.gone.get(id)
	for p != nil && spliced(p) {
		p = p.parent
	}
	for x := p; x != nil && g.nodes[x.ID] == nil; x = x.parent {
		g.nodes[x.ID] = x
		g.gone.remove(x.ID)
		if x.parent == nil {
			g.rootSet[x.ID] = x
		} else {
			x.parent.children[x.ID], x.parent.sorted = x, nil
		}
	}
	return p
}

// splice gives the children of n, just closed, to n's parent when the
// kernel does (caps.Kernel.Close): n is a copy made within its holder
// (dup) or opened beneath its parent (open).
func (g *Graph) splice(n *Node) {
	if !spliced(n) {
		return
	}
	p := n.parent
	for id, c := range n.children {
		c.parent, c.Parent = p, p.ID
		p.children[id] = c
		delete(n.children, id)
	}
	p.sorted, n.sorted = nil, nil
}

// spliced reports whether the kernel gives n's children to n's parent
// when n is closed.
func spliced(n *Node) bool {
	e, ok := caps.EdgeNamed(n.Edge)
	return n.Closed && n.parent != nil && ok && e.SplicedOnClose()
}

// prune forgets closed capabilities nothing tracked descends from,
// walking up from n, as the kernel does.
func (g *Graph) prune(n *Node) {
	for n != nil && n.Closed && len(n.children) == 0 && g.nodes[n.ID] == n {
		delete(g.nodes, n.ID)
		delete(g.rootSet, n.ID)
		g.gone.put(n.ID, n)
		p := n.parent
		if p != nil {
			delete(p.children, n.ID)
			p.sorted = nil
		}
		n = p
	}
}

func (g *Graph) revoke(r *ReceiptRecord) {
	if r == nil {
		return
	}
	for _, id := range r.Revoked {
		if n := g.nodes[id]; n != nil {
			n.Revoked = true
		} else {
			g.early.put(id, true)
		}
	}
}

func (g *Graph) guest(r Record) {
	gr := r.Guest
	if gr == nil {
		return
	}
	switch h := g.holders[gr.ID]; {
	case r.Type == TypeGuestExit && h != nil:
		g.ended(gr.ID)
		return
	case r.Type == TypeGuestExec && h != nil:
		h.Module, h.SHA256 = gr.Module, gr.SHA256
		return
	case r.Type != TypeGuestStart && r.Type != TypeGuestSpawn:
		return
	}
	uid := gr.UID
	g.addHolder(HolderInfo{ID: gr.ID, Module: gr.Module, SHA256: gr.SHA256, Principal: gr.Principal, UID: &uid, Labels: gr.Labels, Parent: gr.Parent, Running: true})
}

// ended marks guest id, and the guests it spawned, as no longer running:
// a spawned child ends no later than its parent, and its own end is not
// recorded.
func (g *Graph) ended(id string) {
	g.holders[id].Running = false
	for _, c := range g.spawned[id] {
		if h := g.holders[c]; h != nil && h.Parent == id && h.Running {
			g.ended(c)
		}
	}
}

// recentWindow is how many entries a recent map keeps at least: far more
// than the records that can cross, which are those of operations in
// progress at the same time.
const recentWindow = 4096

// recent is a map that forgets its older entries: between recentWindow
// and twice as many are kept.
type recent[V any] struct {
	now, old map[string]V
}

func (r *recent[V]) put(k string, v V) {
	if r.now == nil || len(r.now) >= recentWindow {
		r.old, r.now = r.now, make(map[string]V)
	}
	r.now[k] = v
}

func (r *recent[V]) get(k string) V {
	if v, ok := r.now[k]; ok {
		return v
	}
	return r.old[k]
}

func (r *recent[V]) remove(k string) {
	delete(r.now, k)
	delete(r.old, k)
}

// Nodes returns every capability of the graph, parents before children,
// each level in id order.
func (g *Graph) Nodes() []*Node {
	var out []*Node
	for _, r := range g.roots() {
		walkDown(r, func(path []*Node) bool {
			out = append(out, path[len(path)-1])
			return true
		})
	}
	return out
}

// walkDown visits n and what descends from it depth-first, parents before
// children and each level in id order. visit is given the path from n to
// the node it visits, that node last; when it returns false, the node's
// children are skipped. It keeps its own stack rather than recursing: a
// guest can make a derivation chain as long as it likes.
func walkDown(n *Node, visit func(path []*Node) bool) {
	type frame struct {
		kids []*Node
		next int
	}
	path := []*Node{n}
	if !visit(path) {
		return
	}
	stack := []frame{{kids: sortedChildren(n)}}
	for len(stack) > 0 {
		f := &stack[len(stack)-1]
		if f.next == len(f.kids) {
			stack, path = stack[:len(stack)-1], path[:len(path)-1]
			continue
		}
		c := f.kids[f.next]
		f.next++
		if path = append(path, c); visit(path) {
			stack = append(stack, frame{kids: sortedChildren(c)})
		} else {
			path = path[:len(path)-1]
		}
	}
}

func (g *Graph) roots() []*Node {
	out := make([]*Node, 0, len(g.rootSet))
	for _, n := range g.rootSet {
		out = append(out, n)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

func sortedChildren(n *Node) []*Node {
	if n.sorted == nil && len(n.children) > 0 {
		n.sorted = make([]*Node, 0, len(n.children))
		for _, c := range n.children {
			n.sorted = append(n.sorted, c)
		}
		sort.Slice(n.sorted, func(i, j int) bool { return n.sorted[i].ID < n.sorted[j].ID })
	}
	return n.sorted
}

// Node returns the capability with id.
func (g *Graph) Node(id string) (*Node, bool) {
	n, ok := g.nodes[id]
	return n, ok
}

// Holder returns what the graph knows of a holder, or a bare entry.
func (g *Graph) Holder(id string) HolderInfo {
	if h := g.holders[id]; h != nil {
		return *h
	}
	return HolderInfo{ID: id}
}

// Holders returns the launched guests the graph knows, by id.
func (g *Graph) Holders() []HolderInfo {
	out := make([]HolderInfo, 0, len(g.holders))
	for _, h := range g.holders {
		out = append(out, *h)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// live reports whether n is still usable by its holder.
func (n *Node) live() bool { return !n.Revoked && !n.Closed }

// Step is one capability on a chain from a root to a capability.
type Step struct {
	Cap     string `json:"cap"`
	Holder  string `json:"holder"` // "" while in flight
	Module  string `json:"module,omitempty"`
	Edge    string `json:"edge"`
	Kind    string `json:"kind"`
	Name    string `json:"name,omitempty"`
	Rights  string `json:"rights"`
	Removed string `json:"removed,omitempty"`
	Origin  string `json:"origin,omitempty"`
	// By and ByUID: who made the grant of a root step (CapRecord.By).
	By       string  `json:"by,omitempty"`
	ByUID    *uint32 `json:"by_uid,omitempty"`
	Resource string  `json:"resource,omitempty"`
	Revoked  bool    `json:"revoked,omitempty"`
	Closed   bool    `json:"closed,omitempty"`
	// InFlight and Receivers are, for a step in flight on a channel,
	// where it will arrive and the holders who can receive it (Reach's).
	InFlight  *ChanEnd   `json:"in_flight,omitempty"`
	Receivers []Receiver `json:"receivers,omitempty"`
}

// notInGraph is the error of a query about a capability the graph does
// not hold. One that every holder has closed (every capability of a run
// that has ended) is in the graph as of a time it was held.
func notInGraph(id string) error {
	return fmt.Errorf("no capability %s in the graph: it never existed, or every holder has closed it: ask as of a time it was held with --at (sandboxd audit log --cap %s shows when)", id, id)
}

// Trace returns how the holder of cap id got it: the chain of
// capabilities from the grant (or creation) it derives from down to it.
func (g *Graph) Trace(id string) ([]Step, error) {
	n := g.nodes[id]
	if n == nil {
		return nil, notInGraph(id)
	}
	ends := g.receivers()
	var chain []Step
	for x := n; x != nil; x = x.parent {
		chain = append(chain, g.step(x, ends))
	}
	for i, j := 0, len(chain)-1; i < j; i, j = i+1, j-1 {
		chain[i], chain[j] = chain[j], chain[i]
	}
	return chain, nil
}

// step is n as a step of a chain, its receivers found in ends.
func (g *Graph) step(n *Node, ends map[ChanEnd][]string) Step {
	s := Step{
		Cap: n.ID, Holder: n.Holder, Module: g.Holder(n.Holder).Module, Edge: n.Edge, Kind: n.Kind,
		Name: n.Name, Rights: n.Base, Removed: n.Removed, Origin: n.Origin, By: n.By, ByUID: n.ByUID,
		Resource: n.Resource, Revoked: n.Revoked, Closed: n.Closed,
	}
	if n.Holder == "" {
		s.InFlight, s.Receivers = n.InFlight, g.receiversIn(n, ends)
	}
	return s
}

// Reach is one holder that can reach a resource: the capability it holds
// and the chain that capability came down.
type Reach struct {
	Holder string `json:"holder"` // "" while in flight
	Module string `json:"module,omitempty"`
	Cap    string `json:"cap"`
	Rights string `json:"rights"`
	Chain  []Step `json:"chain"`
	// InFlight is, for a capability sent on a channel and not yet
	// received, where it will arrive; Receivers the holders of that end
	// of the channel, who can receive it.
	InFlight  *ChanEnd   `json:"in_flight,omitempty"`
	Receivers []Receiver `json:"receivers,omitempty"`
}

// Receiver is a holder that can receive a capability in flight, and the
// module it runs.
type Receiver struct {
	Holder string `json:"holder"`
	Module string `json:"module,omitempty"`
}

// receiversIn is the receivers among ends of n, a capability in flight,
// with their modules.
func (g *Graph) receiversIn(n *Node, ends map[ChanEnd][]string) []Receiver {
	var out []Receiver
	for _, h := range receiversOf(n, ends) {
		out = append(out, Receiver{Holder: h, Module: g.Holder(h).Module})
	}
	return out
}

// receivers are the holders of each channel end: of the live
// capabilities on it (CapRecord.ChanEnd), in id order, each once.
func (g *Graph) receivers() map[ChanEnd][]string {
	out := map[ChanEnd][]string{}
	seen := map[ChanEnd]map[string]bool{}
	for _, n := range g.Nodes() {
		if n.ChanEnd == nil || n.Holder == "" || !n.live() {
			continue
		}
		e := ChanEnd{Chan: n.ChanEnd.Chan, Side: n.ChanEnd.Side}
		if seen[e] == nil {
			seen[e] = map[string]bool{}
		}
		if !seen[e][n.Holder] {
			seen[e][n.Holder] = true
			out[e] = append(out[e], n.Holder)
		}
	}
	for _, hs := range out {
		sort.Strings(hs)
	}
	return out
}

// receiversOf is who can receive n, a capability in flight on a channel:
// the holders of the end it was sent to; nil for any other, or one whose
// record does not say where it is (a log from before it did).
func receiversOf(n *Node, ends map[ChanEnd][]string) []string {
	if n.Holder != "" || n.InFlight == nil {
		return nil
	}
	return ends[ChanEnd{Chan: n.InFlight.Chan, Side: n.InFlight.Side}]
}

// WhoCan lists every live capability (not revoked, not closed) through
// which its holder can reach resource, each with its chain back to the
// grant. resource is what a grant names ("sock:db", "dir:/srv/data"), a
// capability's resource description ("dir /srv/data"), or a host path: a
// directory capability reaches every path beneath it where the symbolic
// links on the way lead.
func (g *Graph) WhoCan(resource string) []Reach {
	q := parseResource(resource)
	paths := g.pathsOf(q)
	ends := g.receivers()
	var out []Reach
	// Depth-first from each root, with the chain down to each capability
	// at hand: no capability is walked twice.
	for _, r := range g.roots() {
		named := r.Edge == "grant" && grantSourceOf(r.Origin) == q.text // the root is a grant of the resource q names
		walkDown(r, func(chain []*Node) bool {
			n := chain[len(chain)-1]
			if n.live() && (reaches(n, chain[0], named, q) || reachesAny(n, chain[0], paths)) {
				steps := make([]Step, len(chain))
				for i, x := range chain {
					steps[i] = g.step(x, ends)
				}
				out = append(out, Reach{Holder: n.Holder, Module: g.Holder(n.Holder).Module, Cap: n.ID, Rights: n.Base, Chain: steps,
					InFlight: n.InFlight, Receivers: g.receiversIn(n, ends)})
			}
			return true
		})
	}
	return out
}

// pathsOf is, for q naming a declared dir or file (dir:reports), a query
// for each host path the graph's grants of that name opened: the resource
// is reached where its path is, by a grant of the path or of a directory
// above it too.
//
// Likewise a socket asked for by name (sock:db) is reached at each
// address the grants of that name connected to, dialed or were bound at.
func (g *Graph) pathsOf(q *resourceQuery) []*resourceQuery {
	var at func(kind, loc string) []string
	switch {
	case (q.kind == "dir" || q.kind == "file") && !strings.HasPrefix(q.loc, "/"):
		at = func(kind, loc string) []string {
			if kind != q.kind || !strings.HasPrefix(loc, "/") {
				return nil
			}
			return []string{kind + ":" + loc}
		}
	case isSocketKind(q.kind) && !strings.Contains(q.loc, " "):
		at = func(kind, loc string) []string {
			var out []string
			for _, a := range socketAddrs(loc, false) { // a grant's: no accepted connection
				out = append(out, kind+" "+a)
			}
			return out
		}
	default:
		return nil
	}
	var out []*resourceQuery
	seen := map[string]bool{}
	for _, res := range sortedKeys(g.named[q.text]) {
		kind, loc, _ := strings.Cut(res, " ")
		for _, r := range at(kind, loc) {
			if !seen[r] {
				seen[r] = true
				pq := parseResource(r)
				pq.reals = q.reals
				out = append(out, pq)
			}
		}
	}
	return out
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// byUnknownName is the error of who-can asked for a declared resource by
// a name no grant in the graph had (nor, live, the daemon's policy
// declares), or nil: nobody could be found reaching it, whoever does.
func (g *Graph) byUnknownName(resource string) error {
	q := parseResource(resource)
	if !namesResource(q.kind, strings.TrimPrefix(q.text, q.kind+":")) || len(g.named[q.text]) > 0 {
		return nil
	}
	return fmt.Errorf("who-can %s: no grant of %s is in the graph (nor, asked of the daemon, a resource of that name in its policy), so where it is is not known: ask by its path or address (dir:/srv/…, sock:tcp:HOST:PORT), or with --at a time its grants were made", resource, q.text)
}

// reachesAny reports whether capability n, derived from root, reaches
// the resource at one of paths.
func reachesAny(n, root *Node, paths []*resourceQuery) bool {
	for _, q := range paths {
		if reaches(n, root, false, q) {
			return true
		}
	}
	return false
}

// resourceQuery is a resource to look for: kind ("" for any) and where.
type resourceQuery struct {
	kind, loc, text string
	// reals are host paths with their symbolic links resolved
	// (caps.RealPath), looked up once each: loc's, and those of the
	// capabilities' resources.
	reals map[string]string
}

func parseResource(s string) *resourceQuery {
	s = strings.TrimSpace(s)
	q := &resourceQuery{loc: s, text: s, reals: map[string]string{}}
	if strings.HasPrefix(s, "/") {
		q.loc = path.Clean(s)
		return q
	}
	for _, sep := range []string{":", " "} {
		if k, loc, ok := strings.Cut(s, sep); ok && isKindName(k) {
			if strings.HasPrefix(loc, "/") {
				loc = path.Clean(loc)
			}
			q.kind, q.loc, q.text = k, loc, k+":"+loc
			if isSocketKind(k) {
				q.loc = socketLoc(k, loc)
			}
			return q
		}
	}
	return q
}

// isSocketKind reports whether k is a kind of socket capability, whose
// resource is an address ("sock tcp HOST:PORT", "listen unix PATH").
func isSocketKind(k string) bool { return k == "sock" || k == "listen" || k == "dial" }

// socketLoc is the address a sock, listen or dial query names, as a
// capability's resource writes it ("tcp HOST:PORT", "unix PATH"): given
// as a grant names it inline (tcp:HOST:PORT, unix:PATH, a listener's bare
// HOST:PORT) or as a resource reads. Anything else (a resource's name)
// is loc as it is.
func socketLoc(kind, loc string) string {
	for _, sep := range []string{":", " "} {
		if n, a, ok := strings.Cut(loc, sep); ok && (n == "tcp" || n == "unix") {
			if strings.HasPrefix(a, "/") {
				a = path.Clean(a)
			}
			return n + " " + a
		}
	}
	if kind == "listen" && strings.Contains(loc, ":") {
		return "tcp " + loc
	}
	return loc
}

// socketAddrs are the addresses a socket capability's resource address
// (loc, "tcp NAME:PORT (IP, IP)" for a dialer of a name and its
// connections) reaches: as named and at each address the name resolved
// to. An accepted connection ("… from PEER"; accepted, its record's edge
// says so) reaches no address anyone could ask for: nil. A unix address
// is a path as it is, whatever it holds: only a tcp dialer's name
// resolves, and a unix path may hold " (" or " from ".
func socketAddrs(loc string, accepted bool) []string {
	network, rest, _ := strings.Cut(loc, " ")
	switch {
	case accepted || network == "tcp" && strings.Contains(rest, " from "):
		// An accepted connection, or a tcp address with a peer's
		// " from " (a tcp address holds no space): no address anyone
		// could ask for.
		return nil
	case network == "unix":
		return []string{loc}
	}
	addr, ips, resolved := strings.Cut(rest, " (")
	out := []string{network + " " + addr}
	_, port, err := net.SplitHostPort(addr)
	if !resolved || err != nil {
		return out
	}
	for _, ip := range strings.Split(strings.TrimSuffix(ips, ")"), ", ") {
		out = append(out, network+" "+net.JoinHostPort(ip, port))
	}
	return out
}

// accepted reports whether n is an accepted connection, or a copy of one:
// it, or an ancestor with its resource, was made by an accept edge.
func accepted(n *Node) bool {
	for x := n; x != nil && x.Resource == n.Resource; x = x.parent {
		if x.Edge == "accept" {
			return true
		}
	}
	return false
}

// reachesSocket reports whether socket capability n, of kind at loc (its
// resource), reaches the address socket query q names: a connection or a
// dialer the address it connects to, a listener the one it is bound at;
// a unix socket's path as named or where its links lead.
func reachesSocket(n *Node, kind, loc string, q *resourceQuery) bool {
	if q.kind == "listen" != (kind == "listen") || !isSocketKind(kind) {
		return false
	}
	for _, a := range socketAddrs(loc, accepted(n)) {
		if a == q.loc {
			return true
		}
		p, isUnix := strings.CutPrefix(a, "unix /")
		qp, qUnix := strings.CutPrefix(q.loc, "unix /")
		if isUnix && qUnix && q.real("/"+p) == q.real("/"+qp) {
			return true
		}
	}
	return false
}

// AbsResource is who-can's RESOURCE s with a relative host path in it
// made absolute by abs (filepath.Abs, where the one asking is): a dir or
// file source with a "/" (dir:./data, as a grant names it), a sock or
// listen unix path (listen:unix:./l.sock, "listen unix l.sock"), or a
// path with no kind (data/q1.csv, ./data). The query compares absolute
// paths, and a log's grant texts may be relative to where they were made.
// Anything else is s as it is.
func AbsResource(s string, abs func(string) (string, error)) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" || strings.HasPrefix(s, "/") {
		return s, nil
	}
	for _, sep := range []string{":", " "} {
		k, loc, ok := strings.Cut(s, sep)
		if !ok || !isKindName(k) {
			continue
		}
		prefix, p := k+sep, loc
		switch {
		case k == "dir" || k == "file":
			if !strings.Contains(p, "/") {
				return s, nil // a declared resource's name
			}
		case k == "sock" || k == "listen":
			rest, ok := strings.CutPrefix(loc, "unix"+sep)
			if !ok || strings.HasPrefix(rest, "@") {
				return s, nil // a name, an address, an abstract socket
			}
			prefix, p = prefix+"unix"+sep, rest
		default:
			return s, nil
		}
		if strings.HasPrefix(p, "/") {
			return s, nil
		}
		a, err := abs(p)
		return prefix + a, err
	}
	if !strings.Contains(s, "/") {
		return s, nil // a name, not a path
	}
	return abs(s)
}

// real is host path p with its symbolic links resolved, as far as they
// are on this host: a capability opened through a link reaches where it
// leads.
func (q *resourceQuery) real(p string) string {
	r, ok := q.reals[p]
	if !ok {
		r = caps.RealPath(p)
		q.reals[p] = r
	}
	return r
}

// within reports whether q's host path is dir or beneath it where their
// links lead: a path through a link beneath dir that leads out of it is
// not within, as the kernel opens nothing through such a link.
func (q *resourceQuery) within(dir string) bool {
	return beneath(q.real(q.loc), q.real(dir))
}

// reaches reports whether capability n, derived from root, reaches q:
// the same resource, a directory above it, or a copy of a grant of the
// same named resource (named: root is such a grant).
func reaches(n, root *Node, named bool, q *resourceQuery) bool {
	kind, loc, _ := strings.Cut(n.Resource, " ")
	sameKind := q.kind == "" || q.kind == kind
	hostPath := strings.HasPrefix(q.loc, "/") && strings.HasPrefix(loc, "/")
	if sameKind && (loc == q.loc || hostPath && q.real(loc) == q.real(q.loc)) {
		return true
	}
	if kind == "dir" && hostPath && (q.kind == "" || q.kind == "dir" || q.kind == "file") && q.within(loc) {
		return true
	}
	if isSocketKind(q.kind) && reachesSocket(n, kind, loc, q) {
		return true
	}
	if q.kind == "" && strings.HasPrefix(q.loc, "/") && isSocketKind(kind) {
		// A host path may be a unix socket's file: whatever connects to
		// it or listens at it reaches it.
		uq := *q
		uq.kind, uq.loc = kind, "unix "+q.loc
		return reachesSocket(n, kind, loc, &uq)
	}
	// A capability derived for a new resource (a file opened beneath a
	// granted directory) is not the grant's resource.
	return named && root.Resource == n.Resource
}

// isKindName reports whether k names a kind of capability (caps.Kind):
// every kind there is, up to the first number caps has no name for, so
// that a kind added later (as dial and service were) is one too.
func isKindName(k string) bool {
	for i := caps.KindDirectory; !strings.HasPrefix(i.String(), "kind("); i++ {
		if i.String() == k {
			return true
		}
	}
	return false
}

func beneath(p, dir string) bool {
	return dir != "" && (p == dir || strings.HasPrefix(p, strings.TrimSuffix(dir, "/")+"/"))
}

// grantSourceOf is the KIND:SOURCE a grant's text names, without its
// guest name and :ro ("dir:/srv/data=data:ro" → "dir:/srv/data").
func grantSourceOf(origin string) string {
	k, src := grantSource(origin)
	if strings.HasPrefix(src, "/") {
		src = path.Clean(src)
	}
	return k + ":" + src
}

// Cut is what revoking a capability would cut off.
type Cut struct {
	Root    string   `json:"root"`
	Revoked []string `json:"revoked"` // every capability, root first
	Holders []string `json:"holders"` // their holders, in order of first appearance
}

// WhatIf returns what revoking capability id would cut off, without
// doing it: id and everything derived from it not already revoked, and
// their holders (the receipt Revoke would give).
func (g *Graph) WhatIf(id string) (Cut, error) {
	n := g.nodes[id]
	if n == nil {
		return Cut{}, notInGraph(id)
	}
	cut := Cut{Root: id, Revoked: []string{}, Holders: []string{}}
	seen := map[string]bool{}
	walkDown(n, func(path []*Node) bool {
		x := path[len(path)-1]
		if x.Revoked {
			return false
		}
		cut.Revoked = append(cut.Revoked, x.ID)
		if x.Holder != "" && !seen[x.Holder] {
			seen[x.Holder] = true
			cut.Holders = append(cut.Holders, x.Holder)
		}
		return true
	})
	return cut, nil
}

// Query kinds of Answer.
const (
	QueryGraph  = "graph"
	QueryWhoCan = "who-can"
	QueryTrace  = "trace"
	QueryWhatIf = "what-if"
)

// Answer answers one query on the graph with its JSON document: a
// GraphDoc for QueryGraph, a []Reach for QueryWhoCan, a []Step for
// QueryTrace, a Cut for QueryWhatIf.
func (g *Graph) Answer(kind, arg string) (any, error) {
	switch kind {
	case QueryGraph:
		return g.Doc(), nil
	case QueryWhoCan:
		if arg == "" {
			return nil, errors.New("who-can: name a resource (sock:db, dir:/srv/data, a host path)")
		}
		if err := g.byUnknownName(arg); err != nil {
			return nil, err
		}
		r := g.WhoCan(arg)
		if r == nil {
			r = []Reach{}
		}
		return r, nil
	case QueryTrace:
		return g.Trace(arg)
	case QueryWhatIf:
		return g.WhatIf(arg)
	}
	return nil, fmt.Errorf("unknown audit query %q: use graph, who-can, trace or what-if", kind)
}

// FromDoc rebuilds the graph a GraphDoc describes.
func FromDoc(d GraphDoc) *Graph {
	g := NewGraph()
	for _, n := range d.Caps { // parents come before children
		g.add(Node{CapRecord: n.CapRecord, Revoked: n.Revoked, Closed: n.Closed})
	}
	for i := range d.Holders {
		g.addHolder(d.Holders[i])
	}
	for src, rs := range d.Named {
		for _, r := range rs {
			g.Declare(src, r)
		}
	}
	if d.At != nil {
		g.Last = *d.At
	}
	return g
}
