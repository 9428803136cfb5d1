package audit

import (
	"fmt"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sandboxd/sandboxd/caps"
	"github.com/sandboxd/sandboxd/policies"
)

// A suggested policy is the least one (docs/POLICY.md's language) under
// which what the log shows the guests did would have been allowed: one
// grant rule per resource a guest was granted, for its module (by
// SHA-256) and the user that made the grant (who launched it, for a
// grant at launch), with the rights it was given;
// one delegate rule per resource a guest passed on, with the depth and
// live copies it reached, the rights it passed and, when every recipient
// was a launched guest, their modules. Anything else is denied by
// default.

// usage is what the log shows of the guests.
type usage struct {
	guests map[string]*GuestRecord
	caps   map[string]*CapRecord // every capability ever recorded
	grants map[grantKey]*grantUse
	dels   map[delKey]*delUse
	live   map[string]map[string]bool // root → its passed-on copies alive
	kids   map[string]int             // capability → its children still tracked
	closed map[string]bool            // closed, but with children still tracked
	order  []any                      // grant and delegate uses, first seen first
	// decided is the lease of the last grant the policy allowed, by the
	// module's sha256 and the resource: the grant record follows it.
	decided map[decidedKey]time.Duration
	// lent is the last delegation the policy allowed, by the capability
	// passed on: the delegate or spawn record follows it.
	lent map[string]*DecisionRecord
	// adopting is the copies delegated to a known recipient that will
	// take them (a guest being launched), and the rules they count for:
	// the adopt record names the recipient.
	adopting map[string]*delUse
	// decls is the resource block of each inline socket's selector, to
	// keep two addresses from sharing one name (usage.selectorOf).
	decls map[string]string
	// clients is the control API's clients that were minted capabilities,
	// as the holders of grants with no module (usage.granted).
	clients map[string]*GuestRecord
}

// decidedKey is what an allowed grant decision was about.
type decidedKey struct{ sha, resource string }

// lease is the longest lease of the grants a rule stands for, or none
// when one of them was not a lease (or no policy decided it).
type lease struct {
	ttl      time.Duration
	unleased bool
}

// add counts one more: its decision's lease, if a decision was recorded.
func (l *lease) add(ttl time.Duration, decided bool) {
	if !decided || ttl <= 0 {
		l.unleased = true
	}
	l.ttl = max(l.ttl, ttl)
}

// text is the rule's ttl attribute, its name padded to width, or "".
func (l *lease) text(width int) string {
	if l.unleased || l.ttl <= 0 {
		return ""
	}
	return fmt.Sprintf("  %-*s = %q\n", width, "ttl", l.ttl.String())
}

type grantKey struct {
	sha, selector string
	uid           uint32
}

type grantUse struct {
	grantKey
	module string
	kind   string
	decl   string // the resource block a named selector needs, or ""
	rights caps.Rights
	lease  lease
}

type delKey struct{ sha, selector string }

type delUse struct {
	delKey
	module    string
	decl      string // the resource block a named selector needs, or ""
	depth     int
	copies    int
	rights    caps.Rights
	to        map[string]bool
	toUnknown bool
	lease     lease
}

// Suggest reads the log at path and returns the least policy that would
// have allowed what guest did (every guest when guest is ""), as HCL
// that policies.Parse loads. A log pruned while it is read is read again.
func Suggest(path, guest string) (string, error) {
	return again(func() (string, error) { return suggest(path, guest) })
}

func suggest(path, guest string) (string, error) {
	u := &usage{
		guests: map[string]*GuestRecord{}, caps: map[string]*CapRecord{},
		grants: map[grantKey]*grantUse{}, dels: map[delKey]*delUse{}, live: map[string]map[string]bool{},
		kids: map[string]int{}, closed: map[string]bool{},
		decided: map[decidedKey]time.Duration{}, lent: map[string]*DecisionRecord{},
		adopting: map[string]*delUse{}, decls: map[string]string{}, clients: map[string]*GuestRecord{},
	}
	cp, cpSum, err := ReadCheckpoint(path)
	if err != nil {
		return "", err
	}
	// A launch's handles are recorded before its guest's start: read the
	// guests first, those a prune removed from the checkpoint.
	u.guestsOf(cp)
	err = scanChecked(path, cp, cpSum, func(r Record, _ Pos) error {
		if (r.Type == TypeGuestStart || r.Type == TypeGuestSpawn) && r.Guest != nil {
			u.guests[r.Guest.ID] = r.Guest
		}
		return nil
	})
	if err == nil {
		err = u.scan(path, cp, cpSum, guest)
	}
	if err != nil {
		return "", err
	}
	if guest != "" && u.guests[guest] == nil {
		return "", fmt.Errorf("guest %s never started in this log: see sandboxd audit log for the guests it holds", guest)
	}
	return u.render(path, guest)
}

// scan applies the log's records; past the records a prune removed, it
// goes on from the checkpoint that stands for them (cp, nil for none),
// as Replay does: what the removed records made that was still tracked
// at the checkpoint counts as if they were there.
func (u *usage) scan(path string, cp *Checkpoint, cpSum, guest string) error {
	var last, skip uint64
	return scanChecked(path, cp, cpSum, func(r Record, _ Pos) error {
		if cp != nil && last+1 == cp.FromSeq && r.Seq > cp.FromSeq && skip == 0 {
			if r.Seq > cp.Seq+1 {
				return fmt.Errorf("audit log %s: records %d to %d are missing, and its checkpoint stands only for %d to %d: the log was %w, or files were removed by hand (check it with sandboxd audit verify)", path, cp.Seq+1, r.Seq-1, cp.FromSeq, cp.Seq, errPrunedMeanwhile)
			}
			u.seed(cp, guest)
			skip = cp.Seq
		}
		if r.Seq <= skip {
			return nil // still there: a prune cut short, or under way
		}
		u.apply(r, guest)
		last = r.Seq
		return nil
	})
}

// guestsOf adds the guests a checkpoint's graph knows: those whose start
// a prune removed.
func (u *usage) guestsOf(cp *Checkpoint) {
	if cp == nil {
		return
	}
	for _, h := range cp.Graph.Holders {
		if u.guests[h.ID] != nil || h.SHA256 == "" {
			continue
		}
		g := &GuestRecord{ID: h.ID, Module: h.Module, SHA256: h.SHA256, Principal: h.Principal, Parent: h.Parent}
		if h.UID != nil {
			g.UID = *h.UID
		}
		u.guests[h.ID] = g
	}
}

// seed counts the capabilities of a checkpoint's graph that the records
// read so far did not show, parents first, as their records would have:
// the grants and copies passed on that a prune removed the records of,
// still tracked when it did. Then it brings what the records read so far
// showed to the checkpoint's state (catchUp).
func (u *usage) seed(cp *Checkpoint, guest string) {
	for _, n := range cp.Graph.Caps {
		if u.caps[n.ID] != nil {
			continue
		}
		c := n.CapRecord
		switch c.Edge {
		case "grant":
			u.apply(Record{Type: TypeGrant, Cap: &c}, guest)
		case "delegate", "spawn":
			u.apply(Record{Type: TypeDelegate, Cap: &c}, guest)
		default:
			u.apply(Record{Type: TypeDerive, Cap: &c}, guest)
		}
	}
	u.catchUp(cp, guest)
}

// catchUp makes what the records before a checkpoint showed what the
// checkpoint's graph says it was when the removed records ended: a copy
// adopted meanwhile is held by its recipient, and what was closed or
// revoked meanwhile (absent from the graph, or revoked in it) is no live
// copy; the children tracked and the closed capabilities are the graph's.
func (u *usage) catchUp(cp *Checkpoint, guest string) {
	tracked := map[string]bool{}
	u.kids, u.closed = map[string]int{}, map[string]bool{}
	for _, n := range cp.Graph.Caps {
		tracked[n.ID] = !n.Revoked
		if c := n.CapRecord; u.caps[n.ID].Holder != c.Holder {
			u.apply(Record{Type: TypeAdopt, Cap: &c}, guest) // received meanwhile
		}
		if n.Parent != "" {
			u.kids[n.Parent]++
		}
		if n.Closed {
			u.closed[n.ID] = true
		}
	}
	for _, live := range u.live {
		for id := range live {
			if !tracked[id] {
				delete(live, id)
			}
		}
	}
}

func (u *usage) apply(r Record, guest string) {
	switch r.Type {
	case TypeDecision:
		u.decide(r.Decision)
	case TypeGuestExec:
		// What the guest passes on from here, it passes on as the module
		// it now runs.
		if r.Guest == nil {
			return
		}
		if g := u.guests[r.Guest.ID]; g != nil {
			ng := *g
			ng.Module, ng.SHA256 = r.Guest.Module, r.Guest.SHA256
			u.guests[r.Guest.ID] = &ng
		}
	case TypeGrant:
		u.caps[r.Cap.ID] = r.Cap
		if g := u.granted(r.Cap); g != nil && isGrantOrigin(r.Cap.Origin) && (guest == "" || g.ID == guest) {
			u.grant(g, r.Cap)
		}
	case TypeCreate, TypeDerive, TypeDelegate, TypeSpawn:
		u.derived(r, guest)
	case TypeAdopt:
		if c := u.caps[r.Cap.ID]; c != nil {
			c.Holder = r.Cap.Holder
		}
		if du := u.adopting[r.Cap.ID]; du != nil {
			delete(u.adopting, r.Cap.ID)
			du.recipient(u.guests[r.Cap.Holder])
		}
	case TypeClose:
		u.close(r.Cap.ID)
	case TypeRevoke:
		if r.Receipt != nil {
			for _, id := range r.Receipt.Revoked {
				u.forget(id)
			}
		}
	}
}

// decide keeps the lease of a grant or delegation the policy allowed,
// for the record of the capability that follows.
func (u *usage) decide(d *DecisionRecord) {
	switch {
	case d.Allowed && d.Op == "grant":
		u.decided[decidedKey{d.Module, d.Resource}] = time.Duration(d.TTLNS)
	case d.Allowed && d.Op == "delegate":
		u.lent[d.Cap] = d
	}
}

// granted is the holder a root capability c was granted to: a launched
// guest, or a client of the control API it was minted for (a holder no
// guest-start names, not a guest's g-…, with the user who made the
// grant: by_uid), which a policy decides with no module (u.clients, GuestRecord.SHA256 ""); nil
// for any other.
func (u *usage) granted(c *CapRecord) *GuestRecord {
	if g := u.guests[c.Holder]; g != nil {
		return g
	}
	if c.Holder == "" || strings.HasPrefix(c.Holder, "g-") || c.ByUID == nil || c.Edge != "grant" {
		return nil // a guest whose start the log no longer holds (pruned) is no client
	}
	cl := u.clients[c.Holder]
	if cl == nil {
		cl = &GuestRecord{ID: c.Holder, Module: "client", UID: *c.ByUID}
		u.clients[c.Holder] = cl
	}
	return cl
}

// isGrantOrigin reports whether a root capability's origin is a grant's
// text rather than the launch's own handles (stdio, supervisor channel).
func isGrantOrigin(o string) bool {
	k, _, ok := strings.Cut(o, ":")
	return ok && isKindName(k)
}

// grant counts root capability c, granted to guest g, for the user who
// made the grant: its record names them (by_uid); a log from before
// records did, only the guest's launcher, the user of its grants at
// launch.
func (u *usage) grant(g *GuestRecord, c *CapRecord) {
	kind, sel, decl := u.selectorOf(c)
	uid := g.UID
	if c.ByUID != nil {
		uid = *c.ByUID
	}
	key := grantKey{sha: g.SHA256, selector: sel, uid: uid}
	gu := u.grants[key]
	if gu == nil {
		gu = &grantUse{grantKey: key, module: g.Module, kind: kind, decl: decl}
		u.grants[key] = gu
		u.order = append(u.order, gu)
	}
	gu.rights |= rightsOf(c)
	ttl, decided := u.decided[decidedKey{g.SHA256, sel}]
	gu.lease.add(ttl, decided)
}

func rightsOf(c *CapRecord) caps.Rights {
	b, _ := ParseRights(c.Base)
	i, _ := ParseRights(c.Inheriting)
	return b | i
}

// delegate counts c, passed on from its parent's holder, for that holder
// if it is a launched guest of interest.
func (u *usage) delegate(c *CapRecord, guest string) {
	p := u.caps[c.Parent]
	if p == nil || c.Kind == caps.KindService.String() {
		return // a service passes freely, as its guest's own object
	}
	root, depth := u.rootOf(c)
	live := u.live[root.ID]
	if live == nil {
		live = map[string]bool{}
		u.live[root.ID] = live
	}
	copies := len(live) + 1
	live[c.ID] = true
	g := u.guests[p.Holder]
	if g == nil {
		g = u.clients[p.Holder]
	}
	if g == nil || root.Edge != "grant" || !isGrantOrigin(root.Origin) || (guest != "" && g.ID != guest) {
		return
	}
	_, sel, decl := u.selectorOf(root)
	key := delKey{sha: g.SHA256, selector: sel}
	du := u.dels[key]
	if du == nil {
		du = &delUse{delKey: key, module: g.Module, decl: decl, to: map[string]bool{}}
		u.dels[key] = du
		u.order = append(u.order, du)
	}
	du.depth, du.copies = max(du.depth, depth), max(du.copies, copies)
	du.rights |= rightsOf(c)
	d := u.lent[c.Parent]
	if d != nil {
		du.lease.add(time.Duration(d.TTLNS), true)
	} else {
		du.lease.add(0, false)
	}
	if c.Holder == "" && (d != nil && d.To != InFlight || launchDelegation(c)) {
		u.adopting[c.ID] = du // a guest being launched, which adopts it
		return
	}
	du.recipient(u.guests[c.Holder])
}

// launchDelegation reports whether copy c, in flight, was delegated to a
// guest being launched (--grant cap:ID, whose text is its origin): that
// guest adopts it, whether or not a policy decided it. A copy sent on a
// channel ("sent on …") goes to whoever reads it.
func launchDelegation(c *CapRecord) bool {
	return c.Edge == "delegate" && strings.HasPrefix(c.Origin, "cap:")
}

// recipient counts to as a recipient of d's copies: a launched guest's
// module (a spawned child's, by its guest-spawn record), or nil for one
// the log does not know (a copy in flight on a channel, whoever reads it;
// a child in a log written before guest-spawn records).
func (d *delUse) recipient(to *GuestRecord) {
	if to == nil {
		d.toUnknown = true
		return
	}
	d.to[to.SHA256] = true
}

// rootOf returns the capability c derives from that has no parent, and
// c's depth: the delegate and spawn edges from that root down to c, its
// own included. A log written by hand or damaged can make parents a
// cycle; the walk stops after as many steps as there are capabilities.
func (u *usage) rootOf(c *CapRecord) (root *CapRecord, depth int) {
	root = c
	for x, steps := c, 0; x != nil && steps <= len(u.caps); x, steps = u.caps[x.Parent], steps+1 {
		if x.Edge == "delegate" || x.Edge == "spawn" {
			depth++
		}
		root = x
	}
	return root, depth
}

// derived counts a capability created or derived (r): as its parent's
// child, and as a copy when it was passed on.
func (u *usage) derived(r Record, guest string) {
	u.caps[r.Cap.ID] = r.Cap
	if r.Cap.Parent != "" {
		u.kids[r.Cap.Parent]++
	}
	if r.Type == TypeDelegate || r.Type == TypeSpawn {
		u.delegate(r.Cap, guest)
	}
}

// close lets capability id go. As the kernel counts copies, a closed copy
// still counts while anything derived from it is tracked: it is let go of
// with its last tracked child, and so, up the chain, are the closed
// capabilities that child's end leaves without any.
func (u *usage) close(id string) {
	u.closed[id] = true
	for u.closed[id] && u.kids[id] == 0 {
		u.forget(id)
		delete(u.closed, id)
		delete(u.kids, id)
		c := u.caps[id]
		if c == nil || c.Parent == "" {
			return
		}
		id = c.Parent
		u.kids[id]--
	}
}

// forget takes a closed or revoked capability out of the live copies.
func (u *usage) forget(id string) {
	for _, live := range u.live {
		delete(live, id)
	}
}

// selectorOf is how a policy names what root capability c was granted
// from: its kind, the selector, and the resource block a named one needs.
func selectorOf(c *CapRecord) (kind, selector, decl string) {
	kind, src := grantSource(c.Origin)
	_, where, _ := strings.Cut(c.Resource, " ")
	switch {
	case (kind == "dir" || kind == "file") && (strings.Contains(src, "/") || !policies.NameFits(src)):
		// A host path, or a bare word no policy could have named: a path
		// relative to the working directory of a run without a policy.
		if !strings.HasPrefix(where, "/") {
			return kind, kind + ":" + path.Clean(src), ""
		}
		// Under a policy the daemon decides a host path where its links
		// lead on this host (caps.RealPath, daemon.DecideHostPath): a
		// rule for the path as the grant named it would not allow it.
		return kind, kind + ":" + path.Clean(caps.RealPath(path.Clean(where))), ""
	case kind == "dir" || kind == "file":
		return kind, kind + ":" + src, fmt.Sprintf("resource %q %s {\n  path = %s\n}\n", kind, hclString(src), hclString(where))
	case kind == "sock" || kind == "listen":
		attr, addr := socketAddress(where)
		name := src
		if inlineSocket(src) { // an inline address, which a policy names
			attr, addr = inlineAddress(kind, src, attr, addr)
			name = strings.Trim(nameUnsafe().ReplaceAllString(attr+" "+addr, "-"), "-")
		}
		return kind, kind + ":" + name, socketDecl(kind, name, attr, addr)
	}
	return kind, kind + ":" + src, fmt.Sprintf("resource %q %s {}\n", kind, hclString(src))
}

func socketDecl(kind, name, attr, addr string) string {
	return fmt.Sprintf("resource %q %s {\n  %s = %s\n}\n", kind, hclString(name), attr, hclString(addr))
}

// inlineSocket reports whether a sock or listen grant's source is an
// address given inline rather than a resource's name.
func inlineSocket(src string) bool { return strings.ContainsAny(src, ":/") }

// selectorOf is selectorOf(c), with the name made of an inline socket's
// address made unique: two addresses can make one name ("/run/a/b.sock"
// and "/run/a-b.sock", ":80" and "[::]:80"), and the second is declared
// as NAME-2 (then -3, …), so that each grant's rule names its own
// address. The same address is given the same name each time.
func (u *usage) selectorOf(c *CapRecord) (kind, selector, decl string) {
	kind, selector, decl = selectorOf(c)
	_, src := grantSource(c.Origin)
	if decl == "" || (kind != "sock" && kind != "listen") || !inlineSocket(src) {
		return kind, selector, decl
	}
	_, name, _ := strings.Cut(selector, ":")
	_, where, _ := strings.Cut(c.Resource, " ")
	attr, addr := socketAddress(where)
	attr, addr = inlineAddress(kind, src, attr, addr)
	for i := 2; ; i++ {
		if prev, taken := u.decls[selector]; !taken || prev == decl {
			u.decls[selector] = decl
			return kind, selector, decl
		}
		n := name + "-" + strconv.Itoa(i)
		selector, decl = kind+":"+n, socketDecl(kind, n, attr, addr)
	}
}

// inlineAddress is the address a sock or listen grant's source gives
// inline, as the daemon reads it (daemon.inlineTarget: tcp:HOST:PORT,
// unix:PATH, and for listen a bare HOST:PORT): a listener's is what the
// grant asked for (port 0, every interface), not the address it was
// bound at, which its resource shows. A unix path keeps the resource's
// (attr, addr): the daemon made it absolute.
func inlineAddress(kind, src, attr, addr string) (string, string) {
	n, a, _ := strings.Cut(src, ":")
	switch {
	case n == "unix":
		return attr, addr
	case n == "tcp":
		return "tcp", a
	case kind == "listen":
		return "tcp", src
	}
	return attr, addr
}

// socketAddress reads the address of a sock or listen capability's
// resource as the daemon describes it ("tcp HOST:PORT", "tcp NAME:PORT
// (IPS)" for a dialer of a DNS name, "unix PATH"): the resource attribute
// (tcp or unix) and its value.
func socketAddress(where string) (attr, addr string) {
	attr, addr = "tcp", where
	if n, a, ok := strings.Cut(where, " "); ok && (n == "tcp" || n == "unix") {
		attr, addr = n, a
	}
	if strings.HasPrefix(addr, "/") {
		return "unix", addr
	}
	addr, _, _ = strings.Cut(addr, " (")
	return attr, addr
}

// grantSource splits a grant's text as daemon.Grant.String writes it
// (KIND:SOURCE[=NAME][:OPTION], OPTION one of ro, dial, create or
// rights=LIST; '\' escapes '=', '\' and the colon of a trailing text that
// would read as an option) into its kind and source.
func grantSource(text string) (kind, src string) {
	kind, rest, _ := strings.Cut(text, ":")
	rest = cutGrantOption(rest)
	var b strings.Builder
	for i := 0; i < len(rest); i++ {
		switch c := rest[i]; {
		case c == '\\' && i+1 < len(rest):
			i++
			b.WriteByte(rest[i])
		case c == '=':
			return kind, b.String()
		default:
			b.WriteByte(c)
		}
	}
	return kind, b.String()
}

// cutGrantOption removes a grant text's final option (":ro", ":dial",
// ":create" or ":rights=LIST") unless its colon is escaped.
func cutGrantOption(rest string) string {
	for _, opt := range [...]string{":ro", ":dial", ":create"} {
		if n := len(rest) - len(opt); n >= 0 && rest[n:] == opt && !escaped(rest, n) {
			return rest[:n]
		}
	}
	i := strings.LastIndex(rest, ":rights=")
	if i < 0 || escaped(rest, i) || strings.ContainsFunc(rest[i+len(":rights="):], func(r rune) bool {
		return r != '_' && r != ',' && (r < 'a' || r > 'z') && (r < '0' || r > '9')
	}) {
		return rest
	}
	return rest[:i]
}

// escaped reports whether s[i] follows an odd number of backslashes.
func escaped(s string, i int) bool {
	n := 0
	for j := i - 1; j >= 0 && s[j] == '\\'; j-- {
		n++
	}
	return n%2 == 1
}

// nameUnsafe is compiled on first use, not at package initialisation,
// which every run of the CLI pays for (internal/layout holds it).
var nameUnsafe = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`[^A-Za-z0-9_-]+`) })

// render writes the policy, and checks that it loads.
func (u *usage) render(logPath, guest string) (string, error) {
	var b strings.Builder
	who := "every guest"
	if guest != "" {
		who = "guest " + guest
	}
	fmt.Fprintf(&b, "# The least policy that allows what %s did, as %s records it\n# (sandboxd policy suggest --from-audit). Review it before use.\n\n", who, logPath)
	decls := map[string]bool{} // the named resources declared: each once, as first seen
	var rules strings.Builder
	names := map[string]int{}
	for _, x := range u.order {
		switch x := x.(type) {
		case *grantUse:
			if x.rights == 0 {
				fmt.Fprintf(&rules, "# %s was given %s with no rights: no rule gives a capability none\n\n", oneLine(x.module), oneLine(x.selector))
				continue
			}
			if x.decl != "" && !decls[x.selector] {
				decls[x.selector] = true
				b.WriteString(x.decl + "\n")
			}
			writeGrant(&rules, ruleName(names, x.module, x.selector), x)
		case *delUse:
			if x.rights == 0 {
				fmt.Fprintf(&rules, "# %s passed %s on with no rights: no rule gives a capability none\n\n", oneLine(x.module), oneLine(x.selector))
				continue
			}
			// Declared here when no grant rule of this suggestion did
			// (--guest: the guest was given its copy by another).
			if x.decl != "" && !decls[x.selector] {
				decls[x.selector] = true
				b.WriteString(x.decl + "\n")
			}
			writeDelegate(&rules, ruleName(names, x.module, "pass-"+x.selector), x)
		}
	}
	b.WriteString(rules.String())
	out := b.String()
	if _, err := policies.Parse("suggested.hcl", []byte(out)); err != nil {
		return out, fmt.Errorf("the suggested policy does not load (%v): write one by hand from sandboxd audit log", err)
	}
	return out, nil
}

// ruleName is a unique rule name made of the module's and the selector's:
// the first of NAME, NAME-2, NAME-3, … that no rule has taken yet. taken
// holds the names taken, and under "\x00"+NAME (no name has a NUL) the
// number NAME's search starts from next.
func ruleName(taken map[string]int, module, sel string) string {
	base := strings.Trim(nameUnsafe().ReplaceAllString(strings.TrimSuffix(module, ".wasm")+"-"+sel, "-"), "-")
	if len(base) > 200 {
		base = base[:200]
	}
	n, i := base, max(taken["\x00"+base], 2)
	for ; taken[n] > 0; i++ {
		n = base + "-" + strconv.Itoa(i)
	}
	taken[n], taken["\x00"+base] = 1, i
	return n
}

// oneLine is s for a comment: its line breaks escaped, so that it cannot
// end the comment and start a line of policy.
func oneLine(s string) string { return strings.NewReplacer("\n", `\n`, "\r", `\r`).Replace(s) }

// hclTemplate escapes what a quoted HCL string would read as a template
// ("${…}", "%{…}"), so that a path holding it reads back as itself.
var hclTemplate = strings.NewReplacer("${", "$${", "%{", "%%{")

// hclString quotes s as an HCL string that reads back as s: a path, or a
// resource's name (which may hold "${"). Rule names, kinds and rights
// need no more than %q: they are letters, digits, '_' and '-'.
func hclString(s string) string { return hclTemplate.Replace(strconv.Quote(s)) }

func rightsList(r caps.Rights) string {
	var names []string
	for _, n := range strings.Split(r.String(), "|") {
		names = append(names, strconv.Quote(n))
	}
	return "[" + strings.Join(names, ", ") + "]"
}

func writeGrant(b *strings.Builder, name string, g *grantUse) {
	fmt.Fprintf(b, "grant %q {\n  resources = [%s]\n  rights    = %s\n%s", name, hclString(g.selector), rightsList(g.rights), g.lease.text(9))
	fmt.Fprintf(b, "  subject {\n    uids = [%d]\n  }\n", g.uid)
	writeModule(b, g.sha)
	b.WriteString("}\n\n")
}

// writeModule writes a rule's module block: the module's sha256, or for
// a client of the control API, which runs none, a comment saying why the
// rule has none (a policy decides what a client holds with no module).
func writeModule(b *strings.Builder, sha string) {
	if sha == "" {
		b.WriteString("  # no module block: a client of the control API (Supervisor.mint) runs none\n")
		return
	}
	fmt.Fprintf(b, "  module {\n    sha256 = [%q]\n  }\n", sha)
}

func writeDelegate(b *strings.Builder, name string, d *delUse) {
	fmt.Fprintf(b, "delegate %q {\n  resources  = [%s]\n  max_depth  = %d\n  max_copies = %d\n  rights     = %s\n%s", name, hclString(d.selector), d.depth, d.copies, rightsList(d.rights), d.lease.text(10))
	writeModule(b, d.sha)
	if !d.toUnknown && len(d.to) > 0 {
		var to []string
		for sha := range d.to {
			to = append(to, strconv.Quote(sha))
		}
		sort.Strings(to)
		fmt.Fprintf(b, "  to {\n    sha256 = [%s]\n  }\n", strings.Join(to, ", "))
	}
	b.WriteString("}\n\n")
}
