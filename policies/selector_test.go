package policies

import (
	"strings"
	"testing"
)

func TestGlobMatch(t *testing.T) {
	for _, tc := range []struct {
		pat, name string
		want      bool
	}{
		{"*", "", true}, {"*", "db", true}, {"db", "db", true}, {"db", "dbx", false},
		{"stage-*", "stage-1", true}, {"stage-*", "stage", false}, {"*-out", "fetch-out", true},
		{"a*b*c", "aXbYc", true}, {"a*b*c", "aXcYb", false}, {"**", "x", true}, {"a*a", "a", false},
	} {
		if got := globMatch(tc.pat, tc.name); got != tc.want {
			t.Errorf("globMatch(%q, %q) = %v, want %v", tc.pat, tc.name, got, tc.want)
		}
	}
}

func TestGlobsIntersect(t *testing.T) {
	for _, tc := range []struct {
		p, q string
		want bool
	}{
		{"d*", "*b", true}, {"a*", "b*", false}, {"*", "x", true}, {"ab", "ab", true}, {"ab", "ac", false},
		{"a*c", "ab*", true}, {"*x", "*y", false}, {"x*y", "x*z", false}, {"x*", "*", true},
	} {
		if got := globsIntersect(tc.p, tc.q); got != tc.want {
			t.Errorf("globsIntersect(%q, %q) = %v, want %v", tc.p, tc.q, got, tc.want)
		}
		if got := globsIntersect(tc.q, tc.p); got != tc.want {
			t.Errorf("globsIntersect(%q, %q) = %v, want %v (not symmetric)", tc.q, tc.p, got, tc.want)
		}
	}
}

// A glob with more literal characters is more specific than one with
// fewer, and "*" is the least specific of all.
func TestLongerGlobDecides(t *testing.T) {
	p := mustParse(t, `resource "chan" "stage-1a" {}
grant "any" {
  resources = ["chan:*"]
}
grant "stages" {
  resources = ["chan:stage-*"]
}
grant "stage-1" {
  resources = ["chan:stage-1*"]
}
`)
	d := Evaluate(p, Request{Op: OpGrant, Kind: "chan", Name: "stage-1a"})
	if !d.Allowed || d.Rule.Name != "stage-1" {
		t.Fatalf("want stage-1 to decide:\n%s", d.Explain())
	}
}

func TestMalformedRequestsAreDenied(t *testing.T) {
	p := mustParse(t, evalPolicy)
	for name, req := range map[string]Request{
		"unknown kind":          {Op: OpGrant, Kind: "pipe", Name: "db"},
		"unknown op":            {Op: "launch", Kind: "sock", Name: "db"},
		"delegation, depth 0":   {Op: OpDelegate, Kind: "chan", Name: "stage-1", Module: etl, To: etl},
		"negative copies":       {Op: OpDelegate, Kind: "chan", Name: "stage-1", Module: etl, Depth: 1, Copies: -1, To: etl},
		"path for a sock":       {Op: OpGrant, Kind: "sock", Path: "/run/x"},
		"neither name nor path": {Op: OpGrant, Kind: "dir"},
	} {
		if d := Evaluate(p, req); d.Allowed || d.Rule != nil || d.Reason == "" {
			t.Errorf("%s: want denied with a reason and no rule:\n%s", name, d.Explain())
		}
	}
}

// Globs are ordered by their literal characters, not bytes: "é*" and
// "*a" have one each, so two grant rules written with them could decide
// "éa" at the same specificity, and the policy does not load; and "**",
// with none, is the wildcard "*" is, which ties with it.
func TestGlobsRankByCharactersAndStarsAloneAreTheWildcard(t *testing.T) {
	for _, tc := range []struct{ a, b string }{{"é*", "*a"}, {"**", "*"}, {"日本*", "*ab"}} {
		src := `resource "chan" "éa" {}
resource "chan" "日本ab" {}
grant "one" {
  resources = ["chan:` + tc.a + `"]
}
grant "two" {
  resources = ["chan:` + tc.b + `"]
}
`
		_, err := Parse("p.hcl", []byte(src))
		if err == nil || !strings.Contains(err.Error(), "rules tie") {
			t.Errorf("chan:%s and chan:%s: want a tie, got %v", tc.a, tc.b, err)
		}
	}
	p := mustParse(t, `resource "chan" "éa" {}
grant "any" {
  resources = ["chan:**"]
}
grant "e" {
  resources = ["chan:é*"]
}
`)
	if d := Evaluate(p, Request{Op: OpGrant, Kind: "chan", Name: "éa"}); !d.Allowed || d.Rule.Name != "e" {
		t.Fatalf("want the glob with a literal character to decide:\n%s", d.Explain())
	}
}
