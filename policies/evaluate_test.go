package policies

import (
	"strings"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/caps"
)

const hashA = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
const hashB = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

// evalPolicy exercises every rule type; its line numbers are asserted
// below, so edit with care.
const evalPolicy = `resource "sock" "db" {
  tcp = "127.0.0.1:5432"
}
resource "sock" "cache" {
  unix = "/run/cache.sock"
}
resource "chan" "stage-1" {}
resource "chan" "stage-2" {}
resource "dir" "etc" {
  path = "/etc"
}

grant "db-for-billing" {
  resources = ["sock:db"]
  subject {
    users = ["alice"]
  }
  module {
    labels = { app = "billing" }
  }
  rights = ["fd_read", "fd_write", "poll_fd_readwrite"]
  ttl    = "1h"
}

grant "any-sock-ro" {
  resources = ["sock:*"]
  rights    = ["fd_read", "poll_fd_readwrite"]
}

grant "stages" {
  resources = ["chan:stage-*"]
  module {
    labels = { pipeline = "etl" }
  }
}

grant "srv" {
  resources = ["dir:/srv"]
  read_only = true
}

grant "srv-data" {
  resources = ["dir:/srv/data"]
  subject {
    uids = [1000]
  }
}

grant "etc-by-name" {
  resources = ["dir:etc"]
}

delegate "stage-hop" {
  resources  = ["chan:stage-*"]
  max_depth  = 1
  max_copies = 2
  rights     = ["fd_read", "fd_write"]
  ttl        = "10m"
  to {
    labels = { pipeline = "etl" }
  }
}

delegate "db-to-hash" {
  resources = ["sock:db"]
  max_depth = 2
  to {
    sha256 = ["` + hashB + `"]
  }
}

deny "no-secrets" {
  resources = ["dir:/srv/data/secret", "dir:/etc"]
}

deny "no-bob-db" {
  resources = ["sock:db"]
  on        = ["grant"]
  subject {
    users = ["bob"]
  }
}

resource "sock" "queue" {
  tcp = "127.0.0.1:5672"
}

delegate "queue-hop" {
  resources = ["sock:queue"]
  max_depth = 1
}

deny "queue-not-to-b" {
  resources = ["sock:queue"]
  on        = ["delegate"]
  to {
    sha256 = ["` + hashB + `"]
  }
}
`

func mustParse(t testing.TB, src string) *Policy {
	t.Helper()
	p, err := Parse("eval.hcl", []byte(src))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return p
}

var (
	alice   = Subject{UID: 1000, User: "alice", GIDs: []uint32{100}}
	bob     = Subject{UID: 1001, User: "bob", GIDs: []uint32{100}}
	billing = Module{SHA256: hashA, Labels: map[string]string{"app": "billing"}}
	etl     = Module{SHA256: hashA, Labels: map[string]string{"pipeline": "etl"}}
	other   = Module{SHA256: hashB}
)

func TestEvaluate(t *testing.T) {
	p := mustParse(t, evalPolicy)
	rw := caps.RightFDRead | caps.RightFDWrite
	for _, tc := range []struct {
		name    string
		req     Request
		allowed bool
		rule    string // deciding rule, "" for none
		line    int
		closest string
		rights  caps.Rights // checked when allowed
		ttl     time.Duration
		reason  string // a substring of the reason
	}{
		{"exact name beats glob", Request{Op: OpGrant, Kind: "sock", Name: "db", Subject: alice, Module: billing},
			true, "db-for-billing", 13, "", caps.RightFDRead | caps.RightFDWrite | caps.RightPollFDReadwrite, time.Hour, "allowed"},
		{"glob decides when the exact rule's conditions fail", Request{Op: OpGrant, Kind: "sock", Name: "db", Subject: alice, Module: other},
			true, "any-sock-ro", 25, "", caps.RightFDRead | caps.RightPollFDReadwrite, 0, ""},
		{"asked rights are clipped to the ceiling", Request{Op: OpGrant, Kind: "sock", Name: "cache", Rights: rw, Subject: bob},
			true, "any-sock-ro", 25, "", caps.RightFDRead, 0, ""},
		{"deny wins over the exact grant", Request{Op: OpGrant, Kind: "sock", Name: "db", Subject: bob, Module: billing},
			false, "no-bob-db", 76, "any-sock-ro", 0, 0, "denied by deny \"no-bob-db\""},
		{"deny on grants only leaves delegation to delegate rules", Request{Op: OpDelegate, Kind: "sock", Name: "db", Subject: bob, Depth: 2, To: other},
			true, "db-to-hash", 64, "", caps.RightsAll, 0, ""},
		{"recipient by hash refused", Request{Op: OpDelegate, Kind: "sock", Name: "db", Subject: alice, Depth: 1, To: etl},
			false, "", 0, "db-to-hash", 0, 0, "recipient (to)"},
		{"undeclared name", Request{Op: OpGrant, Kind: "sock", Name: "nope", Subject: alice},
			false, "", 0, "", 0, 0, "not declared"},
		{"label subject match", Request{Op: OpGrant, Kind: "chan", Name: "stage-2", Module: etl},
			true, "stages", 30, "", caps.RightsAll, 0, ""},
		{"label mismatch is default deny with closest", Request{Op: OpGrant, Kind: "chan", Name: "stage-2", Module: billing},
			false, "", 0, "stages", 0, 0, "module does not match"},
		{"longer path prefix decides", Request{Op: OpGrant, Kind: "dir", Path: "/srv/data/x", Subject: alice},
			true, "srv-data", 42, "", caps.RightsAll, 0, ""},
		{"shorter prefix when the longer one's subject fails", Request{Op: OpGrant, Kind: "dir", Path: "/srv/data/x", Subject: bob},
			true, "srv", 37, "", caps.RightsAll &^ caps.RightsWriteMask, 0, ""},
		{"prefix is element-wise", Request{Op: OpGrant, Kind: "dir", Path: "/srvx", Subject: alice},
			false, "", 0, "", 0, 0, "default deny"},
		{"path is cleaned before matching", Request{Op: OpGrant, Kind: "dir", Path: "/srv/data/../data/secret/k", Subject: alice},
			false, "no-secrets", 72, "srv-data", 0, 0, "denied"},
		{"path deny covers a named resource's path", Request{Op: OpGrant, Kind: "dir", Name: "etc", Subject: alice},
			false, "no-secrets", 72, "etc-by-name", 0, 0, ""},
		{"relative path refused", Request{Op: OpGrant, Kind: "dir", Path: "srv", Subject: alice},
			false, "", 0, "", 0, 0, "absolute host path"},
		{"delegation within depth and fan-out, ttl carried", Request{Op: OpDelegate, Kind: "chan", Name: "stage-1", Module: etl, Depth: 1, Copies: 1, To: etl},
			true, "stage-hop", 53, "", rw, 10 * time.Minute, ""},
		{"depth beyond max_depth", Request{Op: OpDelegate, Kind: "chan", Name: "stage-1", Module: etl, Depth: 2, To: etl},
			false, "stage-hop", 53, "", 0, 0, "depth 2 exceeds max_depth 1"},
		{"fan-out beyond max_copies", Request{Op: OpDelegate, Kind: "chan", Name: "stage-1", Module: etl, Depth: 1, Copies: 2, To: etl},
			false, "stage-hop", 53, "", 0, 0, "max_copies"},
		{"recipient by label refused", Request{Op: OpDelegate, Kind: "chan", Name: "stage-1", Module: etl, Depth: 1, To: billing},
			false, "", 0, "stage-hop", 0, 0, "recipient"},
		{"no delegate rule means no delegation", Request{Op: OpDelegate, Kind: "sock", Name: "cache", Depth: 1, To: etl},
			false, "", 0, "", 0, 0, "no delegate rule"},
		{"a deny rule's recipient not met", Request{Op: OpDelegate, Kind: "sock", Name: "queue", Depth: 1, To: etl},
			true, "queue-hop", -1, "", caps.RightsAll, 0, ""},
		{"a deny rule's recipient met", Request{Op: OpDelegate, Kind: "sock", Name: "queue", Depth: 1, To: other},
			false, "queue-not-to-b", -1, "queue-hop", 0, 0, "denied"},
		{"an unknown recipient meets a deny rule's to", Request{Op: OpDelegate, Kind: "sock", Name: "queue", Depth: 1, ToUnknown: true},
			false, "queue-not-to-b", -1, "queue-hop", 0, 0, "denied"},
		{"an unknown recipient fails a delegate rule's to", Request{Op: OpDelegate, Kind: "sock", Name: "db", Subject: alice, Depth: 1, ToUnknown: true},
			false, "", 0, "db-to-hash", 0, 0, "recipient (to)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := Evaluate(p, tc.req)
			if d.Allowed != tc.allowed {
				t.Fatalf("Allowed = %v, want %v\n%s", d.Allowed, tc.allowed, d.Explain())
			}
			checkRef(t, "Rule", d.Rule, tc.rule, tc.line)
			checkRef(t, "Closest", d.Closest, tc.closest, -1)
			if tc.allowed && (d.Rights != tc.rights || d.TTL != tc.ttl) {
				t.Errorf("rights %v ttl %v, want %v %v", d.Rights, d.TTL, tc.rights, tc.ttl)
			}
			if !strings.Contains(d.Reason, tc.reason) || strings.Contains(d.Reason, "\n") {
				t.Errorf("reason %q: want one line containing %q", d.Reason, tc.reason)
			}
		})
	}
}

func checkRef(t *testing.T, what string, r *RuleRef, name string, line int) {
	t.Helper()
	switch {
	case name == "" && r != nil:
		t.Errorf("%s = %v, want none", what, r)
	case name != "" && r == nil:
		t.Errorf("%s = none, want %q", what, name)
	case name != "" && (r.Name != name || r.File != "eval.hcl" || (line >= 0 && r.Line != line)):
		t.Errorf("%s = %v, want %q at eval.hcl:%d", what, r, name, line)
	}
}

func TestEvaluateIsPure(t *testing.T) {
	p := mustParse(t, evalPolicy)
	req := Request{Op: OpGrant, Kind: "dir", Path: "/srv/data/../data/x", Subject: alice}
	first := Evaluate(p, req)
	second := Evaluate(p, req)
	if req.Path != "/srv/data/../data/x" {
		t.Fatalf("Evaluate changed the caller's request: %q", req.Path)
	}
	if first.Explain() != second.Explain() || !first.Allowed {
		t.Fatalf("two evaluations differ or deny:\n%s\n%s", first.Explain(), second.Explain())
	}
}

func TestExplainTextAndJSON(t *testing.T) {
	p := mustParse(t, evalPolicy)
	d := Evaluate(p, Request{Op: OpGrant, Kind: "sock", Name: "db", Subject: alice, Module: billing})
	text := d.Explain()
	for _, want := range []string{`allowed by grant "db-for-billing" (eval.hcl:13)`, "rights:  fd_read|fd_write|poll_fd_readwrite", "lease:   1h0m0s"} {
		if !strings.Contains(text, want) {
			t.Errorf("Explain() lacks %q:\n%s", want, text)
		}
	}
	j, err := d.JSON()
	if err != nil {
		t.Fatal(err)
	}
	want := `{"allowed":true,"rule":{"type":"grant","name":"db-for-billing","file":"eval.hcl","line":13},"reason":"grant sock:db allowed by grant \"db-for-billing\"","rights":["fd_read","fd_write","poll_fd_readwrite"],"ttl":"1h0m0s"}`
	if string(j) != want {
		t.Errorf("JSON() =\n%s\nwant\n%s", j, want)
	}
	denied := Evaluate(p, Request{Op: OpGrant, Kind: "sock", Name: "db", Subject: bob, Module: billing})
	j, _ = denied.JSON()
	if !strings.Contains(string(j), `"closest":{"type":"grant","name":"any-sock-ro"`) || !strings.Contains(denied.Explain(), "closest: grant \"any-sock-ro\"") {
		t.Errorf("denial does not name the closest rule:\n%s\n%s", j, denied.Explain())
	}
}

// A handle on a directory reaches everything beneath it, and the host's
// directories and files are one namespace: a deny rule for a path stops a
// grant of it or beneath it, whichever kind either names, and a grant of a
// directory that contains it.
func TestDenyStopsWhatReachesIt(t *testing.T) {
	p := mustParse(t, `resource "dir" "home" {
  path = "/home"
}
resource "dir" "alice" {
  path = "/home/alice"
}
grant "all" {
  resources = ["dir:/", "file:/", "dir:home", "dir:alice"]
}
deny "keys" {
  resources = ["file:/home/alice/.ssh/id_ed25519"]
  subject {
    uids = [1001]
  }
}
deny "private" {
  resources = ["dir:/srv/private"]
  on        = ["delegate"]
}
`)
	for _, tc := range []struct {
		name    string
		req     Request
		allowed bool
		reason  string
	}{
		{"a file denied", Request{Op: OpGrant, Kind: "file", Path: "/home/alice/.ssh/id_ed25519", Subject: bob}, false, `file:/home/alice/.ssh/id_ed25519 is denied by deny "keys"`},
		{"a directory beneath a denied file", Request{Op: OpGrant, Kind: "dir", Path: "/home/alice/.ssh/id_ed25519/x", Subject: bob}, false, `is denied by deny "keys"`},
		{"the directory that holds it", Request{Op: OpGrant, Kind: "dir", Path: "/home/alice/.ssh", Subject: bob}, false, "it contains file:/home/alice/.ssh/id_ed25519, which a handle on it would reach"},
		{"the root", Request{Op: OpGrant, Kind: "dir", Path: "/", Subject: bob}, false, "it contains"},
		{"a named directory that holds it", Request{Op: OpGrant, Kind: "dir", Name: "home", Subject: bob}, false, "dir:home is denied by deny \"keys\": it contains"},
		{"a deny's subject still applies", Request{Op: OpGrant, Kind: "dir", Name: "alice", Subject: alice}, true, ""},
		{"a sibling is not beneath", Request{Op: OpGrant, Kind: "dir", Path: "/home/alice/.sshx", Subject: bob}, true, ""},
		{"a prefix by characters is not beneath", Request{Op: OpGrant, Kind: "dir", Path: "/home/alice/.ss", Subject: bob}, true, ""},
		{"a file grant reaches nothing beneath", Request{Op: OpGrant, Kind: "file", Path: "/home/alice/.ssh", Subject: bob}, true, ""},
		{"a dir deny stops a file beneath it", Request{Op: OpDelegate, Kind: "file", Path: "/srv/private/k", Depth: 1}, false, `file:/srv/private/k is denied by deny "private"`},
		{"a deny's on still applies", Request{Op: OpGrant, Kind: "dir", Path: "/srv", Subject: bob}, true, ""},
		{"a delegation of a directory above it", Request{Op: OpDelegate, Kind: "dir", Path: "/srv", Depth: 1}, false, "it contains dir:/srv/private"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := Evaluate(p, tc.req)
			if d.Allowed != tc.allowed || !strings.Contains(d.Reason, tc.reason) {
				t.Fatalf("Allowed = %v, want %v, reason containing %q:\n%s", d.Allowed, tc.allowed, tc.reason, d.Explain())
			}
		})
	}
}

// A deny rule that names a declared dir or file, exactly or by a glob,
// stops its host path however it is asked for: inline, beneath it, as a
// directory that contains it, or by the name of another resource there.
func TestDenyByNameCoversTheHostPath(t *testing.T) {
	p := mustParse(t, `resource "dir" "reports" {
  path = "/srv/reports"
}
resource "dir" "reports-again" {
  path = "/srv/reports/2026"
}
resource "file" "key" {
  path = "/etc/keys/host.key"
}
resource "dir" "etc" {
  path = "/etc"
}
grant "all" {
  resources = ["dir:/", "file:/", "dir:*", "file:*"]
}
delegate "pass" {
  resources = ["dir:/"]
  max_depth = 1
}
deny "reports" {
  resources = ["dir:reports"]
}
deny "keys" {
  resources = ["file:k*"]
  subject {
    uids = [1001]
  }
}
`)
	for _, tc := range []struct {
		name    string
		req     Request
		allowed bool
		reason  string
	}{
		{"the name", Request{Op: OpGrant, Kind: "dir", Name: "reports"}, false, `dir:reports is denied by deny "reports"`},
		{"its path", Request{Op: OpGrant, Kind: "dir", Path: "/srv/reports"}, false, `dir:/srv/reports is denied by deny "reports": dir:reports is /srv/reports`},
		{"a file beneath", Request{Op: OpGrant, Kind: "file", Path: "/srv/reports/q1.csv"}, false, `dir:reports is /srv/reports`},
		{"a delegation beneath", Request{Op: OpDelegate, Kind: "dir", Path: "/srv/reports/2026", Depth: 1}, false, `denied by deny "reports"`},
		{"another name beneath", Request{Op: OpGrant, Kind: "dir", Name: "reports-again"}, false, `dir:reports-again is denied by deny "reports": dir:reports is /srv/reports`},
		{"the directory above", Request{Op: OpGrant, Kind: "dir", Path: "/srv"}, false, `dir:/srv is denied by deny "reports": it contains dir:reports (/srv/reports), which a handle on it would reach`},
		{"a sibling", Request{Op: OpGrant, Kind: "dir", Path: "/srv/reportsx"}, true, ""},
		{"a glob's file", Request{Op: OpGrant, Kind: "file", Path: "/etc/keys/host.key", Subject: bob}, false, `file:/etc/keys/host.key is denied by deny "keys": file:key is /etc/keys/host.key`},
		{"a glob's directory above", Request{Op: OpGrant, Kind: "dir", Name: "etc", Subject: bob}, false, `it contains file:key (/etc/keys/host.key)`},
		{"a glob's subject still applies", Request{Op: OpGrant, Kind: "dir", Path: "/etc", Subject: alice}, true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := Evaluate(p, tc.req)
			if d.Allowed != tc.allowed || !strings.Contains(d.Reason, tc.reason) {
				t.Fatalf("Allowed = %v, want %v, reason containing %q:\n%s", d.Allowed, tc.allowed, tc.reason, d.Explain())
			}
		})
	}
}

func TestTheFanOutReasonCountsOneCopyInTheSingular(t *testing.T) {
	p := mustParse(t, `
resource "chan" "jobs" {}

delegate "one" {
  resources  = ["chan:jobs"]
  max_depth  = 1
  max_copies = 1
}
`)
	d := Evaluate(p, Request{Op: OpDelegate, Kind: "chan", Name: "jobs", Depth: 1, Copies: 1, ToUnknown: true})
	if d.Allowed || !strings.Contains(d.Reason, `1 live copy already, max_copies of delegate "one" is 1`) {
		t.Fatalf("allowed %v, reason %q", d.Allowed, d.Reason)
	}
}

// A rule that leaves none of the rights asked does not allow the request:
// the copy would hold nothing, and would count against max_copies all
// the same. The denial names the rule and both sets of rights.
func TestARuleThatLeavesNoneOfTheRightsAskedDenies(t *testing.T) {
	p := mustParse(t, `
resource "chan" "jobs" {}
resource "dir" "reports" {
  path      = "/srv/reports"
  read_only = true
}
grant "write-reports" {
  resources = ["dir:reports"]
  rights    = ["fd_write", "file_open"]
}
delegate "read-only" {
  resources = ["chan:jobs"]
  max_depth = 2
  rights    = ["fd_read", "poll_fd_readwrite"]
}
`)
	d := Evaluate(p, Request{Op: OpDelegate, Kind: "chan", Name: "jobs", Depth: 2, Rights: caps.RightFDWrite, To: other})
	want := `chan:jobs: delegate "read-only" leaves none of the rights asked (fd_write): it gives fd_read|poll_fd_readwrite at most`
	if d.Allowed || d.Rule == nil || d.Rule.Name != "read-only" || d.Reason != want {
		t.Errorf("a copy holding only what the rule takes away:\n%s\nwant the reason %q", d.Explain(), want)
	}
	d = Evaluate(p, Request{Op: OpGrant, Kind: "dir", Name: "reports", Rights: caps.RightFDWrite | caps.RightFileCreateFile})
	if d.Allowed || d.Rule == nil || d.Rule.Name != "write-reports" || !strings.Contains(d.Reason, "leaves none of the rights asked") {
		t.Errorf("a write grant of a read-only resource:\n%s", d.Explain())
	}
	if d := Evaluate(p, Request{Op: OpDelegate, Kind: "chan", Name: "jobs", Depth: 1, Rights: caps.RightFDRead | caps.RightFDWrite, To: other}); !d.Allowed || d.Rights != caps.RightFDRead {
		t.Errorf("some of the rights asked left: %s", d.Explain())
	}
}
