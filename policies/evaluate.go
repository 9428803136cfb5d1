package policies

import (
	"fmt"
	"path"
	"slices"
	"time"

	"github.com/sandboxd/sandboxd/caps"
)

// Op is the kind of request: a grant (at launch or live) or a delegation
// of a capability from one holder to another.
type Op string

const (
	OpGrant    Op = "grant"
	OpDelegate Op = "delegate"
)

// Request is one question to the policy.
//
// For a grant, Subject launched (or is granting to) Module. For a
// delegation, Module holds a capability derived from the resource, Subject
// launched it, and To would receive the new copy.
type Request struct {
	Op      Op
	Kind    string // "dir", "file", "sock", "listen" or "chan"
	Name    string // a declared resource's name; or
	Path    string // dir, file: an inline host path (absolute)
	Rights  caps.Rights
	Subject Subject
	Module  Module
	// Delegation only.
	Depth  int    // hops from the grant the new copy would be (1: first delegation)
	Copies int    // live delegated copies of the grant before this one
	To     Module // the recipient
	// ToUnknown says the recipient is not known when the decision is
	// made (a handle sent on a channel goes to whoever reads it): no
	// delegate rule with a to block allows it, and every deny rule with
	// one denies it, since the recipient could be any module.
	ToUnknown bool
}

// Subject is the unix user behind a request.
type Subject struct {
	UID  uint32
	GIDs []uint32
	User string
}

// Module is a running or launched program.
type Module struct {
	SHA256 string // lower-case hex
	Labels map[string]string
}

// Decision is Evaluate's answer. Rule is the rule that decided it (nil
// when nothing matched: default deny). For a denial, Closest is the rule
// that came nearest to allowing it, if any. When allowed, Rights is the
// most the new capability may hold (the daemon clips both base and
// inheriting rights to it) and TTL, when not zero, is its lease.
type Decision struct {
	Allowed bool
	Rule    *RuleRef
	Closest *RuleRef
	Reason  string
	Rights  caps.Rights
	TTL     time.Duration
}

// RuleRef names a rule: its type, name and where it is written.
type RuleRef struct {
	Type RuleType
	Name string
	File string
	Line int
}

func (r *RuleRef) String() string {
	return fmt.Sprintf("%s %q (%s:%d)", r.Type, r.Name, r.File, r.Line)
}

// Evaluate decides req against p. It is a pure function: it reads p and
// req only, changes neither, and gives the same Decision for the same
// arguments.
func Evaluate(p *Policy, req Request) Decision {
	what, res, ok := resolve(p, &req)
	if !ok {
		return Decision{Reason: what}
	}
	allow, failed := p.decidingAllow(&req, res)
	if deny, ok := p.firstDeny(&req, res); ok {
		return Decision{Rule: deny.rule.Ref(), Closest: allow.Ref(), Reason: denyReason(what, deny.by(), &req, res, p.real[res], deny)}
	}
	if allow == nil {
		d := Decision{Reason: fmt.Sprintf("no %s rule allows %s (default deny)", req.Op, what)}
		if failed != nil {
			d.Closest = failed.Ref()
			d.Reason += "; closest is " + quote(failed.Name) + ", whose " + failures(failed, &req)[0] + " does not match"
		}
		return d
	}
	if reason := limitExceeded(allow, &req); reason != "" {
		return Decision{Rule: allow.Ref(), Reason: what + ": " + reason}
	}
	ceiling := allow.Rights
	if res != nil && res.ReadOnly {
		ceiling &^= caps.RightsWriteMask
	}
	if req.Rights != 0 && ceiling&req.Rights == 0 {
		// The capability would hold nothing, and a copy would count
		// against max_copies all the same.
		return Decision{Rule: allow.Ref(), Reason: fmt.Sprintf("%s: %s %q leaves none of the rights asked (%v): it gives %v at most", what, allow.Type, allow.Name, req.Rights, ceiling)}
	}
	if req.Rights != 0 {
		ceiling &= req.Rights
	}
	return Decision{Allowed: true, Rule: allow.Ref(), Reason: fmt.Sprintf("%s %s allowed by %s %q", req.Op, what, allow.Type, allow.Name), Rights: ceiling, TTL: allow.TTL}
}

// resolve checks the request's resource: a known kind, a declared name or
// an absolute host path. It returns the resource's text for messages.
func resolve(p *Policy, req *Request) (string, *Resource, bool) {
	if !kinds[req.Kind] {
		return fmt.Sprintf("unknown resource kind %q", req.Kind), nil, false
	}
	if req.Op != OpGrant && req.Op != OpDelegate {
		return fmt.Sprintf("unknown request %q (want grant or delegate)", req.Op), nil, false
	}
	if req.Op == OpDelegate && (req.Depth < 1 || req.Copies < 0) {
		return fmt.Sprintf("delegation with depth %d and %d live copies: want depth at least 1 and copies at least 0", req.Depth, req.Copies), nil, false
	}
	if req.Name != "" {
		what := req.Kind + ":" + req.Name
		res := p.resources[resourceKey{req.Kind, req.Name}]
		if res == nil && (req.Kind == "dir" || req.Kind == "file") {
			return fmt.Sprintf("%s is not declared in the policy (a host path has a /: %s:./%s)", what, req.Kind, req.Name), nil, false
		}
		if res == nil {
			return what + " is not declared in the policy", nil, false
		}
		return what, res, true
	}
	if (req.Kind != "dir" && req.Kind != "file") || !path.IsAbs(req.Path) {
		return fmt.Sprintf("%s: want a declared name, or an absolute host path for dir and file", req.Kind), nil, false
	}
	req.Path = path.Clean(req.Path)
	return req.Kind + ":" + req.Path, nil, true
}

// visit walks the entries of ix that cover the request's resource, most
// specific first. With hostPaths set (deny rules), a dir or file, named
// or inline, is also covered by the dir and file prefixes of its host
// path, and a directory by those beneath it; and a sock or listen
// resource with a unix path by those of its socket file. A named
// resource's host path is visited as declared and then, when its links
// lead elsewhere, where they lead (real).
func visit(ix *index, req *Request, res *Resource, hostPaths bool, real string, f func(entry) bool) {
	switch {
	case res == nil && hostPaths:
		ix.visitHostPath(req.Kind, req.Path, f)
	case res == nil:
		ix.visitPath(req.Kind, req.Path, f)
	case !ix.visitName(req.Kind, req.Name, f) || !hostPaths || res.hostPath() == "":
	default:
		kind := req.Kind
		if res.Path == "" {
			kind = "file" // a unix socket is a file on the host
		}
		if ix.visitHostPath(kind, res.hostPath(), f) && real != "" {
			ix.visitHostPath(kind, real, f)
		}
	}
}

// firstDeny is the most specific deny entry that covers the request and
// whose rule applies to it.
func (p *Policy) firstDeny(req *Request, res *Resource) (found entry, ok bool) {
	visit(p.denies, req, res, true, p.real[res], func(e entry) bool {
		if slices.Contains(e.rule.On, req.Op) && len(failures(e.rule, req)) == 0 {
			found, ok = e, true
			return false
		}
		return true
	})
	return found, ok
}

// denyReason says why deny denies the request: it covers the resource,
// or it covers something beneath the directory asked for, which a handle
// on the directory would reach. A deny that names a resource and covers
// the request by the resource's host path says what that path is; one
// that covers a named resource only where its declared path leads (real)
// says where that is.
func denyReason(what, by string, req *Request, res *Resource, real string, deny entry) string {
	host := req.Path
	if res != nil {
		host = res.Path
	}
	// it is the subject of what follows: the resource, or where it leads.
	it := ": it"
	if host != "" && real != "" && deny.host != "" && !pathUnder(host, deny.host) && !pathUnder(deny.host, host) {
		by += fmt.Sprintf(": its path %s leads to %s", host, real)
		host, it = real, ", which"
	}
	switch {
	case deny.host == "" || host == "":
		return what + " is denied by " + by
	case deny.named == nil && pathUnder(host, deny.host):
		return what + " is denied by " + by
	case deny.named == nil:
		return fmt.Sprintf("%s is denied by %s%s contains %s, which a handle on it would reach", what, by, it, deny.sel)
	}
	named := deny.named.Kind + ":" + deny.named.Name
	switch {
	case pathUnder(host, deny.host) && host != real:
		return fmt.Sprintf("%s is denied by %s: %s is %s", what, by, named, deny.host)
	case pathUnder(host, deny.host):
		return fmt.Sprintf("%s is denied by %s, at or beneath %s (%s)", what, by, named, deny.host)
	}
	return fmt.Sprintf("%s is denied by %s%s contains %s (%s), which a handle on it would reach", what, by, it, named, deny.host)
}

// by names the deny rule of e for a reason: `deny "NAME"`.
func (e entry) by() string { return string(e.rule.Type) + " " + quote(e.rule.Name) }

// decidingAllow returns the most specific grant or delegate rule whose
// conditions the request meets; when none does, nearest is the covering
// rule with the fewest unmet conditions.
func (p *Policy) decidingAllow(req *Request, res *Resource) (decide, nearest *Rule) {
	ix := p.grants
	if req.Op == OpDelegate {
		ix = p.delegates
	}
	best := -1
	visit(ix, req, res, false, "", func(e entry) bool {
		n := len(failures(e.rule, req))
		if n == 0 {
			decide = e.rule
			return false
		}
		if best < 0 || n < best {
			nearest, best = e.rule, n
		}
		return true
	})
	if decide != nil {
		nearest = nil
	}
	return decide, nearest
}

// failures lists the conditions of r that the request does not meet.
func failures(r *Rule, req *Request) []string {
	var out []string
	if r.Subject != nil && !r.Subject.matches(req.Subject) {
		out = append(out, "subject")
	}
	if r.Module != nil && !r.Module.matches(req.Module) {
		out = append(out, "module")
	}
	if r.To != nil && !recipientMatches(r, req) {
		out = append(out, "recipient (to)")
	}
	return out
}

// recipientMatches reports whether the recipient of req meets r's to
// block: for an unknown recipient, a deny rule's always does (the
// recipient could be the module it names) and a delegate rule's never.
func recipientMatches(r *Rule, req *Request) bool {
	switch {
	case req.Op != OpDelegate:
		return false
	case req.ToUnknown:
		return r.Type == TypeDeny
	}
	return r.To.matches(req.To)
}

// limitExceeded checks a delegate rule's depth and fan-out.
func limitExceeded(r *Rule, req *Request) string {
	if r.Type != TypeDelegate {
		return ""
	}
	if req.Depth > r.MaxDepth {
		return fmt.Sprintf("delegation depth %d exceeds max_depth %d of delegate %q", req.Depth, r.MaxDepth, r.Name)
	}
	if r.MaxCopies > 0 && req.Copies >= r.MaxCopies {
		copies := "live copies"
		if req.Copies == 1 {
			copies = "live copy"
		}
		return fmt.Sprintf("%d %s already, max_copies of delegate %q is %d", req.Copies, copies, r.Name, r.MaxCopies)
	}
	return ""
}

func (s *SubjectMatch) matches(sub Subject) bool {
	if len(s.UIDs) > 0 && !slices.Contains(s.UIDs, sub.UID) {
		return false
	}
	if len(s.Users) > 0 && !slices.Contains(s.Users, sub.User) {
		return false
	}
	if len(s.GIDs) > 0 {
		for _, g := range sub.GIDs {
			if slices.Contains(s.GIDs, g) {
				return true
			}
		}
		return false
	}
	return true
}

func (m *ModuleMatch) matches(mod Module) bool {
	if len(m.SHA256) > 0 && !slices.Contains(m.SHA256, mod.SHA256) {
		return false
	}
	for k, v := range m.Labels {
		if w, ok := mod.Labels[k]; !ok || w != v {
			return false
		}
	}
	return true
}
