// Package policies is sandboxd's grant-policy language: HCL files that say
// which subjects may grant which resources to which modules, how far a
// capability may be delegated, and what is denied outright.
//
// The package parses (Parse, Load) and decides (Evaluate); it does not
// enforce anything and holds no state between calls. Evaluate is a pure
// function of a *Policy and a Request, and its Decision names the rule that
// decided it, so every answer can be explained. docs/POLICY.md is the
// language reference.
//
// Guarantees:
//   - Default deny: a request no rule allows is denied.
//   - Deny wins: a matching deny rule denies whatever any grant or delegate
//     rule says.
//   - Most specific match decides (exact name > glob with more literal
//     characters > glob with fewer > "*"; longer host-path prefix > shorter),
//     and a policy in which two rules could decide the same request at the
//     same specificity does not load.
package policies

import (
	"fmt"
	"time"

	"github.com/sandboxd/sandboxd/caps"
)

// Policy is a loaded, validated set of policy files. It is immutable once
// returned by Parse or Load and safe for concurrent use by Evaluate.
type Policy struct {
	resources map[resourceKey]*Resource
	resList   []*Resource
	rules     []*Rule
	grants    *index
	delegates *index
	denies    *index
	// real is where the declared host path of a resource (a dir or
	// file's path, a sock or listen resource's unix path) leads, for
	// those whose symbolic links lead elsewhere (WithRealPaths): deny
	// rules cover the resource there too.
	real map[*Resource]string
}

// Resources returns the declared resources, in declaration order; like
// Rules, they are the policy's own and must not be changed.
func (p *Policy) Resources() []*Resource { return append([]*Resource(nil), p.resList...) }

// Resource returns the declared resource of that kind and name. Like
// Resources, it is the policy's own.
func (p *Policy) Resource(kind, name string) (*Resource, bool) {
	r, ok := p.resources[resourceKey{kind, name}]
	return r, ok
}

// Rules returns every rule, in the order the files declared them. The
// rules are the policy's own: read them, do not change them.
func (p *Policy) Rules() []*Rule { return append([]*Rule(nil), p.rules...) }

// Resource is a named thing a grant can refer to (`--grant sock:db`).
type Resource struct {
	Kind     string // "dir", "file", "sock", "listen" or "chan"
	Name     string
	Path     string // dir, file: the host path (absolute, clean)
	ReadOnly bool   // dir, file: no right that modifies anything
	TCP      string // sock, listen: HOST:PORT (HOST may be a DNS name)
	Unix     string // sock, listen: a unix socket path
	Pos      Pos
}

type resourceKey struct{ kind, name string }

// RuleType is what a rule does: allow a grant, allow a delegation, or deny.
type RuleType string

const (
	TypeGrant    RuleType = "grant"
	TypeDelegate RuleType = "delegate"
	TypeDeny     RuleType = "deny"
)

// Rule is one grant, delegate or deny block.
type Rule struct {
	Type      RuleType
	Name      string
	Pos       Pos
	Selectors []Selector
	Subject   *SubjectMatch // nil: any launching user
	Module    *ModuleMatch  // nil: any module (grant: launched; delegate, deny: holder)
	To        *ModuleMatch  // delegate, deny: nil means any recipient
	Rights    caps.Rights   // ceiling; caps.RightsAll when not given
	TTL       time.Duration // 0: no lease
	MaxDepth  int           // delegate: most hops from the grant
	MaxCopies int           // delegate: most live delegated copies; 0 = unlimited
	On        []Op          // deny: which requests it applies to
}

// Ref is how a Decision names a rule.
func (r *Rule) Ref() *RuleRef {
	if r == nil {
		return nil
	}
	return &RuleRef{Type: r.Type, Name: r.Name, File: r.Pos.File, Line: r.Pos.Line}
}

// SubjectMatch is a `subject` block: who launched. Each non-empty list must
// match (any of its values); an empty list matches anyone.
type SubjectMatch struct {
	UIDs  []uint32
	GIDs  []uint32
	Users []string
}

// ModuleMatch is a `module` or `to` block: what runs. Each listed hash is
// an alternative; every label must be present with that value.
type ModuleMatch struct {
	SHA256 []string
	Labels map[string]string
}

// Pos is a place in a policy file, 1-based. Line 0 means the file as a
// whole (one that could not be read).
type Pos struct {
	File   string
	Line   int
	Column int
}

func (p Pos) String() string {
	if p.Line == 0 {
		return p.File
	}
	return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Column)
}
