package policies

import (
	"strings"
	"testing"
)

const denyListPolicy = `resource "dir" "reports" {
  path = "/srv/reports"
}
resource "sock" "db" {
  tcp = "127.0.0.1:5432"
}
grant "all" {
  resources = ["dir:*", "sock:*", "dir:/"]
}
`

func TestDenyListDecides(t *testing.T) {
	p, err := Parse("p.hcl", []byte(denyListPolicy))
	if err != nil {
		t.Fatal(err)
	}
	l, err := ParseDenyList([]string{"dir:/srv/reports/private", "sock:*", "chan:secret-*", "file:reports"})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		p      *Policy
		req    Request
		denied bool
		reason string // a part of the reason, when denied
	}{
		{"path beneath", nil, Request{Op: OpGrant, Kind: "file", Path: "/srv/reports/private/key"}, true, "file:/srv/reports/private/key is denied by --deny dir:/srv/reports/private"},
		{"directory above", nil, Request{Op: OpGrant, Kind: "dir", Path: "/srv"}, true, "it contains dir:/srv/reports/private, which a handle on it would reach"},
		{"beside", nil, Request{Op: OpGrant, Kind: "dir", Path: "/srv/reports/public"}, false, ""},
		{"named dir containing it", p, Request{Op: OpGrant, Kind: "dir", Name: "reports"}, true, "--deny dir:/srv/reports/private"},
		{"named dir, no policy", nil, Request{Op: OpGrant, Kind: "dir", Name: "reports"}, false, ""},
		{"declared sock", p, Request{Op: OpDelegate, Kind: "sock", Name: "db", Depth: 1}, true, "sock:db is denied by --deny sock:*"},
		{"inline address", nil, Request{Op: OpGrant, Kind: "sock"}, true, "a sock of an inline address is denied by --deny sock:*"},
		{"inline listener", nil, Request{Op: OpGrant, Kind: "listen"}, false, ""},
		{"undeclared chan by glob", nil, Request{Op: OpGrant, Kind: "chan", Name: "secret-1"}, true, "chan:secret-1 is denied by --deny chan:secret-*"},
		{"other chan", nil, Request{Op: OpGrant, Kind: "chan", Name: "public"}, false, ""},
		// file:reports names no file resource: nothing is covered by it.
		{"name of another kind", p, Request{Op: OpGrant, Kind: "file", Path: "/srv/reports/x"}, false, ""},
	}
	for _, c := range cases {
		d, denied := l.Decide(c.p, c.req)
		if denied != c.denied || d.Allowed {
			t.Errorf("%s: denied %v (%+v), want %v", c.name, denied, d, c.denied)
			continue
		}
		if denied && (!strings.Contains(d.Reason, c.reason) || d.Rule == nil || d.Rule.File != DenyFile) {
			t.Errorf("%s: reason %q, rule %+v; want the reason to say %q and the rule to be the list's", c.name, d.Reason, d.Rule, c.reason)
		}
	}
}

func TestDenyListByNameCoversTheDeclaredPath(t *testing.T) {
	p, err := Parse("p.hcl", []byte(denyListPolicy))
	if err != nil {
		t.Fatal(err)
	}
	l, err := ParseDenyList([]string{"dir:reports"})
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/srv/reports", "/srv/reports/2026", "/srv", "/"} {
		d, denied := l.Decide(p, Request{Op: OpGrant, Kind: "dir", Path: path})
		if !denied || !strings.Contains(d.Reason, "--deny dir:reports") {
			t.Errorf("dir:%s: denied %v (%q), want denied by --deny dir:reports", path, denied, d.Reason)
		}
	}
	if _, denied := l.Decide(p, Request{Op: OpGrant, Kind: "dir", Path: "/srv/other"}); denied {
		t.Error("dir:/srv/other is denied, but lies beside /srv/reports")
	}
	// The same list under no policy knows no path for the name.
	if _, denied := l.Decide(nil, Request{Op: OpGrant, Kind: "dir", Path: "/srv/reports"}); denied {
		t.Error("without a policy, dir:reports denied a path")
	}
	// A reloaded policy that declares it elsewhere moves what it covers.
	q, err := Parse("q.hcl", []byte(`resource "dir" "reports" { path = "/data/reports" }`))
	if err != nil {
		t.Fatal(err)
	}
	if _, denied := l.Decide(q, Request{Op: OpGrant, Kind: "dir", Path: "/data"}); !denied {
		t.Error("under a policy declaring reports at /data/reports, dir:/data is not denied")
	}
	if _, denied := l.Decide(q, Request{Op: OpGrant, Kind: "dir", Path: "/srv/reports"}); denied {
		t.Error("under a policy declaring reports at /data/reports, dir:/srv/reports is still denied")
	}
}

func TestParseDenyListRefusesBadSelectors(t *testing.T) {
	for text, want := range map[string]string{
		"reports":           "want KIND:NAME",
		"disk:x":            "unknown resource kind",
		"sock:/run/x":       "dir and file only",
		"dir:/srv/../etc":   "not clean",
		"chan:a=b":          `may not contain`,
		"dir:":              "is empty",
		"listen:" + "x\x01": "control character",
	} {
		_, err := ParseDenyList([]string{"dir:/ok", text})
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "deny ") {
			t.Errorf("ParseDenyList(%q): %v, want an error naming it and saying %q", text, err, want)
		}
	}
	if _, err := ParseDenyList(make([]string, MaxDenySelectors+1)); err == nil || !strings.Contains(err.Error(), "at most") {
		t.Errorf("%d selectors: %v, want refused", MaxDenySelectors+1, err)
	}
}

// A policy's deny rules cover where the links of their host paths lead,
// once WithRealPaths says where that is: a path written through a link,
// and a resource declared through one.
func TestPolicyWithRealPathsCoversWhereDenyLinksLead(t *testing.T) {
	p, err := Parse("p.hcl", []byte(`
resource "dir" "reports" {
  path = "/srv/reports-link"
}
grant "all" {
  resources = ["dir:/", "dir:reports"]
}
deny "by-path" {
  resources = ["dir:/srv/link"]
}
deny "by-name" {
  resources = ["dir:reports"]
}
`))
	if err != nil {
		t.Fatal(err)
	}
	real := func(p string) string {
		switch p {
		case "/srv/link":
			return "/data/private"
		case "/srv/reports-link":
			return "/data/reports"
		}
		return p
	}
	q := p.WithRealPaths(real)
	for _, c := range []struct {
		path, rule string
	}{
		{"/data/private", "by-path"},
		{"/data/private/x", "by-path"},
		{"/data/reports/2026", "by-name"},
		{"/srv/link", "by-path"},
	} {
		if d := Evaluate(p, Request{Op: OpGrant, Kind: "dir", Path: c.path}); d.Allowed == (c.path == "/srv/link") {
			t.Errorf("without real paths, dir:%s: allowed %v", c.path, d.Allowed)
		}
		d := Evaluate(q, Request{Op: OpGrant, Kind: "dir", Path: c.path})
		if d.Allowed || d.Rule == nil || d.Rule.Name != c.rule {
			t.Errorf("with real paths, dir:%s: %+v, want denied by %q", c.path, d, c.rule)
		}
	}
	// A directory containing where a link leads is denied too.
	if d := Evaluate(q, Request{Op: OpGrant, Kind: "dir", Path: "/data"}); d.Allowed {
		t.Errorf("with real paths, dir:/data (containing both targets) is allowed: %+v", d)
	}
	if d := Evaluate(q, Request{Op: OpGrant, Kind: "dir", Path: "/data/public"}); !d.Allowed {
		t.Errorf("with real paths, dir:/data/public beside them: %+v, want allowed", d)
	}
	if (*Policy)(nil).WithRealPaths(real) != nil {
		t.Error("WithRealPaths of no policy: want none")
	}
}

// A unix socket is a file on the host: a deny path above a sock or listen
// resource's unix path covers the resource, as it covers a file there.
func TestADenyPathCoversASocketResourceBeneathIt(t *testing.T) {
	p, err := Parse("p.hcl", []byte(`
resource "sock" "db" {
  unix = "/srv/private/db.sock"
}
resource "listen" "api" {
  unix = "/srv/private/api.sock"
}
resource "sock" "cache" {
  unix = "/run/cache.sock"
}
grant "all" {
  resources = ["sock:*", "listen:*"]
}
deny "private" {
  resources = ["dir:/srv/private"]
}
`))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		kind, name string
		denied     bool
	}{{"sock", "db", true}, {"listen", "api", true}, {"sock", "cache", false}} {
		d := Evaluate(p, Request{Op: OpGrant, Kind: c.kind, Name: c.name})
		if d.Allowed == c.denied {
			t.Errorf("%s:%s: %+v, want denied %v", c.kind, c.name, d, c.denied)
		}
	}
	l, err := ParseDenyList([]string{"file:/srv/private/db.sock"})
	if err != nil {
		t.Fatal(err)
	}
	if _, denied := l.Decide(p, Request{Op: OpGrant, Kind: "sock", Name: "db"}); !denied {
		t.Error("a deny list naming the socket file does not cover sock:db")
	}
}

// A resource declared through a symbolic link is opened where the link
// led when the policy was put in force: a deny rule covers it there, as
// it covers an inline grant of that place, and so does a deny of a path
// beneath where it leads. Its path as written is covered as before.
func TestADenyCoversANamedResourceWhereItsDeclaredLinkLeads(t *testing.T) {
	p, err := Parse("p.hcl", []byte(`
resource "dir" "sneaky" {
  path = "/srv/link"
}
resource "dir" "above" {
  path = "/srv/up"
}
resource "file" "key" {
  path = "/srv/key-link"
}
resource "sock" "db" {
  unix = "/run/db-link/db.sock"
}
resource "dir" "public" {
  path = "/srv/pub-link"
}
grant "all" {
  resources = ["dir:*", "file:*", "sock:*"]
}
deny "private" {
  resources = ["dir:/data/private"]
}
`))
	if err != nil {
		t.Fatal(err)
	}
	q := p.WithRealPaths(linksIntoData)
	for _, c := range []struct {
		kind, name, reason string
	}{
		{"dir", "sneaky", `dir:sneaky is denied by deny "private": its path /srv/link leads to /data/private`},
		{"dir", "above", `dir:above is denied by deny "private": its path /srv/up leads to /data, which contains dir:/data/private, which a handle on it would reach`},
		{"file", "key", `file:key is denied by deny "private": its path /srv/key-link leads to /data/private/key`},
		{"sock", "db", `sock:db is denied by deny "private"`},
	} {
		d := Evaluate(q, Request{Op: OpGrant, Kind: c.kind, Name: c.name})
		if d.Allowed || d.Rule == nil || d.Rule.Name != "private" {
			t.Errorf("%s:%s, declared through a link into /data/private: %+v, want denied by \"private\"", c.kind, c.name, d)
			continue
		}
		if d.Reason != c.reason {
			t.Errorf("%s:%s: reason %q, want %q", c.kind, c.name, d.Reason, c.reason)
		}
		if d := Evaluate(q, Request{Op: OpDelegate, Kind: c.kind, Name: c.name, Depth: 1}); d.Allowed || d.Rule == nil || d.Rule.Name != "private" {
			t.Errorf("delegating %s:%s: %+v, want denied by \"private\"", c.kind, c.name, d)
		}
	}
	if d := Evaluate(q, Request{Op: OpGrant, Kind: "dir", Name: "public"}); !d.Allowed {
		t.Errorf("dir:public, declared through a link beside /data/private: %+v, want allowed", d)
	}
}

// linksIntoData says where the links of the resources of the tests above
// lead: into /data, where /data/private is denied.
func linksIntoData(p string) string {
	switch p {
	case "/srv/link":
		return "/data/private"
	case "/srv/up":
		return "/data"
	case "/srv/key-link":
		return "/data/private/key"
	case "/run/db-link/db.sock":
		return "/data/private/db.sock"
	case "/srv/pub-link":
		return "/data/public"
	}
	return p
}

// A deny naming a resource covers another declared through a link to it.
func TestADenyNamingAResourceCoversOneDeclaredThroughALinkToIt(t *testing.T) {
	p, err := Parse("p.hcl", []byte(`
resource "dir" "secret" {
  path = "/data/private"
}
resource "dir" "sneaky" {
  path = "/srv/link"
}
grant "all" {
  resources = ["dir:*"]
}
deny "secret" {
  resources = ["dir:secret"]
}
`))
	if err != nil {
		t.Fatal(err)
	}
	want := `dir:sneaky is denied by deny "secret": its path /srv/link leads to /data/private, at or beneath dir:secret (/data/private)`
	if d := Evaluate(p.WithRealPaths(linksIntoData), Request{Op: OpGrant, Kind: "dir", Name: "sneaky"}); d.Allowed || d.Reason != want {
		t.Errorf("dir:sneaky under a deny of dir:secret where it leads: %+v, want denied: %s", d, want)
	}
}
