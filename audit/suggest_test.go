package audit

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/sandboxd/sandboxd/policies"
)

// A policy learnt from a run in which a guest was given `sock:db:dial`
// and a declared directory by name declares sock "db" and dir "reports",
// grants them by those names, and loads.
func TestSuggestReadsGrantsWithOptionsAndByName(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	l, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	sha := strings.Repeat("ab", 32)
	for _, r := range []Record{
		{Type: TypeGrant, Cap: &CapRecord{ID: "c1", Kind: "dial", Name: "db", Holder: "g-1", Base: "fd_read|sock_accept", Edge: "grant", Origin: "sock:db:dial", Resource: "dial 127.0.0.1:5432"}},
		{Type: TypeGrant, Cap: &CapRecord{ID: "c2", Kind: "dir", Name: "reports", Holder: "g-1", Base: "fd_read", Edge: "grant", Origin: "dir:reports:ro", Resource: "dir /srv/reports"}},
		{Type: TypeGuestStart, Guest: &GuestRecord{ID: "g-1", Module: "client.wasm", SHA256: sha, UID: 1000, Grants: []string{"sock:db:dial", "dir:reports:ro"}}},
	} {
		if _, err := l.Append(r); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
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
