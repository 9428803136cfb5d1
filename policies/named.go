package policies

import (
	"fmt"
	"sort"
	"strings"
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
// resources its rules name, or reports the glob that takes the matching
// past maxNamedTries.
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

type ruleResource struct {
	rule *Rule
	res  *Resource
}

// hostNames is the declared resources of one kind, sorted by name
// (heads) and by name reversed (tails), so that those beginning with a
// glob's literal head, and those ending with its literal tail, are each
// one run.
type hostNames struct {
	heads, tails sortedNames
}

// sortedNames is resources sorted by keys, one key each.
type sortedNames struct {
	keys []string
	res  []*Resource
}

func (s sortedNames) Len() int           { return len(s.keys) }
func (s sortedNames) Less(i, j int) bool { return s.keys[i] < s.keys[j] }
func (s sortedNames) Swap(i, j int) {
	s.keys[i], s.keys[j] = s.keys[j], s.keys[i]
	s.res[i], s.res[j] = s.res[j], s.res[i]
}

// run is the resources whose keys begin with prefix.
func (s sortedNames) run(prefix string) []*Resource {
	lo := sort.SearchStrings(s.keys, prefix)
	n := sort.Search(len(s.keys)-lo, func(i int) bool { return !strings.HasPrefix(s.keys[lo+i], prefix) })
	return s.res[lo : lo+n]
}

func newHostNames(resources []*Resource, kind string) *hostNames {
	h := &hostNames{}
	for _, r := range resources {
		if r.Kind == kind {
			h.heads.keys, h.heads.res = append(h.heads.keys, r.Name), append(h.heads.res, r)
			h.tails.keys, h.tails.res = append(h.tails.keys, reverse(r.Name)), append(h.tails.res, r)
		}
	}
	sort.Sort(h.heads)
	sort.Sort(h.tails)
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
	byHead := h.heads.run(s.Name[:strings.IndexByte(s.Name, '*')])
	byTail := h.tails.run(reverse(s.Name[strings.LastIndexByte(s.Name, '*')+1:]))
	if len(byTail) < len(byHead) {
		return byTail
	}
	return byHead
}

// reverse is s with its bytes in reverse order.
func reverse(s string) string {
	b := []byte(s)
	for i, j := 0, len(b)-1; i < j; i, j = i+1, j-1 {
		b[i], b[j] = b[j], b[i]
	}
	return string(b)
}
