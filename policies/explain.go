package policies

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/sandboxd/sandboxd/caps"
)

// Explain renders the decision for a person: the verdict and deciding
// rule on the first line, then the reason, and what applies when allowed
// (rights ceiling, lease) or what came closest when denied.
func (d Decision) Explain() string {
	var b strings.Builder
	switch {
	case d.Allowed:
		fmt.Fprintf(&b, "allowed by %s\n", d.Rule)
	case d.Rule != nil:
		fmt.Fprintf(&b, "denied by %s\n", d.Rule)
	default:
		b.WriteString("denied: no rule matches (default deny)\n")
	}
	fmt.Fprintf(&b, "  reason:  %s\n", d.Reason)
	if d.Allowed {
		fmt.Fprintf(&b, "  rights:  %s\n", rightsText(d.Rights))
		if d.TTL > 0 {
			fmt.Fprintf(&b, "  lease:   %s\n", d.TTL)
		}
	} else if d.Closest != nil {
		fmt.Fprintf(&b, "  closest: %s\n", d.Closest)
	}
	return b.String()
}

func rightsText(r caps.Rights) string {
	if r == caps.RightsAll {
		return "all"
	}
	return r.String()
}

type ruleJSON struct {
	Type string `json:"type"`
	Name string `json:"name"`
	File string `json:"file"`
	Line int    `json:"line"`
}

type decisionJSON struct {
	Allowed bool      `json:"allowed"`
	Rule    *ruleJSON `json:"rule"`
	Closest *ruleJSON `json:"closest,omitempty"`
	Reason  string    `json:"reason"`
	Rights  []string  `json:"rights,omitempty"`
	TTL     string    `json:"ttl,omitempty"`
}

// JSON renders the decision for tools: allowed, rule (null for default
// deny), closest, reason, rights (names, when allowed) and ttl (a Go
// duration, when there is a lease).
func (d Decision) JSON() ([]byte, error) {
	out := decisionJSON{Allowed: d.Allowed, Rule: refJSON(d.Rule), Closest: refJSON(d.Closest), Reason: d.Reason}
	if d.Allowed {
		out.Rights = []string{}
		if d.Rights != 0 {
			out.Rights = strings.Split(d.Rights.String(), "|")
		}
	}
	if d.TTL > 0 {
		out.TTL = d.TTL.String()
	}
	return json.Marshal(out)
}

func refJSON(r *RuleRef) *ruleJSON {
	if r == nil {
		return nil
	}
	return &ruleJSON{Type: string(r.Type), Name: r.Name, File: r.File, Line: r.Line}
}
