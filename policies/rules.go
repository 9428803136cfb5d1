package policies

import (
	"cmp"
	"fmt"
	"maps"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2"

	"github.com/sandboxd/sandboxd/caps"
)

// newRule compiles what every rule block has: its name, position and
// resources list.
func newRule(typ RuleType, name string, def hcl.Range, body hcl.Body, resources []string, resRange hcl.Range, el *errList) *Rule {
	switch {
	case name == "":
		el.add(def, "rule name \"\" is empty: name the rule, as decisions and the audit log name it")
	case !utf8.ValidString(name):
		el.add(def, "rule name %q is not valid UTF-8", name)
	case strings.IndexFunc(name, unicode.IsControl) >= 0:
		el.add(def, "rule name %q contains a control character: decisions and the audit log name the rule on one line", name)
	}
	return &Rule{
		Type:      typ,
		Name:      name,
		Pos:       posOf(def),
		Selectors: compileSelectors(resources, listElems(body, "resources", resRange), el),
	}
}

func compileGrant(raw *rawGrant, el *errList) *Rule {
	r := newRule(TypeGrant, raw.Name, raw.DefRange, raw.Body, raw.Resources, raw.ResourcesRange, el)
	r.Subject = compileSubject(raw.Subject, el)
	r.Module = compileModule(raw.Module, el)
	r.Rights = compileRights(raw.Rights, raw.ReadOnly, listElems(raw.Body, "rights", raw.RightsRange), el)
	r.TTL = compileTTL(raw.TTL, raw.TTLRange, el)
	checkKindsHoldRights(r, raw.Rights != nil, el)
	return r
}

func compileDelegate(raw *rawDelegate, el *errList) *Rule {
	r := newRule(TypeDelegate, raw.Name, raw.DefRange, raw.Body, raw.Resources, raw.ResourcesRange, el)
	r.Module = compileModule(raw.Module, el)
	r.To = compileModule(raw.To, el)
	r.Rights = compileRights(raw.Rights, raw.ReadOnly, listElems(raw.Body, "rights", raw.RightsRange), el)
	r.TTL = compileTTL(raw.TTL, raw.TTLRange, el)
	checkKindsHoldRights(r, raw.Rights != nil, el)
	switch {
	case raw.MaxDepth < 1:
		el.add(raw.DepthRange, "max_depth %d: want at least 1 (to forbid delegation, write no delegate rule or a deny rule)", raw.MaxDepth)
	case raw.MaxDepth > math.MaxInt32:
		el.add(raw.DepthRange, "max_depth %d: want at most %d", raw.MaxDepth, math.MaxInt32)
	}
	r.MaxDepth = int(raw.MaxDepth)
	if raw.MaxCopies != nil {
		switch {
		case *raw.MaxCopies < 1:
			el.add(raw.CopiesRange, "max_copies %d: want at least 1 (leave it out for no limit)", *raw.MaxCopies)
		case *raw.MaxCopies > math.MaxInt32:
			el.add(raw.CopiesRange, "max_copies %d: want at most %d (leave it out for no limit)", *raw.MaxCopies, math.MaxInt32)
		}
		r.MaxCopies = int(*raw.MaxCopies)
	}
	return r
}

// kindRights is what a capability granted from a resource of each kind
// can hold, base and inheriting: a sock's is a connection's or, with
// :dial, a dialer's.
var kindRights = map[string]caps.Rights{
	"dir":    caps.RightsDirectoryBase | caps.RightsDirectoryInheriting,
	"file":   caps.RightsRegularFileBase,
	"sock":   caps.RightsSocketBase | caps.RightsListenerBase,
	"listen": caps.RightsListenerBase | caps.RightsSocketBase,
	"chan":   caps.RightsSocketBase | caps.RightsSocketInheriting,
}

// checkKindsHoldRights refuses a rights ceiling, given in the rule
// (listed), that a kind of resource the rule covers holds none of: each
// request it allowed would be allowed a handle with no rights at all.
func checkKindsHoldRights(r *Rule, listed bool, el *errList) {
	if !listed || r.Rights == 0 {
		return // no list (every right), or an empty one, reported as such
	}
	seen := map[string]bool{}
	for _, s := range r.Selectors {
		if seen[s.Kind] || r.Rights&kindRights[s.Kind] != 0 {
			continue
		}
		seen[s.Kind] = true
		el.errs = append(el.errs, Error{Pos: s.Pos, Msg: fmt.Sprintf("resources: a %s holds none of the rights of %s %q (%v): give it some of %v, or write it a rule of its own", s.Kind, r.Type, r.Name, r.Rights, kindRights[s.Kind])})
	}
}

func compileDeny(raw *rawDeny, el *errList) *Rule {
	r := newRule(TypeDeny, raw.Name, raw.DefRange, raw.Body, raw.Resources, raw.ResourcesRange, el)
	r.Subject = compileSubject(raw.Subject, el)
	r.Module = compileModule(raw.Module, el)
	r.To = compileModule(raw.To, el)
	r.On = []Op{OpGrant, OpDelegate}
	if raw.On != nil {
		r.On = nil
		at := listElems(raw.Body, "on", raw.OnRange)
		for i, o := range *raw.On {
			switch Op(o) {
			case OpGrant, OpDelegate:
				r.On = append(r.On, Op(o))
			default:
				el.add(at.at(i), "on: unknown request %q (want \"grant\" or \"delegate\")", o)
			}
		}
		if len(*raw.On) == 0 { // an unknown request is named above, not as "empty"
			el.add(raw.OnRange, "on is empty: list \"grant\", \"delegate\" or both, or leave it out for both")
		}
	}
	if raw.To != nil && len(r.On) > 0 && !slices.Contains(r.On, OpDelegate) {
		// to is matched against a delegation's recipient only.
		el.add(raw.To.DefRange, "deny %q has a to block, which names the recipient of a delegated copy, and on = [\"grant\"]: it could never deny anything; add \"delegate\" to on, or leave the to block out", raw.Name)
	}
	return r
}

func compileSubject(raw *rawSubject, el *errList) *SubjectMatch {
	if raw == nil {
		return nil
	}
	s := &SubjectMatch{Users: raw.Users}
	s.UIDs = compileIDs(raw.UIDs, "uids", listElems(raw.Body, "uids", raw.UIDsRange), el)
	s.GIDs = compileIDs(raw.GIDs, "gids", listElems(raw.Body, "gids", raw.GIDsRange), el)
	users := listElems(raw.Body, "users", raw.DefRange)
	for i, u := range raw.Users {
		switch {
		case u == "":
			el.add(users.at(i), "users: an empty user name matches nobody")
		case strings.Contains(u, "*"):
			el.add(users.at(i), "users: %q: a user name is matched exactly, not as a glob: list the users, or use gids for a group", u)
		}
	}
	if len(raw.UIDs)+len(raw.GIDs)+len(raw.Users) == 0 {
		el.add(raw.DefRange, "subject block is empty: give uids, gids or users, or leave the block out to match anyone")
	}
	return s
}

func compileIDs(ids []int64, what string, at elems, el *errList) []uint32 {
	out := make([]uint32, 0, len(ids))
	for i, id := range ids {
		if id < 0 || id > math.MaxUint32 {
			el.add(at.at(i), "%s: %d is not a unix id (0-4294967295)", what, id)
			continue
		}
		out = append(out, uint32(id))
	}
	return out
}

// sha256Hex is compiled on first use, as hostPort is.
var sha256Hex = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[0-9a-f]{64}$`) })

func compileModule(raw *rawModule, el *errList) *ModuleMatch {
	if raw == nil {
		return nil
	}
	hashes := listElems(raw.Body, "sha256", raw.SHA256Range)
	for i, h := range raw.SHA256 {
		if !sha256Hex().MatchString(h) {
			el.add(hashes.at(i), "sha256 %q is not 64 lower-case hex digits", h)
		}
	}
	checkLabels(raw.Labels, raw.LabelsRange, el)
	checkKeysOnce(raw.Body, "labels", el)
	if len(raw.SHA256)+len(raw.Labels) == 0 {
		el.add(raw.DefRange, "block is empty: give sha256 or labels, or leave the block out to match any module")
	}
	return &ModuleMatch{SHA256: raw.SHA256, Labels: raw.Labels}
}

// checkRules holds the rules that span blocks: rule names are unique, an
// exact name refers to a declared resource, and no two rules of one type
// could decide the same request at the same specificity.
func (p *Policy) checkRules(el *errList) {
	byName := map[string]*Rule{}
	for _, r := range p.rules {
		if old := byName[r.Name]; old != nil {
			el.errs = append(el.errs, Error{Pos: r.Pos, Msg: "rule name " + quote(r.Name) + " is already used at " + old.Pos.String()})
		}
		byName[r.Name] = r
		for _, s := range r.Selectors {
			if s.Path == "" && !s.isGlob() && p.resources[resourceKey{s.Kind, s.Name}] == nil {
				el.errs = append(el.errs, Error{Pos: s.Pos, Msg: "resources: " + s.String() + " is not declared (add resource " + quote(s.Kind) + " " + quote(s.Name) + " { … })"})
			}
		}
	}
	p.checkTies(el)
}

// checkTies rejects two grant (or two delegate) rules that could both
// decide one request: selectors of equal rank that overlap, and match
// conditions that some request could meet at once. Deny rules never tie:
// any matching deny denies. Only selectors that could tie are compared
// (tieKey, and for globs globTies), so that a policy of many selectors
// loads in time near its size; each pair of rules is reported once,
// naming its first tied selectors.
func (p *Policy) checkTies(el *errList) {
	groups := map[tieKey][]tieAt{}
	for i, r := range p.rules {
		if r.Type == TypeDeny {
			continue
		}
		for x, s := range r.Selectors {
			groups[keyOfTie(r.Type, s)] = append(groups[keyOfTie(r.Type, s)], tieAt{i, x})
		}
	}
	ties := &tieSet{pairs: map[[2]int][2]int{}}
	left := maxTiePairs
	for _, k := range slices.SortedFunc(maps.Keys(groups), compareTieKeys) {
		if k.text == "" {
			p.globTies(ties, groups[k], &left, el)
		} else {
			p.sameTies(ties, groups[k], &left, el)
		}
	}
	pairs := slices.SortedFunc(maps.Keys(ties.pairs), func(x, y [2]int) int { return cmp.Or(x[0]-y[0], x[1]-y[1]) })
	for _, ab := range pairs {
		a, b := p.rules[ab[0]], p.rules[ab[1]]
		sa, sb := a.Selectors[ties.pairs[ab][0]], b.Selectors[ties.pairs[ab][1]]
		el.errs = append(el.errs, Error{Pos: b.Pos, Msg: "rules tie: " + string(b.Type) + " " + quote(b.Name) +
			" (" + sb.String() + ") and " + quote(a.Name) + " at " + a.Pos.String() + " (" + sa.String() +
			") could both decide the same request at the same specificity; make one more specific or give them disjoint subjects or modules"})
	}
	if ties.more {
		last := p.rules[pairs[len(pairs)-1][1]]
		el.errs = append(el.errs, Error{Pos: last.Pos, Msg: fmt.Sprintf("more than %d pairs of rules tie: those found first are listed; correct them and check again", maxTies)})
	}
}

// maxTies bounds the ties listed: a policy of a few thousand rules that
// all tie has millions of pairs, each a line.
const maxTies = 1000

// tieSet is the ties found: for each pair of rules {a, b}, a first, their
// first tied selectors; more is set once a tie past maxTies was left out.
type tieSet struct {
	pairs map[[2]int][2]int
	more  bool
}

func compareTieKeys(x, y tieKey) int {
	return cmp.Or(strings.Compare(string(x.typ), string(y.typ)), strings.Compare(x.kind, y.kind), x.rank-y.rank, strings.Compare(x.text, y.text))
}

// tieKey groups the selectors that could tie: of one rule type, kind and
// rank, and but for globs the same text (an exact name ties only with
// itself, and two path prefixes of as many elements overlap only when
// they are one).
type tieKey struct {
	typ  RuleType
	kind string
	rank int
	text string
}

func keyOfTie(t RuleType, s Selector) tieKey {
	k := tieKey{typ: t, kind: s.Kind, rank: s.rank()}
	if !s.isGlob() {
		k.text = s.String()
	}
	return k
}

// maxTiePairs bounds how many pairs of selectors the tie check compares,
// in all: a policy of many rules for one resource, or of many globs that
// could overlap, would otherwise hold the load for hours.
const maxTiePairs = 1 << 26

// sameTies notes the ties among group g of one selector, written by many
// rules. Only rules whose subjects or modules could match one request can
// tie: those that list a common value of uids, users or module sha256, or
// of which one does not list it. The list that sets most of the group's
// rules apart is used to pair them (tieBuckets); more pairs than left
// (taken from it) is an error at the group's first selector.
func (p *Policy) sameTies(ties *tieSet, g []tieAt, left *int, el *errList) {
	best := tieBuckets{all: g, wild: g, pairs: len(g) * (len(g) - 1)}
	for _, values := range [...]func(*Rule) []string{uidsOf, usersOf, modulesOf} {
		if b := p.bucket(g, values); b.pairs < best.pairs {
			best = b
		}
	}
	if best.pairs > *left {
		s := p.rules[g[0].rule].Selectors[g[0].sel]
		el.errs = append(el.errs, Error{Pos: s.Pos, Msg: fmt.Sprintf("resources: %s: the %s rules for it could tie in more than %d pairs, too many to check; give them disjoint subjects (uids, users) or modules (sha256)", s, p.rules[g[0].rule].Type, *left)})
		*left = 0
		return
	}
	*left -= best.pairs
	best.each(func(e, f tieAt) { p.noteTie(ties, e, f) })
}

// tieBuckets is a group of selectors by the values one list of their
// rules holds (uids, say), with those whose rules do not list it (wild):
// two can tie only if they share a bucket or one is wild.
type tieBuckets struct {
	all   []tieAt
	by    map[string][]tieAt
	wild  []tieAt
	pairs int // how many pairs each calls for
}

func (p *Policy) bucket(g []tieAt, values func(*Rule) []string) tieBuckets {
	b := tieBuckets{all: g, by: map[string][]tieAt{}}
	for _, e := range g {
		vs := values(p.rules[e.rule])
		if len(vs) == 0 {
			b.wild = append(b.wild, e)
		}
		for _, v := range vs {
			b.by[v] = append(b.by[v], e)
		}
	}
	for _, in := range b.by {
		b.pairs += len(in) * (len(in) - 1) / 2
	}
	b.pairs += len(b.wild) * (len(g) - 1)
	return b
}

// each calls pair for each two selectors of all that share a bucket, or
// of which one is wild (a pair may come more than once).
func (b tieBuckets) each(pair func(e, f tieAt)) {
	for _, in := range b.by {
		for n, e := range in {
			for _, f := range in[n+1:] {
				pair(e, f)
			}
		}
	}
	for _, w := range b.wild {
		for _, f := range b.all {
			if f != w {
				pair(w, f)
			}
		}
	}
}

func uidsOf(r *Rule) []string {
	if r.Subject == nil {
		return nil
	}
	out := make([]string, len(r.Subject.UIDs))
	for i, u := range r.Subject.UIDs {
		out[i] = strconv.FormatUint(uint64(u), 10)
	}
	return out
}

func usersOf(r *Rule) []string {
	if r.Subject == nil {
		return nil
	}
	return r.Subject.Users
}

func modulesOf(r *Rule) []string {
	if r.Module == nil {
		return nil
	}
	return r.Module.SHA256
}

// globTies notes the ties among group g of globs, comparing only those
// that could overlap (globsIntersect): each glob with those whose literal
// heads begin with its head, or, when those pairs are fewer in all, with
// those whose literal tails end with its tail. When more pairs than left
// (taken from it) would be compared, it reports the group's first glob
// instead.
func (p *Policy) globTies(ties *tieSet, g []tieAt, left *int, el *errList) {
	heads, tails := make([]string, len(g)), make([]string, len(g))
	for i, e := range g {
		heads[i], tails[i] = globEnds(p.rules[e.rule].Selectors[e.sel].Name)
	}
	ends, runs := heads, newKeyRuns(heads)
	if byTail := newKeyRuns(tails); pairsIn(byTail, tails) < pairsIn(runs, heads) {
		ends, runs = tails, byTail
	}
	n := pairsIn(runs, ends)
	if n > *left {
		s := p.rules[g[0].rule].Selectors[g[0].sel]
		el.errs = append(el.errs, Error{Pos: s.Pos, Msg: fmt.Sprintf("resources: %s: the globs of %s rules for %s with as many literal characters as it could overlap in more than %d pairs, too many to check for ties; begin or end them with literal text that tells them apart", s, p.rules[g[0].rule].Type, s.Kind, *left)})
		*left = 0
		return
	}
	*left -= n
	for i, end := range ends {
		for _, j := range runs.run(end) {
			if j != i {
				p.noteTie(ties, g[i], g[j])
			}
		}
	}
}

// pairsIn counts, for each of ends, the others in runs that begin with it.
func pairsIn(runs keyRuns, ends []string) int {
	n := 0
	for _, end := range ends {
		n += len(runs.run(end)) - 1
	}
	return n
}

// tieAt is selector sel of rule rule (indexes).
type tieAt struct{ rule, sel int }

// noteTie records in ties that the rules of e and f tie on their
// selectors, if they do, keeping for each pair of rules the first tied
// selectors in the order of their lists; past maxTies pairs, it notes
// only that there are more.
func (p *Policy) noteTie(ties *tieSet, e, f tieAt) {
	if e.rule == f.rule {
		return
	}
	if e.rule > f.rule {
		e, f = f, e
	}
	a, b := p.rules[e.rule], p.rules[f.rule]
	if !a.Selectors[e.sel].overlaps(b.Selectors[f.sel]) || !conditionsOverlap(a, b) {
		return
	}
	ab, at := [2]int{e.rule, f.rule}, [2]int{e.sel, f.sel}
	old, ok := ties.pairs[ab]
	if !ok && len(ties.pairs) >= maxTies {
		ties.more = true
		return
	}
	if !ok || at[0] < old[0] || (at[0] == old[0] && at[1] < old[1]) {
		ties.pairs[ab] = at
	}
}

// conditionsOverlap is false only when the rules provably match disjoint
// requests: different uids, users or module hashes, or one label key with
// different values. Group lists never separate rules (a user has several
// groups).
func conditionsOverlap(a, b *Rule) bool {
	if a.Subject != nil && b.Subject != nil {
		if disjoint(a.Subject.UIDs, b.Subject.UIDs) || disjoint(a.Subject.Users, b.Subject.Users) {
			return false
		}
	}
	return modulesOverlap(a.Module, b.Module) && modulesOverlap(a.To, b.To)
}

func modulesOverlap(a, b *ModuleMatch) bool {
	if a == nil || b == nil {
		return true
	}
	if disjoint(a.SHA256, b.SHA256) {
		return false
	}
	for k, v := range a.Labels {
		if w, ok := b.Labels[k]; ok && w != v {
			return false
		}
	}
	return true
}

// disjoint is true when both lists constrain and share no value.
func disjoint[T comparable](a, b []T) bool {
	if len(a) == 0 || len(b) == 0 {
		return false
	}
	for _, x := range a {
		if slices.Contains(b, x) {
			return false
		}
	}
	return true
}
