package policies

import (
	"path"
	"sort"
)

// index finds the rules whose selectors cover a resource, most specific
// first, without scanning every rule: exact names and path prefixes are
// map look-ups; only globs of the request's kind are tried one by one.
type index struct {
	exact map[resourceKey][]entry // {kind, name}
	globs map[string][]entry      // by kind, rank descending
	paths map[resourceKey][]entry // {kind, prefix}
}

type entry struct {
	rule *Rule
	sel  Selector
}

func newIndex(rules []*Rule, t RuleType) *index {
	ix := &index{exact: map[resourceKey][]entry{}, globs: map[string][]entry{}, paths: map[resourceKey][]entry{}}
	for _, r := range rules {
		if r.Type != t {
			continue
		}
		for _, s := range r.Selectors {
			e := entry{rule: r, sel: s}
			switch {
			case s.Path != "":
				k := resourceKey{s.Kind, s.Path}
				ix.paths[k] = append(ix.paths[k], e)
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
