package policies

import (
	"path"
	"sort"
	"strings"
)

// index finds the rules whose selectors cover a resource, most specific
// first, without scanning every rule: exact names and path prefixes are
// map look-ups; only globs of the request's kind are tried one by one.
type index struct {
	exact map[resourceKey][]entry // {kind, name}
	globs map[string][]entry      // by kind, rank descending
	paths map[resourceKey][]entry // {kind, prefix}
	// hostPaths is every dir and file prefix, sorted by path: those
	// beneath a directory are one run of it.
	hostPaths []entry
}

// entry is one selector of a rule. host is the host path it covers: the
// selector's prefix, or in a deny index, the path of a dir or file
// resource (named) that a name selector covers.
type entry struct {
	rule  *Rule
	sel   Selector
	host  string
	named *Resource
}

// newIndex indexes the rules of type t. For deny rules, byName is the
// declared resources of each kind, sorted by name: a deny that names a
// dir or file also covers its host path (coverNamed).
func newIndex(rules []*Rule, t RuleType, byName map[string][]*Resource) *index {
	ix := &index{exact: map[resourceKey][]entry{}, globs: map[string][]entry{}, paths: map[resourceKey][]entry{}}
	covered := map[ruleResource]bool{}
	for _, r := range rules {
		if r.Type != t {
			continue
		}
		for _, s := range r.Selectors {
			e := entry{rule: r, sel: s, host: s.Path}
			if t == TypeDeny && s.Path == "" && (s.Kind == "dir" || s.Kind == "file") {
				ix.coverNamed(e, byName[s.Kind], covered)
			}
			switch {
			case s.Path != "":
				ix.addHostPath(s.Kind, e)
			case s.isGlob():
				ix.globs[s.Kind] = append(ix.globs[s.Kind], e)
			default:
				k := resourceKey{s.Kind, s.Name}
				ix.exact[k] = append(ix.exact[k], e)
			}
		}
	}
	for _, g := range ix.globs {
		sort.SliceStable(g, func(i, j int) bool { return g[i].sel.rank() > g[j].sel.rank() })
	}
	sort.SliceStable(ix.hostPaths, func(i, j int) bool { return ix.hostPaths[i].host < ix.hostPaths[j].host })
	return ix
}

func (ix *index) addHostPath(kind string, e entry) {
	k := resourceKey{kind, e.host}
	ix.paths[k] = append(ix.paths[k], e)
	ix.hostPaths = append(ix.hostPaths, e)
}

type ruleResource struct {
	rule *Rule
	res  *Resource
}

// coverNamed adds, for deny name selector e, an entry at the host path of
// each resource of its kind that it names, once per rule and resource
// (covered): a request for that path, for one beneath it or for a
// directory containing it is then denied as one for the name is. byName
// is sorted by name, so the names beginning with the selector's literal
// head are one run of it, and a glob is tried on those only.
func (ix *index) coverNamed(e entry, byName []*Resource, covered map[ruleResource]bool) {
	head, _, _ := strings.Cut(e.sel.Name, "*")
	i := sort.Search(len(byName), func(i int) bool { return byName[i].Name >= head })
	for _, res := range byName[i:] {
		if !strings.HasPrefix(res.Name, head) || (!e.sel.isGlob() && res.Name != head) {
			return
		}
		k := ruleResource{e.rule, res}
		if !globMatch(e.sel.Name, res.Name) || covered[k] {
			continue
		}
		covered[k] = true
		e.host, e.named = res.Path, res
		ix.addHostPath(res.Kind, e)
	}
}

// visitName calls visit for each entry covering the named resource, most
// specific first, until visit returns false.
func (ix *index) visitName(kind, name string, visit func(entry) bool) bool {
	for _, e := range ix.exact[resourceKey{kind, name}] {
		if !visit(e) {
			return false
		}
	}
	for _, e := range ix.globs[kind] {
		if globMatch(e.sel.Name, name) && !visit(e) {
			return false
		}
	}
	return true
}

// visitPath calls visit for each entry whose prefix covers host path p,
// longest prefix first, until visit returns false.
func (ix *index) visitPath(kind, p string, visit func(entry) bool) bool {
	for {
		for _, e := range ix.paths[resourceKey{kind, p}] {
			if !visit(e) {
				return false
			}
		}
		if p == "/" {
			return true
		}
		p = path.Dir(p)
	}
}

// visitHostPath calls visit for each dir or file entry whose prefix
// covers host path p, longest prefix first, and then, when p is a
// directory, for each one beneath it, which a handle on p reaches:
// directories and files are one namespace on the host, whichever kind a
// rule or a request names.
func (ix *index) visitHostPath(kind, p string, visit func(entry) bool) bool {
	for q := p; ; q = path.Dir(q) {
		for _, k := range hostKinds {
			for _, e := range ix.paths[resourceKey{k, q}] {
				if !visit(e) {
					return false
				}
			}
		}
		if q == "/" {
			break
		}
	}
	if kind != "dir" {
		return true
	}
	return ix.visitBeneath(p, visit)
}

var hostKinds = [...]string{"dir", "file"}

// visitBeneath calls visit for each dir or file entry whose prefix lies
// strictly beneath directory p, in path order.
func (ix *index) visitBeneath(p string, visit func(entry) bool) bool {
	dir := p + "/"
	if p == "/" {
		dir = "/"
	}
	i := sort.Search(len(ix.hostPaths), func(i int) bool { return ix.hostPaths[i].host >= dir })
	for _, e := range ix.hostPaths[i:] {
		if !strings.HasPrefix(e.host, dir) {
			break
		}
		if e.host != p && !visit(e) {
			return false
		}
	}
	return true
}
