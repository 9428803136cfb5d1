package policies

import (
	"fmt"
	"path"
	"sort"
)

// A deny rule that names a declared dir or file, exactly or by a glob,
// covers the resource's host path as a path selector would: the deny
// index holds an entry at that path for each rule and resource it names,
// so that an inline request for the path, for one beneath it or for a
// directory containing it is denied as a request for the name is.

// maxNamedTries bounds how many declared names the deny globs of dir and
// file are tried on, together. A glob is tried on the names that could
// match it only (hostNames.candidates), but one with no literal head or
// tail could match any: many of them over many resources would hold the
// load for hours.
const maxNamedTries = 1 << 21

// coverNamed adds to p's deny index the host paths of the dir and file
// resources its rules name, and sorts its host paths; or reports the glob
// that takes the matching past maxNamedTries.
func (p *Policy) coverNamed(el *errList) {
	names := map[string]*hostNames{"dir": newHostNames(p.resList, "dir"), "file": newHostNames(p.resList, "file")}
	covered := map[ruleResource]bool{}
	tries := 0
	for _, r := range p.rules {
		for _, s := range r.Selectors {
			h := names[s.Kind]
			if r.Type != TypeDeny || s.Path != "" || h == nil {
				continue
			}
			cand := h.candidates(p, s)
			if tries += len(cand); tries > maxNamedTries {
				el.errs = append(el.errs, Error{Pos: s.Pos, Msg: fmt.Sprintf("resources: %s: deny globs of dir and file are tried on more than %d declared names in all; begin or end this one with literal text (rep*, *-private), or name the resources it means", s, maxNamedTries)})
				return
			}
			for _, res := range cand {
				k := ruleResource{r, res}
				if !covered[k] && globMatch(s.Name, res.Name) {
					covered[k] = true
					p.denies.addHostPath(res.Kind, entry{rule: r, sel: s, host: res.Path, named: res})
				}
			}
		}
	}
	sort.SliceStable(p.denies.hostPaths, func(i, j int) bool { return p.denies.hostPaths[i].host < p.denies.hostPaths[j].host })
}

// WithRealPaths returns p with its deny rules also covering where the
// symbolic links of their host paths lead, as real says (the daemon
// passes where the links led when the policy was put in force): a deny
// written for /srv/link, or naming a resource declared there, then also
// stops an inline grant of /srv/private that the link leads to, or of a
// directory containing it. And a resource declared through a link is
// judged by the deny rules where real says it leads (where its grants
// open, connect or bind) as well as at its path as written. The rest of
// p is shared; p itself is unchanged. nil stays nil.
func (p *Policy) WithRealPaths(real func(string) string) *Policy {
	if p == nil {
		return nil
	}
	q := *p
	q.denies = newIndex(p.rules, TypeDeny)
	q.coverNamed(&errList{}) // p loaded: its names are within the bound
	q.denies.coverRealPaths(real, true)
	q.real = map[*Resource]string{}
	for _, r := range p.resList {
		if host := r.hostPath(); host != "" {
			if rp := real(host); rp != host && path.IsAbs(rp) {
				q.real[r] = path.Clean(rp)
			}
		}
	}
	return &q
}

// hostPath is the path on the host that r names: a dir or file's path,
// a sock or listen resource's unix socket file; "" for an address, an
// abstract socket (@NAME) and a channel.
func (r *Resource) hostPath() string {
	if r.Path != "" {
		return r.Path
	}
	if path.IsAbs(r.Unix) {
		return r.Unix
	}
	return ""
}

// coverRealPaths adds to a deny index, for each resource's host path
// coverNamed added (and, with selectors set, each path selector's too),
// the path real says it leads to when that is another, and sorts the
// host paths again.
func (ix *index) coverRealPaths(real func(string) string, selectors bool) {
	for _, e := range ix.hostPaths[:len(ix.hostPaths):len(ix.hostPaths)] {
		if e.named == nil && !selectors {
			continue
		}
		if rp := real(e.host); rp != e.host && path.IsAbs(rp) {
			kind := e.sel.Kind
			if e.named != nil {
				kind = e.named.Kind
			}
			e.host = path.Clean(rp)
			ix.addHostPath(kind, e)
		}
	}
	sort.SliceStable(ix.hostPaths, func(i, j int) bool { return ix.hostPaths[i].host < ix.hostPaths[j].host })
}

type ruleResource struct {
	rule *Rule
	res  *Resource
}

// hostNames is the declared resources of one kind, by name (heads) and
// by name reversed (tails), so that those beginning with a glob's
// literal head, and those ending with its literal tail, are each one run.
type hostNames struct {
	res          []*Resource
	heads, tails keyRuns
}

func newHostNames(resources []*Resource, kind string) *hostNames {
	h := &hostNames{}
	var heads, tails []string
	for _, r := range resources {
		if r.Kind == kind {
			h.res = append(h.res, r)
			heads, tails = append(heads, r.Name), append(tails, reverse(r.Name))
		}
	}
	h.heads, h.tails = newKeyRuns(heads), newKeyRuns(tails)
	return h
}

// candidates is what name selector s could name: the resource of that
// name, or for a glob the shorter of the runs of names that begin with
// its head and that end with its tail.
func (h *hostNames) candidates(p *Policy, s Selector) []*Resource {
	if !s.isGlob() {
		if r := p.resources[resourceKey{s.Kind, s.Name}]; r != nil {
			return []*Resource{r}
		}
		return nil
	}
	head, tail := globEnds(s.Name)
	run := h.heads.run(head)
	if byTail := h.tails.run(tail); len(byTail) < len(run) {
		run = byTail
	}
	out := make([]*Resource, len(run))
	for i, x := range run {
		out[i] = h.res[x]
	}
	return out
}
