package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sandboxd/sandboxd/audit"
)

// audit log, graph and who-can on a log edited by hand (a grant's
// resource changed in its line) used to answer from it as if it were
// whole: who-can named the edited grant's holder as reaching a directory
// it was never given. Each exits 1 naming the first bad place, as verify
// does, and prints nothing from it on.
func TestAuditReadersOfAnEditedLogSaySo(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	l, err := audit.Open(path, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ id, res string }{{"c1", "dir /srv/a"}, {"c2", "dir /srv/b"}, {"c3", "dir /srv/c"}} {
		if _, err := l.Append(audit.Record{Type: audit.TypeGrant, Cap: &audit.CapRecord{ID: c.id, Kind: "dir", Holder: "g-" + c.id, Base: "fd_read", Edge: "grant", Resource: c.res}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// Line 3 is c2's grant: it now reads as a grant of /srv/secret.
	if err := os.WriteFile(path, bytes.Replace(data, []byte("dir /srv/b"), []byte("dir /srv/secret"), 1), 0o600); err != nil {
		t.Fatal(err)
	}
	where := path + ":3 (seq 3): the record was changed after it was written"
	for _, args := range [][]string{
		{"audit", "log", "--log", path},
		{"audit", "graph", "--log", path},
		{"audit", "who-can", "--log", path, "dir:/srv/secret"},
	} {
		r := sandboxd(t, "", args...)
		if r.code != exitFailure || !strings.Contains(r.stderr, where) || strings.Contains(r.stdout, "secret") || strings.Contains(r.stdout, "g-c2") {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want 1, nothing of c2 printed, and stderr naming %q", args, r.code, r.stdout, r.stderr, where)
		}
	}
}
