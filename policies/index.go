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
	// hostPaths is every dir and file prefix. In the deny index, the only
	// one visitBeneath walks, coverNamed sorts it by path once it holds
	// the named resources' paths too: those beneath a directory are then
	// one run of it.
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

// newIndex indexes the rules of type t. A deny index also covers the
// host paths of the resources its rules name (coverNamed).
func newIndex(rules []*Rule, t RuleType) *index {
	ix := &index{exact: map[resourceKey][]entry{}, globs: map[string][]entry{}, paths: map[resourceKey][]entry{}}
	for _, r := range rules {
		if r.Type != t {
			continue
		}
		for _, s := range r.Selectors {
			e := entry{rule: r, sel: s, host: s.Path}
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
	return ix
}

func (ix *index) addHostPath(kind string, e entry) {
	k := resourceKey{kind, e.host}
	ix.paths[k] = append(ix.paths[k], e)
	ix.hostPaths = append(ix.hostPaths, e)
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
