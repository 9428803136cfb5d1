package policies

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/caps"
)

func loadExample(t *testing.T, name string) *Policy {
	t.Helper()
	p, err := Load(filepath.Join("examples", name))
	if err != nil {
		t.Fatalf("examples/%s does not load:\n%v", name, err)
	}
	return p
}

func TestExampleDatabaseClient(t *testing.T) {
	p := loadExample(t, "database-client.hcl")
	svc := Subject{UID: 990, User: "billing"}
	app := Module{SHA256: hashA, Labels: map[string]string{"app": "billing"}}
	d := Evaluate(p, Request{Op: OpGrant, Kind: "sock", Name: "db", Subject: svc, Module: app})
	want := caps.RightFDRead | caps.RightFDWrite | caps.RightPollFDReadwrite | caps.RightSockShutdown
	if !d.Allowed || d.Rule.Name != "billing-db" || d.Rights != want {
		t.Fatalf("billing app: want allowed by billing-db with %v:\n%s", want, d.Explain())
	}
	for _, req := range []Request{
		{Op: OpGrant, Kind: "sock", Name: "db", Subject: Subject{UID: 1000, User: "alice"}, Module: app},
		{Op: OpGrant, Kind: "sock", Name: "db", Subject: svc, Module: Module{SHA256: hashB}},
		{Op: OpDelegate, Kind: "sock", Name: "db", Subject: svc, Module: app, Depth: 1, To: app},
		{Op: OpGrant, Kind: "dir", Path: "/var/lib/postgres", Subject: svc, Module: app},
	} {
		if d := Evaluate(p, req); d.Allowed {
			t.Errorf("%+v allowed:\n%s", req, d.Explain())
		}
	}
}

func TestExampleReporting(t *testing.T) {
	p := loadExample(t, "reporting.hcl")
	staff := Subject{UID: 1200, User: "carol", GIDs: []uint32{100, 1500}}
	job := Module{SHA256: hashA, Labels: map[string]string{"role": "report"}}
	for _, req := range []Request{
		{Op: OpGrant, Kind: "dir", Name: "reports", Subject: staff, Module: job},
		{Op: OpGrant, Kind: "dir", Path: "/srv/reports/2026", Subject: staff, Module: job},
	} {
		d := Evaluate(p, req)
		if !d.Allowed || d.Rights&caps.RightsWriteMask != 0 || d.Rights&caps.RightFDRead == 0 || d.TTL != 8*time.Hour {
			t.Errorf("%s%s: want read-only for 8h:\n%s", req.Name, req.Path, d.Explain())
		}
	}
	// The private reports, as a directory beneath, a file in it, or the
	// directory that contains them.
	for _, req := range []Request{
		{Op: OpGrant, Kind: "dir", Path: "/srv/reports/private/x", Subject: staff, Module: job},
		{Op: OpGrant, Kind: "file", Path: "/srv/reports/private/salaries.csv", Subject: staff, Module: job},
		{Op: OpGrant, Kind: "dir", Path: "/srv/reports", Subject: staff, Module: job},
	} {
		private := Evaluate(p, req)
		if private.Allowed || private.Rule.Name != "reports-private" || private.Closest.Name != "reports-read" {
			t.Errorf("%s:%s: want denied by reports-private, closest reports-read:\n%s", req.Kind, req.Path, private.Explain())
		}
	}
	outsider := Evaluate(p, Request{Op: OpGrant, Kind: "dir", Name: "reports", Subject: Subject{UID: 7, GIDs: []uint32{7}}, Module: job})
	if outsider.Allowed || outsider.Closest == nil || outsider.Closest.Name != "reports-read" {
		t.Errorf("user outside group 1500: want default deny, closest reports-read:\n%s", outsider.Explain())
	}
}

func TestExamplePipelineDelegatesOneHopNarrowed(t *testing.T) {
	p := loadExample(t, "pipeline.hcl")
	op := Subject{UID: 1000, User: "ops"}
	stage := func(name string) Module {
		return Module{SHA256: hashA, Labels: map[string]string{"pipeline": "etl", "stage": name}}
	}
	fetch, parse, store := stage("fetch"), stage("parse"), stage("store")
	for _, ch := range []string{"fetch-out", "parse-out"} {
		if d := Evaluate(p, Request{Op: OpGrant, Kind: "chan", Name: ch, Subject: op, Module: fetch}); !d.Allowed {
			t.Errorf("grant chan:%s: %s", ch, d.Explain())
		}
	}
	hop := Request{Op: OpDelegate, Kind: "chan", Name: "fetch-out", Subject: op, Module: fetch, Depth: 1, Rights: caps.RightsSocketBase, To: parse}
	d := Evaluate(p, hop)
	if !d.Allowed || d.Rights != caps.RightFDRead|caps.RightPollFDReadwrite || d.TTL != 15*time.Minute {
		t.Fatalf("fetch -> parse: want allowed, read-only, 15m:\n%s", d.Explain())
	}
	for name, req := range map[string]Request{
		"second hop":            {Op: OpDelegate, Kind: "chan", Name: "fetch-out", Subject: op, Module: parse, Depth: 2, To: store},
		"second copy":           {Op: OpDelegate, Kind: "chan", Name: "fetch-out", Subject: op, Module: fetch, Depth: 1, Copies: 1, To: parse},
		"outside the pipeline":  {Op: OpDelegate, Kind: "chan", Name: "fetch-out", Subject: op, Module: fetch, Depth: 1, To: Module{SHA256: hashB}},
		"store keeps its input": {Op: OpDelegate, Kind: "chan", Name: "parse-out", Subject: op, Module: store, Depth: 1, To: parse},
	} {
		if d := Evaluate(p, req); d.Allowed {
			t.Errorf("%s allowed:\n%s", name, d.Explain())
		}
	}
}
