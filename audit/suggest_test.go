package audit

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/policies"
)

// A policy learnt from a run in which a guest was given `sock:db:dial`
// and a declared directory by name declares sock "db" and dir "reports",
// grants them by those names, and loads.
func TestSuggestReadsGrantsWithOptionsAndByName(t *testing.T) {
	sha := strings.Repeat("ab", 32)
	path := logOf(t, []Record{
		{Type: TypeGrant, Cap: &CapRecord{ID: "c1", Kind: "dial", Name: "db", Holder: "g-1", Base: "fd_read|sock_accept", Edge: "grant", Origin: "sock:db:dial", Resource: "dial 127.0.0.1:5432"}},
		{Type: TypeGrant, Cap: &CapRecord{ID: "c2", Kind: "dir", Name: "reports", Holder: "g-1", Base: "fd_read", Edge: "grant", Origin: "dir:reports:ro", Resource: "dir /srv/reports"}},
		{Type: TypeGuestStart, Guest: &GuestRecord{ID: "g-1", Module: "client.wasm", SHA256: sha, UID: 1000, Grants: []string{"sock:db:dial", "dir:reports:ro"}}},
	})
	out, err := Suggest(path, "")
	if err != nil {
		t.Fatalf("Suggest: %v\n%s", err, out)
	}
	for _, want := range []string{`resource "sock" "db"`, `resource "dir" "reports"`, `"sock:db"`, `"dir:reports"`} {
		if !strings.Contains(out, want) {
			t.Errorf("the suggestion has no %s:\n%s", want, out)
		}
	}
	if _, err := policies.Parse("suggested.hcl", []byte(out)); err != nil {
		t.Fatalf("the suggestion does not load: %v\n%s", err, out)
	}
}

// A path holds whatever a file name may: "${…}" and "%{…}", which HCL
// reads as a template, must come out of the suggestion as the path it
// was, not as what the template makes of it (here "/srv/d" for a
// directory beneath it: a dir: selector grants all of "/srv/d").
func TestSuggestQuotesTemplateSequencesInPaths(t *testing.T) {
	dirs := []string{"/srv/%{if false}d/sub%{endif}d", "/srv/e/${1}", "/srv/f/x$${1}%%{"}
	var grants []string
	var records []Record
	for i, dir := range dirs {
		origin := "dir:" + dir
		grants = append(grants, origin)
		records = append(records, Record{Type: TypeGrant, Cap: &CapRecord{ID: "c" + strconv.Itoa(i), Kind: "dir", Name: "d", Holder: "g-1", Base: "fd_read", Edge: "grant", Origin: origin, Resource: "dir " + dir}})
	}
	// A declared resource's name may hold them too.
	grants = append(grants, "dir:a${1}")
	sha := strings.Repeat("ab", 32)
	path := logOf(t, append(records,
		Record{Type: TypeGrant, Cap: &CapRecord{ID: "cn", Kind: "dir", Name: "d", Holder: "g-1", Base: "fd_read", Edge: "grant", Origin: "dir:a${1}", Resource: "dir /srv/g/${1}"}},
		Record{Type: TypeGuestStart, Guest: &GuestRecord{ID: "g-1", Module: "m.wasm", SHA256: sha, UID: 1000, Grants: grants}}))
	out, p := suggested(t, path)
	var got []string
	for _, r := range p.Rules() {
		for _, s := range r.Selectors {
			got = append(got, s.Path+s.Name)
		}
	}
	if res, ok := p.Resource("dir", "a${1}"); !ok || res.Path != "/srv/g/${1}" {
		t.Errorf("the suggestion declares dir %q as %+v, the log shows it at /srv/g/${1}", "a${1}", res)
	}
	if want := append(dirs, "a${1}"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("the suggestion grants %q, the log shows %q:\n%s", got, dirs, out)
	}
}

// A copy passed on counts while anything derived from it is still held,
// as the policy counts copies (docs/POLICY.md): a recipient that dups the
// copy it was given and closes the original still holds a copy, so the
// second delegation here is of the second copy alive at once.
func TestSuggestCountsACopyClosedWhileItsDupIsHeld(t *testing.T) {
	sha := strings.Repeat("ab", 32)
	dir := CapRecord{Kind: "dir", Base: "fd_read", Resource: "dir /srv/data"}
	capr := func(id, holder, parent, edge string) *CapRecord {
		c := dir
		c.ID, c.Holder, c.Parent, c.Edge = id, holder, parent, edge
		if edge == "grant" {
			c.Origin = "dir:/srv/data"
		}
		return &c
	}
	path := logOf(t, []Record{
		{Type: TypeGuestStart, Guest: &GuestRecord{ID: "g-1", Module: "giver.wasm", SHA256: sha, UID: 1000}},
		{Type: TypeGrant, Cap: capr("c1", "g-1", "", "grant")},
		{Type: TypeDelegate, Cap: capr("c2", "g-2", "c1", "delegate")},
		{Type: TypeDerive, Cap: capr("c3", "g-2", "c2", "dup")},
		{Type: TypeClose, Cap: capr("c2", "g-2", "c1", "delegate")},
		{Type: TypeDelegate, Cap: capr("c4", "g-3", "c1", "delegate")},
	})
	out, p := suggested(t, path)
	for _, r := range p.Rules() {
		if r.Type == policies.TypeDelegate && r.MaxCopies != 2 {
			t.Fatalf("delegate rule %s allows %d copies, want 2:\n%s", r.Name, r.MaxCopies, out)
		}
	}
}

// Socket grants are learnt as the daemon records them ("sock tcp
// HOST:PORT", "dial tcp NAME:PORT (IPS)", "listen unix PATH"): each
// declares its address, and one given inline (sock:tcp:HOST:PORT, which a
// policy cannot name) is declared under a name made of its address. The
// suggestion loads.
func TestSuggestDeclaresSocketsAsRecorded(t *testing.T) {
	sha := strings.Repeat("ab", 32)
	grants := []struct{ origin, kind, resource string }{
		{"sock:db", "socket", "sock tcp 127.0.0.1:5432"},
		{"sock:search:dial", "dial", "dial tcp search.internal:9200 (10.0.0.7, 10.0.0.8)"},
		{"sock:unix:/run/app.sock=app", "socket", "sock unix /run/app.sock"},
		{"listen:127.0.0.1:8080=web", "listener", "listen tcp 127.0.0.1:8080"},
	}
	var caps []CapRecord
	for _, g := range grants {
		caps = append(caps, CapRecord{Kind: g.kind, Base: "fd_read", Origin: g.origin, Resource: g.resource})
	}
	path := grantsLog(t, "client.wasm", sha, caps)
	out, p := suggested(t, path)
	want := map[string]string{
		"sock:db":                   "127.0.0.1:5432",
		"sock:search":               "search.internal:9200",
		"sock:unix-run-app-sock":    "/run/app.sock",
		"listen:tcp-127-0-0-1-8080": "127.0.0.1:8080",
	}
	for sel, addr := range want {
		kind, name, _ := strings.Cut(sel, ":")
		r, ok := p.Resource(kind, name)
		if !ok || (r.TCP != addr && r.Unix != addr) {
			t.Errorf("%s: %+v, want it declared at %s:\n%s", sel, r, addr, out)
		}
	}
}

// max_copies counts a passed-on copy its holder closed while a dup of it
// lives on, as the daemon counts it: the suggestion allows the second
// delegation the log shows.
func TestSuggestCountsAClosedCopyADupKeeps(t *testing.T) {
	sha := strings.Repeat("ab", 32)
	path := logOf(t, []Record{
		{Type: TypeGrant, Cap: &CapRecord{ID: "c1", Kind: "dir", Holder: "g-1", Base: "fd_read", Edge: "grant", Origin: "dir:/srv/data", Resource: "dir /srv/data"}},
		{Type: TypeGuestStart, Guest: &GuestRecord{ID: "g-1", Module: "giver.wasm", SHA256: sha, UID: 1000, Grants: []string{"dir:/srv/data"}}},
		{Type: TypeDelegate, Cap: &CapRecord{ID: "c2", Kind: "dir", Base: "fd_read", Parent: "c1", Edge: "delegate", Resource: "dir /srv/data"}},
		{Type: TypeAdopt, Cap: &CapRecord{ID: "c2", Kind: "dir", Holder: "g-2", Base: "fd_read", Parent: "c1", Edge: "delegate"}},
		{Type: TypeDerive, Cap: &CapRecord{ID: "c3", Kind: "dir", Holder: "g-2", Base: "fd_read", Parent: "c2", Edge: "dup"}},
		{Type: TypeClose, Cap: &CapRecord{ID: "c2", Kind: "dir", Holder: "g-2", Base: "fd_read", Parent: "c1", Edge: "delegate"}},
		{Type: TypeDelegate, Cap: &CapRecord{ID: "c4", Kind: "dir", Base: "fd_read", Parent: "c1", Edge: "delegate", Resource: "dir /srv/data"}},
	})
	out, err := Suggest(path, "")
	if err != nil {
		t.Fatalf("Suggest: %v\n%s", err, out)
	}
	if !strings.Contains(out, "max_copies = 2") {
		t.Fatalf("want max_copies = 2 (c2, closed but dup'd as c3, and c4):\n%s", out)
	}
}

// Rule names stay unique when a name made unique by a number is also the
// name another rule would have: the suggestion loads.
func TestSuggestRuleNamesStayUnique(t *testing.T) {
	guests := []struct{ id, sha, channel string }{
		{"g-1", strings.Repeat("ab", 32), "b"},
		{"g-2", strings.Repeat("cd", 32), "b"},
		{"g-3", strings.Repeat("ab", 32), "b-2"},
	}
	var records []Record
	for i, g := range guests {
		grant := "chan:" + g.channel
		records = append(records,
			Record{Type: TypeGrant, Cap: &CapRecord{ID: fmt.Sprintf("c%d", i), Kind: "channel", Holder: g.id, Base: "fd_read", Edge: "grant", Origin: grant}},
			Record{Type: TypeGuestStart, Guest: &GuestRecord{ID: g.id, Module: "a.wasm", SHA256: g.sha, UID: 1000, Grants: []string{grant}}})
	}
	path := logOf(t, records)
	if out, err := Suggest(path, ""); err != nil {
		t.Fatalf("Suggest: %v\n%s", err, out)
	}
}

// A named resource recorded at two addresses (a DNS name that answered
// with two, connections that reached each) is declared once, where it was
// first seen: the suggestion loads.
func TestSuggestDeclaresANamedResourceOnce(t *testing.T) {
	sha := strings.Repeat("ab", 32)
	var records []Record
	for i, ip := range []string{"10.0.0.7", "10.0.0.8"} {
		id := fmt.Sprintf("g-%d", i)
		records = append(records,
			Record{Type: TypeGrant, Cap: &CapRecord{ID: fmt.Sprintf("c%d", i), Kind: "socket", Holder: id, Base: "fd_read", Edge: "grant", Origin: "sock:db", Resource: "sock tcp " + ip + ":5432"}},
			Record{Type: TypeGuestStart, Guest: &GuestRecord{ID: id, Module: "client.wasm", SHA256: sha, UID: uint32(1000 + i), Grants: []string{"sock:db"}}})
	}
	path := logOf(t, records)
	out, err := Suggest(path, "")
	if err != nil {
		t.Fatalf("Suggest: %v\n%s", err, out)
	}
	if !strings.Contains(out, `tcp = "10.0.0.7:5432"`) {
		t.Fatalf("want sock db declared where it was first seen:\n%s", out)
	}
}

// A bare word granted as a dir or file that no policy could name (a
// directory "a:b" in the working directory of a run without a policy) is
// suggested as the host path the log shows, not as a resource whose name
// the policy refuses.
func TestSuggestGrantsAPathNoResourceCouldBeNamed(t *testing.T) {
	sha := strings.Repeat("ab", 32)
	path := logOf(t, []Record{
		{Type: TypeGrant, Cap: &CapRecord{ID: "c1", Kind: "dir", Name: "a:b", Holder: "g-1", Base: "fd_read", Edge: "grant", Origin: `dir:a\:b`, Resource: "dir /home/u/a:b"}},
		{Type: TypeGrant, Cap: &CapRecord{ID: "c2", Kind: "file", Name: "x*y", Holder: "g-1", Base: "fd_read", Edge: "grant", Origin: "file:x*y", Resource: "file /home/u/x*y"}},
		{Type: TypeGuestStart, Guest: &GuestRecord{ID: "g-1", Module: "m.wasm", SHA256: sha, UID: 1000, Grants: []string{`dir:a\:b`, "file:x*y"}}},
	})
	out, err := Suggest(path, "")
	if err != nil {
		t.Fatalf("Suggest: %v\n%s", err, out)
	}
	for _, want := range []string{`"dir:/home/u/a:b"`, `"file:/home/u/x*y"`} {
		if !strings.Contains(out, want) {
			t.Errorf("the suggestion does not grant %s:\n%s", want, out)
		}
	}
}

// A guest can narrow a handle to no rights and pass it on: a capability
// with no rights is of no use, and no rule can give one ("rights is
// empty"), so the suggestion says so in a comment instead of a rule that
// does not load, and the rest of it loads.
func TestSuggestPassesOverACopyWithNoRights(t *testing.T) {
	sha := strings.Repeat("ab", 32)
	path := logOf(t, []Record{
		{Type: TypeGuestStart, Guest: &GuestRecord{ID: "g-1", Module: "giver.wasm", SHA256: sha, UID: 1000}},
		{Type: TypeGrant, Cap: &CapRecord{ID: "c1", Kind: "dir", Holder: "g-1", Base: "fd_read", Inheriting: "fd_read", Edge: "grant", Origin: "dir:/srv/data", Resource: "dir /srv/data"}},
		{Type: TypeDelegate, Cap: &CapRecord{ID: "c2", Kind: "dir", Holder: "g-2", Parent: "c1", Base: "none", Inheriting: "none", Edge: "delegate", Resource: "dir /srv/data"}},
	})
	out, err := Suggest(path, "")
	if err != nil {
		t.Fatalf("Suggest: %v\n%s", err, out)
	}
	if !strings.Contains(out, `grant "giver-dir-srv-data"`) || strings.Contains(out, "delegate \"") || !strings.Contains(out, "# giver.wasm passed dir:/srv/data on with no rights") {
		t.Fatalf("want the grant, and a comment for the copy with no rights:\n%s", out)
	}
}

// A grant is suggested for the user who made it, as its record names
// them (by_uid): a grant root made to a guest alice launched is root's,
// not alice's. A record that names nobody, from a log written before
// records did, is the launcher's, the user of a launch's grants.
func TestSuggestGrantsForTheUserWhoMadeTheGrant(t *testing.T) {
	sha := strings.Repeat("ab", 32)
	root := uint32(0)
	path := logOf(t, []Record{
		{Type: TypeGrant, Cap: &CapRecord{ID: "c1", Kind: "dir", Name: "old", Holder: "g-1", Base: "fd_read", Edge: "grant", Origin: "dir:/srv/old=old", Resource: "dir /srv/old"}},
		{Type: TypeGuestStart, Guest: &GuestRecord{ID: "g-1", Module: "m.wasm", SHA256: sha, Principal: "alice", UID: 1000, Grants: []string{"dir:/srv/old=old"}}},
		{Type: TypeGrant, Cap: &CapRecord{ID: "c2", Kind: "dir", Name: "live", Holder: "g-1", Base: "fd_read", Edge: "grant", Origin: "dir:/srv/live=live", By: "root", ByUID: &root, Resource: "dir /srv/live"}},
	})
	out, p := suggested(t, path)
	for _, c := range []struct {
		path string
		uid  uint32
		want bool
	}{
		{"/srv/live", 0, true}, {"/srv/live", 1000, false},
		{"/srv/old", 1000, true}, {"/srv/old", 0, false},
	} {
		req := policies.Request{Op: policies.OpGrant, Kind: "dir", Path: c.path, Subject: policies.Subject{UID: c.uid}, Module: policies.Module{SHA256: sha}}
		if d := policies.Evaluate(p, req); d.Allowed != c.want {
			t.Errorf("grant of %s by uid %d: allowed %v, want %v:\n%s", c.path, c.uid, d.Allowed, c.want, out)
		}
	}
}

// logOf writes records to a new audit log and returns its path.
func logOf(t *testing.T, records []Record) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	l, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for _, r := range records {
		if _, err := l.Append(r); err != nil {
			t.Fatal(err)
		}
	}
	return path
}

// A log whose capabilities name each other as parents (written by hand,
// or damaged) is read to its end: policy suggest walked up the cycle for
// ever.
func TestSuggestEndsOnACycleOfParents(t *testing.T) {
	sha := strings.Repeat("ab", 32)
	path := logOf(t, []Record{
		{Type: TypeGuestStart, Guest: &GuestRecord{ID: "g-1", Module: "m.wasm", SHA256: sha, UID: 1000}},
		{Type: TypeDelegate, Cap: &CapRecord{ID: "c1", Kind: "dir", Holder: "g-1", Base: "fd_read", Edge: "delegate", Parent: "c2"}},
		{Type: TypeDelegate, Cap: &CapRecord{ID: "c2", Kind: "dir", Holder: "g-1", Base: "fd_read", Edge: "delegate", Parent: "c1"}},
	})
	done := make(chan error, 1)
	go func() {
		_, err := Suggest(path, "")
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("Suggest of a log whose parents form a cycle has not returned after 60s")
	}
}

// A listener given inline is declared at the address its grant asked for,
// not at the one the daemon bound: a grant of port 0 (any free port) is
// declared at port 0, and one of every interface (":17085") as written,
// so that the suggested listener is what the grant was.
func TestSuggestDeclaresAListenerAtTheAddressItsGrantAsked(t *testing.T) {
	sha := strings.Repeat("ab", 32)
	grants := []struct{ origin, resource, want string }{
		{"listen:127.0.0.1:0=web", "listen tcp 127.0.0.1:41234", "127.0.0.1:0"},
		{"listen::17085", "listen tcp [::]:17085", ":17085"},
		{"listen:tcp:[::1]:0=six", "listen tcp [::1]:39001", "[::1]:0"},
	}
	var caps []CapRecord
	for _, g := range grants {
		caps = append(caps, CapRecord{Kind: "listener", Base: "sock_accept", Origin: g.origin, Resource: g.resource})
	}
	path := grantsLog(t, "srv.wasm", sha, caps)
	out, p := suggested(t, path)
	for _, g := range grants {
		found := false
		for _, r := range p.Resources() {
			if r.Kind == "listen" && r.TCP == g.want {
				found = true
			}
		}
		if !found {
			t.Errorf("%s: no listen resource declared at %s:\n%s", g.origin, g.want, out)
		}
	}
}

// A copy delegated at launch (--grant cap:ID) goes to the guest launched,
// whether or not a policy decided it: learnt from a run without a policy
// (no decision records), the delegate rule still names the recipient's
// module in a to block, as it does for a run under a policy. A copy sent
// on a channel, read by whoever reads it, gets no to block.
func TestSuggestNamesTheRecipientOfADelegationAtLaunchWithoutAPolicy(t *testing.T) {
	giver, taker := strings.Repeat("ab", 32), strings.Repeat("cd", 32)
	dir := func(id, holder, parent, edge, origin string) *CapRecord {
		return &CapRecord{ID: id, Kind: "dir", Holder: holder, Base: "fd_read", Parent: parent, Edge: edge, Origin: origin, Resource: "dir /srv/data"}
	}
	for _, tc := range []struct {
		origin string
		wantTo bool
	}{{"cap:c1=data", true}, {"cap:c1=data:ro", true}, {"sent on c9 (chan)", false}} {
		path := logOf(t, []Record{
			{Type: TypeGrant, Cap: dir("c1", "g-1", "", "grant", "dir:/srv/data")},
			{Type: TypeGuestStart, Guest: &GuestRecord{ID: "g-1", Module: "giver.wasm", SHA256: giver, UID: 1000, Grants: []string{"dir:/srv/data"}}},
			{Type: TypeDelegate, Cap: dir("c2", "", "c1", "delegate", tc.origin)},
			{Type: TypeAdopt, Cap: dir("c2", "g-2", "c1", "delegate", tc.origin)},
			{Type: TypeGuestStart, Guest: &GuestRecord{ID: "g-2", Module: "taker.wasm", SHA256: taker, UID: 1000, Grants: []string{tc.origin}}},
		})
		out, p := suggested(t, path)
		var to []string
		for _, r := range p.Rules() {
			if r.Type == policies.TypeDelegate && r.To != nil {
				to = r.To.SHA256
			}
		}
		if got := len(to) == 1 && to[0] == taker; got != tc.wantTo || (!tc.wantTo && len(to) > 0) {
			t.Errorf("a copy delegated with origin %q: the rule's to is %v, want the recipient's module: %v\n%s", tc.origin, to, tc.wantTo, out)
		}
	}
}

// A host path granted through a symbolic link is decided, under a policy,
// where the link leads (daemon.DecideHostPath): the suggested rule names
// that path, so that the same grant is allowed again, and not the link,
// which no grant is decided at.
func TestSuggestGrantsAPathThroughALinkWhereItLeads(t *testing.T) {
	top := t.TempDir()
	real := filepath.Join(top, "srv", "data")
	if err := os.MkdirAll(real, 0o700); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(top, "alias")
	if err := os.Symlink("srv/data", link); err != nil {
		t.Fatal(err)
	}
	sha := strings.Repeat("ab", 32)
	path := logOf(t, []Record{
		{Type: TypeGrant, Cap: &CapRecord{ID: "c1", Kind: "dir", Holder: "g-1", Base: "fd_read", Edge: "grant", Origin: "dir:./alias=/data:ro", Resource: "dir " + link}},
		{Type: TypeGrant, Cap: &CapRecord{ID: "c2", Kind: "file", Holder: "g-1", Base: "fd_read", Edge: "grant", Origin: "file:./alias/new.log=log:create", Resource: "file " + filepath.Join(link, "new.log")}},
		{Type: TypeGuestStart, Guest: &GuestRecord{ID: "g-1", Module: "a.wasm", SHA256: sha, UID: 1000, Grants: []string{"dir:./alias=/data:ro", "file:./alias/new.log=log:create"}}},
	})
	out, err := Suggest(path, "")
	if err != nil {
		t.Fatalf("Suggest: %v\n%s", err, out)
	}
	for _, want := range []string{`"dir:` + real + `"`, `"file:` + filepath.Join(real, "new.log") + `"`} {
		if !strings.Contains(out, want) {
			t.Errorf("the suggestion lacks %s, where the grant was decided:\n%s", want, out)
		}
	}
	if strings.Contains(out, link) {
		t.Errorf("the suggestion names the link %s, where no grant is decided:\n%s", link, out)
	}
}

// Two sockets given inline at addresses whose names, made of the
// address, would be the same ("/run/a/b.sock" and "/run/a-b.sock" are
// both unix-run-a-b-sock) are declared under two names, each at its own
// address: each guest's rule grants the socket it was given.
func TestSuggestDeclaresTwoSocketsOfOneNameApart(t *testing.T) {
	shas := []string{strings.Repeat("ab", 32), strings.Repeat("cd", 32), strings.Repeat("ef", 32)}
	grants := []struct{ origin, kind, resource, want string }{
		{"sock:unix:/run/a/b.sock", "socket", "sock unix /run/a/b.sock", "/run/a/b.sock"},
		{"sock:unix:/run/a-b.sock", "socket", "sock unix /run/a-b.sock", "/run/a-b.sock"},
		{"listen::17085", "listen", "listen tcp [::]:17085", ":17085"},
	}
	var records []Record
	for i, g := range grants {
		id := fmt.Sprintf("g-%d", i)
		records = append(records,
			Record{Type: TypeGrant, Cap: &CapRecord{ID: fmt.Sprintf("c%d", i), Kind: g.kind, Holder: id, Base: "fd_read", Edge: "grant", Origin: g.origin, Resource: g.resource}},
			Record{Type: TypeGuestStart, Guest: &GuestRecord{ID: id, Module: "m.wasm", SHA256: shas[i], UID: 1000, Grants: []string{g.origin}}})
	}
	records = append(records,
		Record{Type: TypeGrant, Cap: &CapRecord{ID: "c9", Kind: "listen", Holder: "g-2", Base: "fd_read", Edge: "grant", Origin: "listen:[::]:17085", Resource: "listen tcp [::]:17085"}})
	out, err := Suggest(logOf(t, records), "")
	if err != nil {
		t.Fatalf("Suggest: %v\n%s", err, out)
	}
	p, err := policies.Parse("suggested.hcl", []byte(out))
	if err != nil {
		t.Fatal(err)
	}
	addrs := map[string][]string{} // a module's sha → the addresses its rules grant
	for _, r := range p.Rules() {
		for _, s := range r.Selectors {
			res, ok := p.Resource(s.Kind, s.Name)
			if !ok {
				t.Fatalf("rule %s names %s:%s, not declared:\n%s", r.Name, s.Kind, s.Name, out)
			}
			addrs[r.Module.SHA256[0]] = append(addrs[r.Module.SHA256[0]], res.Unix+res.TCP)
		}
	}
	for i, g := range grants {
		if got := addrs[shas[i]]; len(got) == 0 || got[0] != g.want {
			t.Errorf("%s: the rule grants %v, want %s:\n%s", g.origin, got, g.want, out)
		}
	}
	if got := addrs[shas[2]]; len(got) != 2 || got[1] != "[::]:17085" {
		t.Errorf("listen:[::]:17085: the rules grant %v, want :17085 and [::]:17085:\n%s", got, out)
	}
}

// Suggested for the guest that passed on a copy of a named resource it
// was given by another guest, the policy declares that resource, which
// its delegate rule names: it loads.
func TestSuggestForOneGuestDeclaresTheResourceItPassesOn(t *testing.T) {
	a, b := strings.Repeat("ab", 32), strings.Repeat("cd", 32)
	sock := func(id, holder, parent, edge, origin string) *CapRecord {
		return &CapRecord{ID: id, Kind: "sock", Holder: holder, Base: "fd_read", Parent: parent, Edge: edge, Origin: origin, Resource: "sock tcp 127.0.0.1:5432"}
	}
	path := logOf(t, []Record{
		{Type: TypeGrant, Cap: sock("c1", "g-1", "", "grant", "sock:db")},
		{Type: TypeGuestStart, Guest: &GuestRecord{ID: "g-1", Module: "a.wasm", SHA256: a, UID: 1000, Grants: []string{"sock:db"}}},
		{Type: TypeDelegate, Cap: sock("c2", "", "c1", "delegate", "cap:c1")},
		{Type: TypeAdopt, Cap: sock("c2", "g-2", "c1", "delegate", "cap:c1")},
		{Type: TypeGuestStart, Guest: &GuestRecord{ID: "g-2", Module: "b.wasm", SHA256: b, UID: 1000, Grants: []string{"cap:c1"}}},
		{Type: TypeDelegate, Cap: sock("c3", "", "c2", "delegate", "sent on c9 (chan)")},
	})
	out, err := Suggest(path, "g-2")
	if err != nil {
		t.Fatalf("Suggest: %v\n%s", err, out)
	}
	p, err := policies.Parse("suggested.hcl", []byte(out))
	if err != nil {
		t.Fatal(err)
	}
	if r, ok := p.Resource("sock", "db"); !ok || r.TCP != "127.0.0.1:5432" {
		t.Errorf("sock db: %+v, want it declared at 127.0.0.1:5432:\n%s", r, out)
	}
}

// A capability minted for a client of the control API (Supervisor.mint)
// is a grant a policy decides for the client's user and no module: the
// suggestion has a rule for it, with no module block and the user as its
// subject. The client passing it on at a launch (--grant cap:ID) is a
// delegation by a holder with no module: its rule has no module block
// either, and names the recipient's module in its to block.
func TestSuggestAllowsWhatAClientMintedAndPassedOn(t *testing.T) {
	taker := strings.Repeat("cd", 32)
	uid := uint32(1000)
	dir := func(id, holder, parent, edge, origin string) *CapRecord {
		c := &CapRecord{ID: id, Kind: "dir", Holder: holder, Base: "fd_read", Parent: parent, Edge: edge, Origin: origin, Resource: "dir /srv/data"}
		if edge == "grant" {
			c.By, c.ByUID = "alice", &uid
		}
		return c
	}
	path := logOf(t, []Record{
		{Type: TypeGrant, Cap: dir("c1", "conn-7", "", "grant", "dir:/srv/data")},
		// A guest whose start a prune removed is not a client.
		{Type: TypeGrant, Cap: dir("c9", "g-9", "", "grant", "dir:/srv/data")},
		{Type: TypeDelegate, Cap: dir("c2", "", "c1", "delegate", "cap:c1=data")},
		{Type: TypeAdopt, Cap: dir("c2", "g-2", "c1", "delegate", "cap:c1=data")},
		{Type: TypeGuestStart, Guest: &GuestRecord{ID: "g-2", Module: "taker.wasm", SHA256: taker, UID: uid, Grants: []string{"cap:c1=data"}}},
	})
	out, p := suggested(t, path)
	var grant, del *policies.Rule
	for _, r := range p.Rules() {
		switch r.Type {
		case policies.TypeGrant:
			if grant != nil {
				t.Errorf("two grant rules, want one, for the client:\n%s", out)
			}
			grant = r
		case policies.TypeDelegate:
			del = r
		}
	}
	if grant == nil || grant.Module != nil || grant.Subject == nil || len(grant.Subject.UIDs) != 1 || grant.Subject.UIDs[0] != uid {
		t.Errorf("want a grant rule for uid %d and no module:\n%s", uid, out)
	}
	if del == nil || del.Module != nil || del.To == nil || len(del.To.SHA256) != 1 || del.To.SHA256[0] != taker {
		t.Errorf("want a delegate rule with no module block, to the recipient's module:\n%s", out)
	}
}

// grantsLog is the log of one guest, g-1 of module (uid 1000), started
// with grants: each a grant record of the capability c, id cN, held by
// g-1, its grant text its Origin.
func grantsLog(t *testing.T, module, sha string, grants []CapRecord) string {
	t.Helper()
	var texts []string
	var records []Record
	for i, c := range grants {
		c.ID, c.Holder, c.Edge = fmt.Sprintf("c%d", i), "g-1", "grant"
		texts = append(texts, c.Origin)
		records = append(records, Record{Type: TypeGrant, Cap: &c})
	}
	return logOf(t, append(records, Record{Type: TypeGuestStart, Guest: &GuestRecord{ID: "g-1", Module: module, SHA256: sha, UID: 1000, Grants: texts}}))
}

// A spawned child's module is known from its guest-spawn record: the
// parent's rule for handing the child a copy of its grant names the
// child's module in its to block, and what the child hands on (to a
// child of its own) gets a delegate rule for the child's module. Without
// the record, the child was no module: no rule for it, and no to block.
func TestSuggestWritesRulesForWhatASpawnedChildPassesOn(t *testing.T) {
	shaA, shaB, shaD := strings.Repeat("a", 64), strings.Repeat("b", 64), strings.Repeat("d", 64)
	uid := uint32(1000)
	dir := func(id, holder, parent, edge string) *CapRecord {
		c := &CapRecord{ID: id, Kind: "dir", Holder: holder, Base: "file_open", Inheriting: "fd_read", Parent: parent, Edge: edge, Resource: "dir /srv/data"}
		if edge == "grant" {
			c.Origin, c.By, c.ByUID = "dir:/srv/data", "alice", &uid
		}
		return c
	}
	path := logOf(t, []Record{
		{Type: TypeGrant, Cap: dir("c1", "g-1", "", "grant")},
		{Type: TypeGuestStart, Guest: &GuestRecord{ID: "g-1", Module: "a.wasm", SHA256: shaA, UID: uid}},
		{Type: TypeGuestSpawn, Guest: &GuestRecord{ID: "g-1.1", Module: "b.wasm", SHA256: shaB, UID: uid, Parent: "g-1"}},
		{Type: TypeSpawn, Cap: dir("c2", "g-1.1", "c1", "spawn")},
		{Type: TypeGuestSpawn, Guest: &GuestRecord{ID: "g-1.1.1", Module: "d.wasm", SHA256: shaD, UID: uid, Parent: "g-1.1"}},
		{Type: TypeSpawn, Cap: dir("c3", "g-1.1.1", "c2", "spawn")},
	})
	out, p := suggested(t, path)
	to := map[string]string{} // delegate rules: the giver's module → the recipient's
	for _, r := range p.Rules() {
		if r.Type == policies.TypeDelegate && r.Module != nil && r.To != nil && len(r.To.SHA256) == 1 {
			to[r.Module.SHA256[0]] = r.To.SHA256[0]
		}
	}
	if to[shaA] != shaB || to[shaB] != shaD {
		t.Errorf("want delegate rules a.wasm → b.wasm and b.wasm → d.wasm, got %v:\n%s", to, out)
	}
}
