package main

import (
	"encoding/json"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sandboxd/sandboxd/client"
)

// jsonLines decodes out, one JSON value per line, into values made by
// each, and fails the test unless every line is one.
func jsonLines[T any](t *testing.T, what, out string) []T {
	t.Helper()
	var vs []T
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	for {
		var v T
		if err := dec.Decode(&v); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("%s: output %q is not JSON of its documented schema: %v", what, out, err)
		}
		vs = append(vs, v)
	}
	if strings.Count(out, "\n") != len(vs) {
		t.Fatalf("%s: %d values on %d lines: %q", what, len(vs), strings.Count(out, "\n"), out)
	}
	return vs
}

// Every verb that prints has --json, with the schema docs/CLI.md's "JSON
// output" gives (unknown fields fail the decoding here, so a field added
// must be documented and added to the test's types).
func TestEveryVerbThatPrintsHasJSON(t *testing.T) {
	t.Parallel()
	d := serveDaemon(t, bin, "")
	hello := guest(t, "abi/testdata/guests/hello.wat")
	j1 := jsonLaunchWaitCompile(t, d, hello)
	id := jsonGuestVerbs(t, d)
	if f := jsonLines[forgotten](t, "rm --json", mustRun(t, "rm", "--socket", d.socket, "j1", "--json").stdout); len(f) != 1 || f[0].ID != j1 || f[0].GuestName != "j1" {
		t.Fatalf("rm --json: %+v", f)
	}
	if f := jsonLines[forgotten](t, "prune --json", mustRun(t, "prune", "--socket", d.socket, "--json").stdout); len(f) != 1 || f[0].ID != id {
		t.Fatalf("prune --json: %+v", f)
	}
	// The audit log the daemon kept, and its live graph.
	if recs := jsonLines[map[string]any](t, "audit log --json", mustRun(t, "audit", "log", "--state", d.state, "--json").stdout); len(recs) == 0 {
		t.Fatal("audit log --json printed nothing")
	}
	jsonLines[map[string]any](t, "audit verify --json", mustRun(t, "audit", "verify", "--state", d.state, "--json").stdout)
	jsonLines[map[string]any](t, "audit graph --json", mustRun(t, "audit", "graph", "--socket", d.socket, "--json").stdout)
	jsonLocalVerbs(t, hello)
}

// mustRun runs the binary with args and fails the test unless it exits 0.
func mustRun(t *testing.T, args ...string) result {
	t.Helper()
	r := sandboxd(t, "", args...)
	if r.code != 0 {
		t.Fatalf("%v: code %d, stderr %q", args, r.code, r.stderr)
	}
	return r
}

// jsonLaunchWaitCompile checks compile, launch --detach and wait with
// --json, and returns the id of the guest launched as j1.
func jsonLaunchWaitCompile(t *testing.T, d *daemonProc, hello string) string {
	c := jsonLines[compiled](t, "compile --json", mustRun(t, "compile", "--socket", d.socket, "--json", hello).stdout)
	if len(c) != 1 || c[0].Path != hello || len(c[0].SHA256) != 64 {
		t.Fatalf("compile --json: %+v", c)
	}
	l := jsonLines[launched](t, "launch --detach --json", mustRun(t, "launch", "--socket", d.socket, "--detach", "--json", "--name", "j1", hello).stdout)
	if len(l) != 1 || !strings.HasPrefix(l[0].ID, "g-") || l[0].GuestName != "j1" {
		t.Fatalf("launch --detach --json: %+v", l)
	}
	r := sandboxd(t, "", "wait", "--socket", d.socket, "j1", "--json")
	w := jsonLines[waited](t, "wait --json", r.stdout)
	if r.code != 7 || len(w) != 1 || w[0].ID != l[0].ID || w[0].Status.Code != 7 || w[0].Exit != 7 {
		t.Fatalf("wait --json: code %d, %+v", r.code, w)
	}
	if r := sandboxd(t, "", "launch", "--socket", d.socket, "--json", hello); r.code != exitUsage || !strings.Contains(r.stderr, "--json goes with --detach") {
		t.Fatalf("attached launch --json: code %d, stderr %q", r.code, r.stderr)
	}
	return l[0].ID
}

// jsonGuestVerbs checks ps, caps, inspect, grant, revoke and kill with
// --json on a guest it launches, and returns the guest's id.
func jsonGuestVerbs(t *testing.T, d *daemonProc) string {
	cli := func(verb string, args ...string) string {
		t.Helper()
		return mustRun(t, append([]string{verb, "--socket", d.socket}, args...)...).stdout
	}
	id := jsonLines[launched](t, "launch", cli("launch", "--detach", "--json", guest(t, "daemon/testdata/guests/spin.wat")))[0].ID
	if ps := jsonLines[client.GuestInfo](t, "ps --json", cli("ps", "-a", "--json")); len(ps) != 2 {
		t.Fatalf("ps -a --json: %+v", ps)
	}
	if h := jsonLines[client.Handle](t, "caps --json", cli("caps", id, "--json")); len(h) != 4 || h[0].Cap.Name != "stdin" {
		t.Fatalf("caps --json: %+v", h)
	}
	if in := jsonLines[inspection](t, "inspect --json", cli("inspect", id, "--json")); len(in) != 1 || in[0].ID != id {
		t.Fatalf("inspect --json: %+v", in)
	}
	file := filepath.Join(privateDir(t), "f")
	g := jsonLines[client.CapInfo](t, "grant --json", cli("grant", id, "--grant", "file:"+file+":create", "--json"))
	if len(g) != 1 || g[0].Kind != "file" {
		t.Fatalf("grant --json: %+v", g)
	}
	if rc := jsonLines[client.Receipt](t, "revoke --json", cli("revoke", g[0].ID, "--json")); len(rc) != 1 || rc[0].Root != g[0].ID {
		t.Fatalf("revoke --json: %+v", rc)
	}
	if k := jsonLines[killed](t, "kill --json", cli("kill", id, "--json")); len(k) != 1 || k[0].ID != id {
		t.Fatalf("kill --json: %+v", k)
	}
	return id
}

// jsonLocalVerbs checks the verbs that need no daemon with --json.
func jsonLocalVerbs(t *testing.T, hello string) {
	pdir := filepath.Join(privateDir(t), "policy")
	writePolicy(t, pdir, "ok.hcl", "resource \"chan\" \"jobs\" {}\n")
	writePolicy(t, pdir, "bad.hcl", "grant \"x\" {\n  bogus = 1\n}\n")
	pc := jsonLines[checked](t, "policy check --json", mustRun(t, "policy", "check", "--json", filepath.Join(pdir, "ok.hcl")).stdout)
	if len(pc) != 1 || !pc[0].OK || pc[0].Files != 1 || pc[0].Resources != 1 || len(pc[0].Problems) != 0 {
		t.Fatalf("policy check --json: %+v", pc)
	}
	r := sandboxd(t, "", "policy", "check", filepath.Join(pdir, "bad.hcl"), "--json")
	pc = jsonLines[checked](t, "policy check --json", r.stdout)
	if r.code != exitFailure || len(pc) != 1 || pc[0].OK || len(pc[0].Problems) == 0 || pc[0].Problems[0].Line == 0 || pc[0].Problems[0].File != filepath.Join(pdir, "bad.hcl") {
		t.Fatalf("policy check --json of a bad file: code %d, %+v, stderr %q", r.code, pc, r.stderr)
	}
	oneLine(t, r.stderr, "the policy does not load")
	if a := jsonLines[map[string]any](t, "abi --json", mustRun(t, "abi", "--json").stdout); len(a) != 49 || a[0]["Name"] != "clock_res_get" {
		t.Fatalf("abi --json: %d calls, first %v", len(a), a[0])
	}
	if v := jsonLines[versionInfo](t, "version --json", mustRun(t, "version", "--json").stdout); len(v) != 1 || v[0].Go == "" {
		t.Fatalf("version --json: %+v", v)
	}
	explain := sandboxd(t, "", "policy", "explain", "--policy", filepath.Join(pdir, "ok.hcl"), "--grant", "chan:jobs", "--json", hello)
	if e := jsonLines[map[string]any](t, "policy explain --json", explain.stdout); len(e) != 1 {
		t.Fatalf("policy explain --json: %+v", e)
	}
}
