package policies

import (
	"errors"
	"fmt"
	"path"
	"slices"
	"sync/atomic"
)

// DenyFile is the Pos.File of the rules of a DenyList: a decision one of
// them made names it (RuleRef.File), with the selector's place among the
// list's as its line.
const DenyFile = "--deny"

// MaxDenySelectors bounds a DenyList.
const MaxDenySelectors = 256

// DenyList is deny selectors given outside a policy file, with a launch
// (sandboxd launch --deny): each denies what a deny rule with that one
// selector and no other block denies (docs/POLICY.md, What a deny
// covers), for grants and delegations alike. A name selector of a dir or
// file covers the host path the policy in force declares for it, so a
// DenyList is judged against that policy (Decide), or against none.
// It is safe for concurrent use.
type DenyList struct {
	rules []*Rule
	// real, when set, says where a host path's symbolic links lead
	// (WithRealPaths).
	real     func(string) string
	compiled atomic.Pointer[compiledDenies]
}

// compiledDenies is a DenyList's deny index for one policy.
type compiledDenies struct {
	under *Policy // nil: no policy
	p     *Policy // under's resources and the list's rules
	err   error
}

// ParseDenyList reads selectors in the grammar of a deny rule's
// resources (KIND:NAME, KIND:GLOB, dir|file:/PATH with an absolute, clean
// path). An error names the selector and what is wrong with it.
func ParseDenyList(texts []string) (*DenyList, error) {
	if len(texts) > MaxDenySelectors {
		return nil, fmt.Errorf("deny: %d selectors: at most %d are taken; deny a directory above them, or a glob", len(texts), MaxDenySelectors)
	}
	l := &DenyList{}
	for i, t := range texts {
		s, err := parseSelector(t)
		if err != nil {
			return nil, fmt.Errorf("deny %q: %v", t, err)
		}
		if s.Path != "" && !path.IsAbs(s.Path) {
			return nil, fmt.Errorf("deny %q: give an absolute host path", t)
		}
		s.Pos = Pos{File: DenyFile, Line: i + 1}
		l.rules = append(l.rules, &Rule{Type: TypeDeny, Name: t, Pos: s.Pos, Selectors: []Selector{s}, On: []Op{OpGrant, OpDelegate}})
	}
	return l, nil
}

// WithRealPaths returns a copy of l that also covers where the symbolic
// links of its host paths lead, as real says: a dir or file selector's
// path, resolved now, and the declared path of each dir or file resource
// a name selector covers, resolved when the list is first judged under
// the policy declaring it. A selector written through a link then covers
// the link's target, and a resource declared through one the place its
// grants open; each still covers its path as written. Selectors is
// unchanged. A nil list stays nil.
func (l *DenyList) WithRealPaths(real func(string) string) *DenyList {
	if l == nil {
		return nil
	}
	out := &DenyList{rules: make([]*Rule, len(l.rules)), real: real}
	for i, r := range l.rules {
		c := *r
		if s := r.Selectors[0]; s.Path != "" {
			if rp := real(s.Path); rp != s.Path && path.IsAbs(rp) {
				c.Selectors = []Selector{s, {Kind: s.Kind, Path: path.Clean(rp), Pos: s.Pos}}
			}
		}
		out.rules[i] = &c
	}
	return out
}

// HostNameSelector returns the first selector that names dir or file
// resources, by name or glob, rather than giving a host path, with its
// kind and name; "" if none does. Without a policy such a selector
// covers nothing: a dir or file grant then always gives a host path.
func (l *DenyList) HostNameSelector() (text, kind, name string) {
	if l == nil {
		return "", "", ""
	}
	for _, r := range l.rules {
		if s := r.Selectors[0]; s.Path == "" && (s.Kind == "dir" || s.Kind == "file") {
			return r.Name, s.Kind, s.Name
		}
	}
	return "", "", ""
}

// Selectors returns the list's selectors as given; nil for a nil list.
func (l *DenyList) Selectors() []string {
	if l == nil {
		return nil
	}
	out := make([]string, len(l.rules))
	for i, r := range l.rules {
		out[i] = r.Name
	}
	return out
}

// Decide reports whether the list denies req, judged with the resources
// of p (nil: no policy), and the Decision that says which selector and
// why. Unlike Evaluate it needs no declared resource: a name the policy
// does not declare (a chan, or any name without a policy) is judged by
// its name alone, and a request with neither name nor path (a sock or
// listen grant of an inline address) is covered by KIND:* only.
func (l *DenyList) Decide(p *Policy, req Request) (Decision, bool) {
	if l == nil || len(l.rules) == 0 {
		return Decision{}, false
	}
	c := l.compile(p)
	if c.err != nil {
		// Fail closed: a list that cannot be matched denies.
		return Decision{Rule: l.rules[0].Ref(), Reason: c.err.Error()}, true
	}
	what := req.Kind + ":" + req.Name
	if req.Path != "" && !path.IsAbs(req.Path) {
		// Fail closed: a host path is judged where it is, absolute.
		return Decision{Rule: l.rules[0].Ref(), Reason: fmt.Sprintf("%s:%s is not an absolute host path, which a deny list cannot judge", req.Kind, req.Path)}, true
	}
	var res *Resource
	if req.Path != "" {
		req.Path = path.Clean(req.Path)
		what = req.Kind + ":" + req.Path
	} else if req.Name == "" {
		what = "a " + req.Kind + " of an inline address"
	} else if p != nil {
		res = p.resources[resourceKey{req.Kind, req.Name}]
	}
	found, ok := c.p.firstListed(&req, res)
	if !ok {
		return Decision{}, false
	}
	by := DenyFile + " " + found.rule.Name
	return Decision{Rule: found.rule.Ref(), Reason: denyReason(what, by, &req, res, c.p.real[res], found)}, true
}

// firstListed is the most specific entry of p's deny index that covers
// the request, whose resource need not be declared.
func (p *Policy) firstListed(req *Request, res *Resource) (found entry, ok bool) {
	f := func(e entry) bool {
		if slices.Contains(e.rule.On, req.Op) {
			found, ok = e, true
			return false
		}
		return true
	}
	switch {
	case req.Path != "" || res != nil:
		visit(p.denies, req, res, true, p.real[res], f)
	default:
		p.denies.visitName(req.Kind, req.Name, f)
	}
	return found, ok
}

// compile returns the list's deny index for p, made once per policy.
func (l *DenyList) compile(p *Policy) *compiledDenies {
	if c := l.compiled.Load(); c != nil && c.under == p {
		return c
	}
	c := &compiledDenies{under: p, p: &Policy{resources: map[resourceKey]*Resource{}, rules: l.rules}}
	if p != nil {
		c.p.resources, c.p.resList, c.p.real = p.resources, p.resList, p.real
	}
	c.p.denies = newIndex(c.p.rules, TypeDeny)
	el := &errList{}
	c.p.coverNamed(el)
	if l.real != nil {
		c.p.denies.coverRealPaths(l.real, false)
	}
	if len(el.errs) > 0 {
		c.err = errors.New(el.errs[0].Msg)
	}
	l.compiled.Store(c)
	return c
}
