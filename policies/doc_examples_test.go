package policies

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/caps"
)

// The examples docs/POLICY.md gives, each loaded and held to what the
// text around it says it means.

// docHCL returns the ```hcl blocks of docs/POLICY.md.
func docHCL(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "docs", "POLICY.md"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range regexp.MustCompile("(?s)```hcl\n(.*?)```").FindAllStringSubmatch(string(b), -1) {
		out = append(out, m[1])
	}
	return out
}

// The language's example: the billing account may give modules labelled
// app=billing the database, with read, write and poll, as an 8-hour
// lease; nobody else, and nothing else.
func TestPolicyDocLanguageExampleMeansWhatItSays(t *testing.T) {
	blocks := docHCL(t)
	if len(blocks) != 1 {
		t.Fatalf("docs/POLICY.md has %d hcl blocks; this test knows 1", len(blocks))
	}
	p := mustParse(t, blocks[0])
	billingUser := Subject{UID: 990, User: "billing"}
	app := Module{SHA256: hashA, Labels: map[string]string{"app": "billing"}}
	d := Evaluate(p, Request{Op: OpGrant, Kind: "sock", Name: "db", Subject: billingUser, Module: app})
	if want := caps.RightFDRead | caps.RightFDWrite | caps.RightPollFDReadwrite; !d.Allowed || d.Rights != want || d.TTL != 8*time.Hour {
		t.Fatalf("want allowed with %v for 8h:\n%s", want, d.Explain())
	}
	for name, req := range map[string]Request{
		"another user":   {Op: OpGrant, Kind: "sock", Name: "db", Subject: Subject{UID: 1000, User: "alice"}, Module: app},
		"another module": {Op: OpGrant, Kind: "sock", Name: "db", Subject: billingUser, Module: Module{SHA256: hashA, Labels: map[string]string{"app": "Billing"}}},
		"passed on":      {Op: OpDelegate, Kind: "sock", Name: "db", Subject: billingUser, Module: app, Depth: 1, To: app},
	} {
		if d := Evaluate(p, req); d.Allowed {
			t.Errorf("%s: allowed:\n%s", name, d.Explain())
		}
	}
}

// quotedReason is a reason docs/POLICY.md quotes: the policy and request
// it is given of, and the words Evaluate's reason must hold.
type quotedReason struct {
	name, src string
	req       Request
	real      map[string]string // where links lead (WithRealPaths)
	reason    string
}

// quotedReasons are the reasons docs/POLICY.md quotes, each with an
// example that gives it.
var quotedReasons = []quotedReason{
	{"a deny by name", `resource "chan" "secret" {}
grant "all" { resources = ["chan:*"] }
deny "no-secrets" { resources = ["chan:secret"] }`,
		Request{Op: OpGrant, Kind: "chan", Name: "secret"}, nil,
		`chan:secret is denied by deny "no-secrets"`},
	{"a bare word is a resource", `grant "all" { resources = ["dir:/"] }`,
		Request{Op: OpGrant, Kind: "dir", Name: "reports"}, nil,
		`dir:reports is not declared in the policy (a host path has a /: dir:./reports)`},
	{"a directory containing a denied one", `grant "all" { resources = ["dir:/"] }
deny "reports-private" { resources = ["dir:/srv/reports/private"] }`,
		Request{Op: OpGrant, Kind: "dir", Path: "/srv/reports"}, nil,
		`dir:/srv/reports is denied by deny "reports-private": it contains dir:/srv/reports/private, which a handle on it would reach`},
	{"the root contains it too", `grant "all" { resources = ["dir:/"] }
deny "reports-private" { resources = ["dir:/srv/reports/private"] }`,
		Request{Op: OpGrant, Kind: "dir", Path: "/"}, nil,
		`dir:/ is denied by deny "reports-private": it contains dir:/srv/reports/private, which a handle on it would reach`},
	{"a directory containing a denied resource", `resource "dir" "reports" { path = "/srv/reports" }
grant "all" { resources = ["dir:/"] }
deny "no-reports" { resources = ["dir:reports"] }`,
		Request{Op: OpGrant, Kind: "dir", Path: "/srv"}, nil,
		`dir:/srv is denied by deny "no-reports": it contains dir:reports (/srv/reports), which a handle on it would reach`},
	{"a denied resource by a glob", `resource "dir" "reports" { path = "/srv/reports" }
grant "all" { resources = ["file:/"] }
deny "no-reports" { resources = ["dir:rep*"] }`,
		Request{Op: OpGrant, Kind: "file", Path: "/srv/reports/q1.csv"}, nil,
		`denied by deny "no-reports"`},
	{"a resource declared through a link", `resource "dir" "current" { path = "/srv/current" }
grant "all" { resources = ["dir:current"] }
deny "private" { resources = ["dir:/srv/private"] }`,
		Request{Op: OpGrant, Kind: "dir", Name: "current"}, map[string]string{"/srv/current": "/srv/private"},
		`dir:current is denied by deny "private": its path /srv/current leads to /srv/private`},
	{"a deny written through a link stops its target", `grant "all" { resources = ["dir:/"] }
deny "link" { resources = ["dir:/srv/link"] }`,
		Request{Op: OpGrant, Kind: "dir", Path: "/srv/private"}, map[string]string{"/srv/link": "/srv/private"},
		`dir:/srv/private is denied by deny "link"`},
	{"and the directory holding its target", `grant "all" { resources = ["dir:/"] }
deny "link" { resources = ["dir:/srv/link"] }`,
		Request{Op: OpGrant, Kind: "dir", Path: "/srv"}, map[string]string{"/srv/link": "/srv/private"},
		`dir:/srv is denied by deny "link"`},
	{"a socket beneath a denied directory", `resource "sock" "db" { unix = "/srv/private/db.sock" }
grant "all" { resources = ["sock:*"] }
deny "private" { resources = ["dir:/srv/private"] }`,
		Request{Op: OpGrant, Kind: "sock", Name: "db"}, nil,
		`sock:db is denied by deny "private"`},
	{"deny file stops the same path as a dir", `grant "all" { resources = ["dir:/"] }
deny "shadow" { resources = ["file:/etc/shadow"] }`,
		Request{Op: OpGrant, Kind: "dir", Path: "/etc/shadow"}, nil,
		`dir:/etc/shadow is denied by deny "shadow"`},
	{"deny dir stops a file beneath", `grant "all" { resources = ["file:/"] }
deny "private" { resources = ["dir:/srv/private"] }`,
		Request{Op: OpGrant, Kind: "file", Path: "/srv/private/key"}, nil,
		`file:/srv/private/key is denied by deny "private"`},
	{"deny dir:/etc stops a resource beneath /etc", `resource "dir" "ssl" { path = "/etc/ssl" }
grant "all" { resources = ["dir:ssl"] }
deny "etc" { resources = ["dir:/etc"] }`,
		Request{Op: OpGrant, Kind: "dir", Name: "ssl"}, nil,
		`dir:ssl is denied by deny "etc"`},
}

// Each reason docs/POLICY.md quotes is the reason Evaluate gives.
func TestPolicyDocQuotedReasons(t *testing.T) {
	for _, c := range quotedReasons {
		t.Run(c.name, func(t *testing.T) {
			p := mustParse(t, c.src)
			if c.real != nil {
				p = p.WithRealPaths(linksLeadingTo(c.real))
			}
			d := Evaluate(p, c.req)
			if d.Allowed || !strings.Contains(d.Reason, c.reason) {
				t.Fatalf("want denied, the reason holding\n%s\ngot:\n%s", c.reason, d.Explain())
			}
		})
	}
}

// linksLeadingTo is the path resolver of a host whose only links are
// those of real, each path to where it leads: a link's path becomes its
// target, any other path stays as it is.
func linksLeadingTo(real map[string]string) func(string) string {
	return func(s string) string {
		if r, ok := real[s]; ok {
			return r
		}
		return s
	}
}

// The selectors' table: a path prefix covers element by element, a "*"
// element is refused, and a "*" inside a name is the name's.
func TestPolicyDocSelectorTable(t *testing.T) {
	p := mustParse(t, `grant "a" { resources = ["dir:/srv/a", "file:/srv/x*y"] }`)
	for path, want := range map[string]bool{"/srv/a": true, "/srv/a/b": true, "/srv/ab": false, "/srv": false} {
		if d := Evaluate(p, Request{Op: OpGrant, Kind: "dir", Path: path}); d.Allowed != want {
			t.Errorf("dir:%s: allowed %v, want %v", path, d.Allowed, want)
		}
	}
	for path, want := range map[string]bool{"/srv/x*y": true, "/srv/x*y/z": true, "/srv/xzy": false} {
		if d := Evaluate(p, Request{Op: OpGrant, Kind: "file", Path: path}); d.Allowed != want {
			t.Errorf("file:%s: allowed %v, want %v", path, d.Allowed, want)
		}
	}
	if _, err := Parse("p.hcl", []byte(`grant "a" { resources = ["dir:/srv/*"] }`)); err == nil || !strings.Contains(err.Error(), `(write "dir:/srv")`) {
		t.Errorf("dir:/srv/*: %v", err)
	}
}

// Matching order: "a rule for one user on sock:db and a rule for
// everybody on sock:* mean this user as the first rule says, everyone
// else as the second"; globs with more literal characters first; the
// longer path prefix first.
func TestPolicyDocMatchingOrder(t *testing.T) {
	p := mustParse(t, `resource "sock" "db" { tcp = "h:1" }
resource "chan" "stage-1a" {}
grant "alice-db" {
  resources = ["sock:db"]
  rights    = ["fd_read", "fd_write"]
  subject { users = ["alice"] }
}
grant "everyone" {
  resources = ["sock:*"]
  rights    = ["fd_read"]
}
grant "stage-1" { resources = ["chan:stage-1*"] }
grant "stages" { resources = ["chan:stage-*"] }
grant "data" { resources = ["dir:/srv/data"] }
grant "srv" { resources = ["dir:/srv"] }
grant "root" { resources = ["dir:/"] }
`)
	for _, c := range []struct {
		req  Request
		rule string
	}{
		{Request{Op: OpGrant, Kind: "sock", Name: "db", Subject: alice}, "alice-db"},
		{Request{Op: OpGrant, Kind: "sock", Name: "db", Subject: bob}, "everyone"},
		{Request{Op: OpGrant, Kind: "chan", Name: "stage-1a"}, "stage-1"},
		{Request{Op: OpGrant, Kind: "dir", Path: "/srv/data/x"}, "data"},
		{Request{Op: OpGrant, Kind: "dir", Path: "/srv/x"}, "srv"},
		{Request{Op: OpGrant, Kind: "dir", Path: "/x"}, "root"},
	} {
		if d := Evaluate(p, c.req); !d.Allowed || d.Rule.Name != c.rule {
			t.Errorf("%s%s: want %s to decide:\n%s", c.req.Name, c.req.Path, c.rule, d.Explain())
		}
	}
}

// "max_depth is how many hops from the grant a copy may be: 1 lets the
// holder of the grant pass it on once, and the recipient not again";
// max_copies is the live copies of one grant at once.
func TestPolicyDocDelegationLimits(t *testing.T) {
	p := mustParse(t, `resource "chan" "jobs" {}
delegate "once" {
  resources  = ["chan:jobs"]
  max_depth  = 1
  max_copies = 2
}
`)
	pass := func(depth, copies int) Decision {
		return Evaluate(p, Request{Op: OpDelegate, Kind: "chan", Name: "jobs", Depth: depth, Copies: copies, To: other})
	}
	if d := pass(1, 0); !d.Allowed {
		t.Errorf("the holder of the grant passes it on: %s", d.Explain())
	}
	if d := pass(2, 1); d.Allowed || !strings.Contains(d.Reason, "depth 2 exceeds max_depth 1") {
		t.Errorf("the recipient passes it again: %s", d.Explain())
	}
	if d := pass(1, 1); !d.Allowed {
		t.Errorf("a second copy of two: %s", d.Explain())
	}
	if d := pass(1, 2); d.Allowed || !strings.Contains(d.Reason, "max_copies") {
		t.Errorf("a third copy of two: %s", d.Explain())
	}
}

// The renderings docs/POLICY.md shows, of the examples they name.
func TestPolicyDocExplainRenderings(t *testing.T) {
	reporting := loadExample(t, "reporting.hcl")
	d := Evaluate(reporting, Request{Op: OpGrant, Kind: "dir", Path: "/srv/reports/private/x",
		Subject: Subject{UID: 1200, GIDs: []uint32{1500}}, Module: Module{SHA256: hashA, Labels: map[string]string{"role": "report"}}})
	want := `denied by deny "reports-private" (examples/reporting.hcl:26)
  reason:  dir:/srv/reports/private/x is denied by deny "reports-private"
  closest: grant "reports-read" (examples/reporting.hcl:12)
`
	if d.Explain() != want {
		t.Errorf("reporting:\n%s\nwant\n%s", d.Explain(), want)
	}
	db := loadExample(t, "database-client.hcl")
	d = Evaluate(db, Request{Op: OpGrant, Kind: "sock", Name: "db", Subject: Subject{UID: 990, User: "billing"},
		Module: Module{SHA256: hashA, Labels: map[string]string{"app": "billing"}}})
	want = `allowed by grant "billing-db" (examples/database-client.hcl:10)
  reason:  grant sock:db allowed by grant "billing-db"
  rights:  fd_read|fd_write|poll_fd_readwrite|sock_shutdown
`
	if d.Explain() != want {
		t.Errorf("database-client:\n%s\nwant\n%s", d.Explain(), want)
	}
	j, err := d.JSON()
	wantJSON := `{"allowed":true,"rule":{"type":"grant","name":"billing-db","file":"examples/database-client.hcl","line":10},` +
		`"reason":"grant sock:db allowed by grant \"billing-db\"","rights":["fd_read","fd_write","poll_fd_readwrite","sock_shutdown"]}`
	if err != nil || string(j) != wantJSON {
		t.Errorf("JSON:\n%s\nwant\n%s", j, wantJSON)
	}
}

// "A deny with module { sha256 = [X] } keeps X from being granted the
// resource and from passing it on, not from being handed a copy ... write
// the deny twice, once with module and once with to."
func TestPolicyDocADenyOfAModuleAsGiverAndAsRecipient(t *testing.T) {
	p := mustParse(t, `resource "sock" "db" { tcp = "h:1" }
grant "all" { resources = ["sock:db"] }
delegate "pass" {
  resources = ["sock:db"]
  max_depth = 2
}
deny "not-b" {
  resources = ["sock:db"]
  module { sha256 = ["`+hashB+`"] }
}
`)
	toB := Request{Op: OpDelegate, Kind: "sock", Name: "db", Depth: 1, Module: Module{SHA256: hashA}, To: Module{SHA256: hashB}}
	if d := Evaluate(p, toB); !d.Allowed {
		t.Fatalf("a deny naming the module as giver stops a copy handed to it:\n%s", d.Explain())
	}
	for _, req := range []Request{{Op: OpGrant, Kind: "sock", Name: "db", Module: Module{SHA256: hashB}},
		{Op: OpDelegate, Kind: "sock", Name: "db", Depth: 2, Module: Module{SHA256: hashB}, To: Module{SHA256: hashA}}} {
		if d := Evaluate(p, req); d.Allowed {
			t.Errorf("%s: allowed:\n%s", req.Op, d.Explain())
		}
	}
	both := mustParse(t, `resource "sock" "db" { tcp = "h:1" }
delegate "pass" {
  resources = ["sock:db"]
  max_depth = 2
}
deny "not-b" {
  resources = ["sock:db"]
  module { sha256 = ["`+hashB+`"] }
}
deny "not-to-b" {
  resources = ["sock:db"]
  to { sha256 = ["`+hashB+`"] }
}
`)
	if d := Evaluate(both, toB); d.Allowed || d.Rule.Name != "not-to-b" {
		t.Fatalf("the deny with to: %s", d.Explain())
	}
}
